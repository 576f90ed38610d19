-- The C API of issue 17 (weft.h), exercised by spec/fixtures/embed/api.c, a C
-- program built against this build's libweft.a: errors nobody observed are
-- reported in every driving mode, a deadlock on the application's loop is
-- reported, the weft_task API, two-step shutdown, weft_interrupt from another
-- thread, and every sandbox escape we know of.
local cbuild = require "support.cbuild"
local sh = cbuild.sh

local bin = os.tmpname()

describe("weft.h for applications (issue 17)", function()
  setup(function() cbuild.compile("spec/fixtures/embed/api.c", bin) end)
  teardown(function() os.remove(bin) end)

  local function run(scenario)
    local code, out = sh(bin .. " " .. scenario)
    assert.equal(0, code, out)
    return out
  end

  describe("errors nobody observed", function()
    it("are reported on the application's loop before the app's own timer fires", function()
      local out = run("errors-app")
      assert.matches('report: weft: error in task "task%-1" that nobody awaited: hook:1: hook failed on the app loop', out)
      assert.matches("stack traceback", out)
      assert.matches("app: timer fired, 1 reports so far", out)
    end)

    it("are reported when the task fails in its first step", function()
      assert.matches("app: timer fired, 1 reports so far", run("errors-now"))
    end)

    it("count as unobserved when a turn passes without anyone taking them", function()
      local out = run("observed-app")
      assert.matches('error in task "task%-2" that nobody awaited: seen', out)
      assert.matches("hook: caught\tfalse\tseen", out)   -- the parent still gets it
      assert.matches("1 reports so far", out)          -- once
    end)

    it("are reported with weft's loop driven by weft_step", function()
      local out = run("errors-step")
      assert.matches("hook failed in step mode", out)
      assert.matches("app: 1 reports after stepping", out)
    end)

    it("a deadlock among weft's tasks on the app's loop is reported once", function()
      local out = run("deadlock-app")
      assert.matches("report: weft: Deadlock: no task can make progress", out)
      assert.matches('task "task%-1" waits on event created at hook:1', out)
      assert.matches('task "task%-2" waits on event created at hook:1', out)
      assert.matches("app: timer fired, 1 reports so far", out)
    end)
  end)

  it("tasks from C: hold, status, result with traceback, on_done, cancel", function()
    local out = run("tasks")
    assert.matches("status before: 0, result %-1", out)
    assert.matches("done: status 2, 3 results, first true", out)      -- weft_from_state worked
    assert.matches("done: status 3, error hook:1: bad hook, traceback yes", out)
    assert.matches("cancel: 1\ndone: status 4, error Cancelled: task was cancelled, traceback no", out)
    assert.matches("cancel after: 0, status 4", out)
    assert.matches("pushed: weft.task task%-1 %(done%)", out)
    assert.matches("reports: 0", out)   -- taking the error in on_done observed it
  end)

  it("shuts down in two steps: cleanup that awaits runs, then the callback", function()
    local out = run("shutdown")
    assert.matches("app: first shutdown 0\napp: second shutdown %-1", out)
    assert.matches("app: spawn while shutting down: 2", out)
    assert.matches("hook: cleanup done after awaiting\tCancelled: task was cancelled", out)
    assert.matches("app: shutdown done, 0 tasks left", out)
    assert.is_nil(out:find("report:"))   -- a cancellation is not an error
  end)

  it("weft_interrupt from another thread stops a task that catches every error", function()
    local out = run("interrupt")
    assert.matches("thread: interrupt 1", out)
    assert.matches("run: Cancelled: interrupted %(weft_interrupt%) at spinner:2", out)
    assert.matches("idle interrupt: 0", out)
  end)

  it("the sandbox closes every escape we tried", function()
    -- tried: os/io/debug/package/require, collectgarbage/dofile/loadfile,
    -- string.dump, load of bytecode (default and 'b' mode), getmetatable(""),
    -- weft.process/exec/sh/fs/net/uv/http, __gc, changing the shared string
    -- table, _G, and a bad allow-list entry
    local out = run("sandbox")
    assert.matches("bad allow: sandbox: cannot allow 'os.nope': no such field", out)
    for i = 0, 12 do
      assert.matches("escape " .. i .. ": closed", out, 1, true)
    end
    assert.is_nil(out:find("OPEN"))
    assert.matches("bytecode: 3", out)   -- LUA_ERRSYNTAX
    assert.matches("host string.upper intact: 1", out)
  end)

  it("weft_future_new in a state weft was never opened in is a Lua error", function()
    -- bad input tried: a C function of the application calling it in a bare
    -- luaL_newstate() state (a future made there would have no weft.future type)
    local out = run("future-bare")
    assert.matches("future%-bare: 2 weft_future_new: weft is not open in this Lua state", out)
  end)
end)
