-- weft.on_signal (API.md "Signals").
local weft = require "weft"
local uv = weft.uv

local function raise(sig) uv.kill(uv.os_getpid(), sig) end

describe("weft.on_signal", function()
  it("runs the handler as a task each time the signal arrives", function()
    local got = weft.run(function()
      local seen, ev = {}, weft.event()
      local h = weft.on_signal("SIGUSR1", function(name)
        seen[#seen + 1] = name .. ":" .. tostring(weft.current() ~= nil)
        if #seen == 2 then ev:set() end
      end)
      raise("sigusr1")
      weft.sleep(0.02)
      raise("sigusr1")
      weft.wait_for(function() ev:wait() end, 5)
      h:close()
      return seen
    end)
    assert.same({ "SIGUSR1:true", "SIGUSR1:true" }, got)
  end)

  it("runs every handler of a signal", function()
    local n = weft.run(function()
      local count = 0
      local a = weft.on_signal("SIGUSR2", function() count = count + 1 end)
      local b = weft.on_signal("SIGUSR2", function() count = count + 10 end)
      raise("sigusr2")
      for _ = 1, 100 do
        if count == 11 then break end
        weft.sleep(0.005)
      end
      a:close(); b:close()
      return count
    end)
    assert.equal(11, n)
  end)

  it("keeps the run alive while a handler is open", function()
    local h = weft.on_signal("SIGHUP", function() end)
    assert.equal(1, weft._stats().handles)
    h:close()
    h:close()
    assert.matches("closed", tostring(h))
    weft.run(function() weft.yield() end)
    assert.equal(0, weft._stats().handles)
  end)

  it("puts the default action back after the last close", function()
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write(([[
      package.cpath = "./%s/?.so;" .. package.cpath
      local weft = require "weft"
      local h = weft.on_signal("SIGUSR1", function() end)
      h:close()
      weft.run(function() weft.yield() end)
      weft.uv.kill(weft.uv.os_getpid(), "sigusr1")
      weft.run(function() weft.sleep(0.5) end)
      print("survived")
    ]]):format(os.getenv("WEFT_BUILD") or "build"))
    f:close()
    local p = io.popen((arg and arg[-1] or "lua5.4") .. " " .. script .. " 2>&1; echo status=$?")
    local out = p:read("a")
    p:close()
    os.remove(script)
    assert.not_matches("survived", out)
    assert.matches("status=138", out)
  end)

  it("checks its arguments", function()
    assert.has_error(function() weft.on_signal("USR1", print) end,
      "bad argument #1 to 'on_signal' (signal name such as \"SIGHUP\" expected, got \"USR1\")")
    assert.has_error(function() weft.on_signal("SIGNOPE", print) end,
      "bad argument #1 to 'on_signal' (unknown signal SIGNOPE)")
    assert.has_error(function() weft.on_signal("SIGUSR1") end,
      "bad argument #2 to 'on_signal' (function expected, got nil)")
  end)
end)

-- Defect 7 of issue 14: children must not outlive weft, however it ends.
-- Each run starts three process groups of two sleeps each and writes their
-- pids; after SIGHUP, a closed terminal and kill -9, none may be left.
describe("children die with weft", function()
  local cli = require "support.cli"
  local proc = require "support.proc"
  local pidfile
  local script = [[
    local f = ...
    for _ = 1, 3 do
      weft.spawn(weft.sh, "sleep 100 & echo $! >> " .. f .. "; echo $$ >> " .. f .. "; exec sleep 100")
    end
    local ok, err = pcall(weft.sleep, 100)
    local h = io.open(f .. ".cancelled", "w")
    h:write(tostring(err.kind))
    h:close()
    error(err, 0)
  ]]

  local function read_pids(want)
    for _ = 1, 250 do
      local pids = {}
      local s = cli.read_file(pidfile) or ""
      for pid in s:gmatch("%d+") do pids[#pids + 1] = tonumber(pid) end
      if #pids >= want then return pids end
      cli.sleep(0.02)
    end
    error("the children did not start")
  end

  local function survivors(pids)
    local left = {}
    for _, pid in ipairs(pids) do
      if not proc.gone(pid) then left[#left + 1] = pid end
    end
    for _, pid in ipairs(left) do os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
    return left
  end

  before_each(function() pidfile = os.tmpname() end)
  after_each(function()
    os.remove(pidfile)
    os.remove(pidfile .. ".cancelled")   -- written by a run whose cleanup ran
  end)

  local function args() return { "-e", ("assert(load(%q))(%q)"):format(script, pidfile) } end

  it("SIGHUP is handled as SIGTERM: exit 129, children terminated", function()
    local h = cli.start(args())
    local pids = read_pids(6)
    h.signal("HUP")
    local code = h.wait(10)
    h.cleanup()
    local cancelled = cli.read_file(pidfile .. ".cancelled")
    os.remove(pidfile .. ".cancelled")
    assert.equal(129, code)
    assert.equal("Cancelled", cancelled)   -- cleanup ran: handled, not the default action
    assert.same({}, survivors(pids))
  end)

  it("kill -9 of weft leaves no child running", function()
    local h = cli.start(args())
    local pids = read_pids(6)
    h.signal("KILL")
    h.wait(10)
    h.cleanup()
    assert.same({}, survivors(pids))
  end)

  it("closing its terminal (tmux kill-session) leaves no child running", function()
    if os.execute("command -v tmux >/dev/null") ~= true then
      return pending("needs tmux")
    end
    local session = "weft-spec-" .. math.random(1e9)
    local parts = {}
    for i, a in ipairs(args()) do parts[i] = cli.quote(a) end
    -- a server of our own (-L): closing its only session closes the terminal
    assert(os.execute(("tmux -L %s new-session -d -s %s %s"):format(session, session,
      cli.quote(cli.quote(cli.bin) .. " " .. table.concat(parts, " ")))))
    local ok, pids = pcall(read_pids, 6)
    os.execute(("tmux -L %s kill-session -t %s 2>/dev/null"):format(session, session))
    assert(ok, pids)
    assert.same({}, survivors(pids))
  end)
end)

-- Found with defect 14 of issue 14: spec/http_spec.lua's server outlived
-- `make test` because the first SIGTERM cancelled every task but left the
-- run serving an open server once the main task had returned.
describe("the CLI after its main task returned", function()
  local cli = require "support.cli"
  for _, case in ipairs { { "TERM", 143 }, { "HUP", 129 }, { "INT", 130 } } do
    it("ends on the first SIG" .. case[1] .. " while a server listens", function()
      local h = cli.start({ "-e", "weft.net.listen('127.0.0.1', 0, function() end); print('ready'); io.stdout:flush()" })
      assert.is_true(h.wait_output("ready", 5), h.stderr())
      h.signal(case[1])
      local code = h.wait(5)
      h.cleanup()
      assert.equal(case[2], code)
    end)
  end
end)
