-- How `weft run` ends (issue 13, the no-op's speed): when no task is alive
-- and nothing keeps the loop alive it exits without closing its Lua state;
-- what a Weftfile left open must still end as a full close would end it.
-- Bad inputs tried: a file written and never closed; a process started and
-- never awaited (with its pid written, checked gone after the run).
local cli = require "support.cli"
local proc = require "support.proc"
local BIN, slurp = cli.bin, cli.read_file
local FIX = "spec/fixtures/run_exit/unclosed.lua"

describe("weft run's exit", function()
  local dir
  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. dir))
  end)
  after_each(function() os.execute("rm -rf " .. dir) end)

  local function run(env)
    local _, _, code = os.execute(("env CI=true OUT=%s %s %s run -f %s all >/dev/null 2>&1")
      :format(dir, env or "", BIN, FIX))
    return code
  end

  it("flushes a file the Weftfile wrote and never closed", function()
    assert.equal(0, run())
    assert.equal("buffered, never closed\n", slurp(dir .. "/unclosed.txt"))
  end)

  it("leaves no process a task started and never awaited", function()
    assert.equal(0, run("LEAVE_CHILD=1"))
    local pid = tonumber(slurp(dir .. "/child.pid"))
    assert.is_truthy(pid)
    assert.is_true(proc.gone(pid), "the child outlived weft run")
  end)
end)
