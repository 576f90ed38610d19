-- Background leftovers (issue 15): when a task ends, what its processes
-- left running in their process groups is terminated (TERM, then KILL after
-- the grace) with a warning naming it; `detach = true` opts out.
local cli = require "support.cli"
local proc = require "support.proc"

describe("weft run and background leftovers", function()
  local dir, r
  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir)
    r = cli.weft_run("-f spec/fixtures/run/leftover.lua -j 4", "DIR=" .. dir)
  end)
  teardown(function()
    local kept = tonumber(cli.read_file(dir .. "/kept.pid") or "")
    if kept then os.execute("kill -KILL " .. kept .. " 2>/dev/null") end
    os.execute("rm -rf " .. dir)
  end)

  local function pid(name) return tonumber(cli.read_file(dir .. "/" .. name .. ".pid")) end

  it("terminates them when the task ends, naming them in a warning", function()
    assert.equal(0, r.code, r.stderr)
    assert.is_true(proc.gone(pid("bg")), "bg's sleep survived")
    assert.matches(("warning: task bg left 1 process running in the background (TERM sent): %d sleep 30")
      :format(pid("bg")), r.stderr, 1, true)
    assert.matches("warning: bg left processes running, terminated: " .. pid("bg") .. " sleep 30",
      r.stderr, 1, true)
  end)

  it("KILLs those that ignore TERM after the process's grace", function()
    assert.is_true(proc.gone(pid("stubborn")), "stubborn's sleep survived")
    assert.matches("warning: task stubborn left", r.stderr, 1, true)
  end)

  it("leaves a background process alone while its task still runs", function()
    assert.matches("server +| server still up\n", r.stdout)
    assert.is_true(proc.gone(pid("server")))
  end)

  it("leaves detach = true processes running", function()
    assert.is_true(proc.alive(pid("kept")), "kept was killed")
    assert.not_matches("task kept left", r.stderr, 1, true)
  end)
end)

describe("weft.exec's on_spawn", function()
  local weft = require "weft"

  it("is called with the pid (its process group) right after the spawn", function()
    local got
    local r = weft.run(function()
      return weft.sh("echo $$", { on_spawn = function(pid) got = pid end })
    end)
    assert.equal(tonumber(r.stdout), got)
  end)

  it("terminates the process and raises once it is reaped when it errors", function()
    local pid
    local ok, err = pcall(weft.run, function()
      return weft.sh("sleep 30", { on_spawn = function(p) pid = p error("no thanks") end })
    end)
    assert.is_false(ok)
    assert.matches("no thanks", tostring(err), 1, true)
    assert.is_true(proc.gone(pid))
  end)

  it("must be a function", function()
    local ok, err = pcall(weft.run, function() return weft.sh("true", { on_spawn = 1 }) end)
    assert.is_false(ok)
    assert.matches("bad option 'on_spawn' (function expected, got number)", tostring(err), 1, true)
  end)
end)
