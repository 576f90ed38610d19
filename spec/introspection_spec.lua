-- Seeing inside a run (API.md "Seeing inside"): weft.tasks, weft.instrument,
-- virtual time, `weft --trace`, `weft --debug`, the SIGQUIT dump.
local weft = require "weft"
local cli = require "support.cli"

describe("weft.tasks", function()
  it("lists live tasks oldest first with status, what each waits on and a traceback", function()
    weft.run(function()
      local e = weft.event()
      local t = weft.spawn(function() e:wait() end)
      t.name = "waiter"
      weft.yield()
      local list = weft.tasks()
      assert.equal(2, #list)
      assert.equal(weft.current(), list[1].task)
      assert.equal("running", list[1].status)
      assert.is_nil(list[1].on)
      assert.equal("waiter", list[2].name)
      assert.equal("pending", list[2].status)
      assert.matches("^event created at spec/introspection_spec.lua:%d+", list[2].on)
      assert.matches("stack traceback", list[2].traceback)
      assert.is_nil(list[2].created)        -- only recorded in debug mode
      e:set()
      t:await()
    end)
    assert.same({}, weft.tasks())
  end)

  it("shows a ready task with no 'on'", function()
    weft.run(function()
      local t = weft.spawn(function() end)
      assert.is_nil(weft.tasks()[2].on)
      t:await()
    end)
  end)
end)

describe("weft.instrument", function()
  it("calls spawned, step, finished and idle for every task", function()
    local log, idle = {}, 0
    local h = weft.instrument({
      spawned = function(t) log[#log + 1] = "spawned " .. t.id end,
      step = function(t, s) assert.is_true(s >= 0) log[#log + 1] = "step " .. t.id end,
      finished = function(t) log[#log + 1] = "finished " .. t.id end,
      idle = function(s) idle = idle + s end,
    })
    local id
    weft.run(function()
      id = weft.current().id
      weft.sleep(0.02)   -- two steps: before and after the await
    end)
    h:close()
    assert.same({ "spawned " .. id, "step " .. id, "step " .. id, "finished " .. id }, log)
    assert.is_true(idle > 0.01, "idle " .. idle)
  end)

  it("a task that awaits k times has k + 1 steps", function()
    local steps = 0
    local h = weft.instrument({ step = function() steps = steps + 1 end })
    weft.run(function() for _ = 1, 4 do weft.yield() end end)
    h:close()
    assert.equal(5, steps)
  end)

  it("stops calling after close", function()
    local n = 0
    local h = weft.instrument({ step = function() n = n + 1 end })
    h:close()
    weft.run(function() weft.yield() end)
    assert.equal(0, n)
  end)

  it("a hook that errors is reported and removed; the run goes on", function()
    local calls = 0
    local h = weft.instrument({ step = function() calls = calls + 1 error("hook bug") end })
    assert.equal("fine", weft.run(function() weft.yield() weft.yield() return "fine" end))
    h:close()
    assert.equal(1, calls)
  end)

  it("checks its argument", function()
    assert.has_error(function() weft.instrument() end,
      "bad argument #1 to 'instrument' (table expected, got no value)")
    assert.has_error(function() weft.instrument({ step = 1 }) end,
      "bad argument #1 to 'weft.instrument' (hooks.step must be a function)")
  end)
end)

describe("weft.run_virtual", function()
  it("runs an hour of timeouts in milliseconds, in a reproducible order", function()
    local started = os.clock()
    local log = weft.run_virtual(function()
      local log = {}
      local ok, err = pcall(weft.timeout, 1800, function() weft.sleep(3600) end)
      log[#log + 1] = ("%s at %d"):format(err.kind, weft.now())
      weft.sleep(1800)
      log[#log + 1] = ("slept to %d"):format(weft.now())
      return log
    end)
    assert.same({ "Timeout at 1800", "slept to 3600" }, log)
    assert.is_true(os.clock() - started < 1)
  end)

  it("stands still while a real process runs", function()
    local during, woke = weft.run_virtual(function()
      local sleeper = weft.spawn(function() weft.sleep(100) return weft.now() end)
      local t0 = weft.now()
      weft.exec({ "sleep", "0.2" })
      local during = weft.now() - t0
      return during, sleeper:await()
    end)
    assert.equal(0, during)
    assert.equal(100, woke)
  end)

  it("stands still for a referenced luv timer, not for an unreferenced one", function()
    local uv = weft.uv
    local function trial(unref)
      return weft.run_virtual(function()
        local fired = weft.event()
        local t = uv.new_timer()
        t:start(100, 0, function() fired:set() end)   -- 0.1 s of real time
        if unref then t:unref() end
        local sleeper = weft.spawn(function() weft.sleep(3600) return weft.now() end)
        local at_fire
        if not unref then fired:wait() at_fire = weft.now() end
        local woke = sleeper:await()
        t:close()
        return at_fire, woke
      end)
    end
    local at_fire, woke = trial(false)
    assert.equal(0, at_fire)       -- the hour did not pass while the timer was pending
    assert.equal(3600, woke)
    local _, woke2 = trial(true)
    assert.equal(3600, woke2)      -- an unref'd handle does not hold virtual time
  end)

  it("sleepers left waiting go on in real time for what they had left", function()
    local t
    weft.run_virtual(function()
      t = weft.spawn(function() weft.sleep(0.05) return "late" end)
      weft.yield()
    end)
    local t0 = weft.now()
    assert.equal("late", weft.run(function() return t:await() end))
    local dt = weft.now() - t0
    assert.is_true(dt >= 0.03 and dt < 2, "waited " .. dt)
  end)
end)

describe("weft --trace", function()
  local path = os.tmpname()
  after_each(function() os.remove(path) end)

  it("writes Chrome trace JSON with one named track per task and a slice per step", function()
    local r = cli.run({ "--trace", path, "spec/fixtures/cli/await_top.lua" })
    assert.equal(0, r.code, r.stderr)
    local text = cli.read_file(path)
    assert.matches('^{"displayTimeUnit":"ms","traceEvents":%[', text)
    assert.matches("%]}%s*$", text)
    local tracks, slices, markers = {}, 0, {}
    for tid, name in text:gmatch('"ph":"M"[^}]-"tid":(%d+)[^}]-"name":"([^"]+)"') do tracks[tid] = name end
    for tid, name in text:gmatch('"args":{"name":"([^"]+)"}[^}]-"tid":(%d+)') do tracks[name] = tid end
    for _ in text:gmatch('"ph":"X"') do slices = slices + 1 end
    for m in text:gmatch('"name":"(%a+)","ph":"i"') do markers[m] = true end
    for m in text:gmatch('"ph":"i"[^}]-"name":"(%a+)"') do markers[m] = true end
    assert.is_true(slices >= 4, "slices " .. slices)
    assert.matches('"main"', text)
    assert.matches('"wait: sleep', text)
    assert.matches('"spawned"', text)
    assert.matches('"finished"', text)
  end)

  it("is complete JSON after Ctrl-C", function()
    local h = cli.start({ "--trace", path, "spec/fixtures/cli/interrupt.lua" })
    assert.is_true(h.wait_output("ready"))
    h.signal("INT")
    assert.equal(130, h.wait(10))
    h.cleanup()
    local text = cli.read_file(path)
    assert.matches("%]}%s*$", text)
    assert.matches('"cancelled"', text)
  end)

  it("a trace file that cannot be written is an error before the script runs", function()
    local r = cli.run({ "--trace", "/nonexistent-dir/t.json", "-e", "print('ran')" })
    assert.equal(1, r.code)
    assert.equal("", r.stdout)
    assert.matches("cannot write trace file", r.stderr)
  end)
end)

describe("weft --debug", function()
  it("warns about a slow step, naming the task and where it resumed", function()
    local r = cli.run({ "--debug", "-e",
      "local t = weft.spawn(function() local x = 0 for i = 1, 5e7 do x = x + i end end) t.name = 'hog' t:await()" })
    assert.equal(0, r.code)
    assert.matches('slow step: task "hog" ran [%d.]+ s without awaiting %(resumed at %(command line%):1%)', r.stderr)
  end)

  it("records spawn sites and shows them in Deadlock reports", function()
    local r = cli.run({ "--debug", "spec/fixtures/cli/deadlock.lua" })
    assert.equal(1, r.code)
    assert.matches('task "stuck" %(spawned at spec/fixtures/cli/deadlock.lua:2%) waits on event', r.stderr)
  end)

  it("WEFT_DEBUG=1 does the same, and weft.tasks() shows spawn sites", function()
    local r = cli.run({ "-e", "local t = weft.spawn(function() end) print(weft.tasks()[2].created) t:await()" },
      { env = "WEFT_DEBUG=1" })
    assert.equal(0, r.code, r.stderr)
    assert.equal("(command line):1\n", r.stdout)
  end)
end)

describe("SIGQUIT", function()
  it("dumps the live tasks and the run then finishes normally", function()
    local h = cli.start({ "spec/fixtures/cli/sleepy.lua" })
    assert.is_true(h.wait_output("ready"))
    h.signal("QUIT")
    local code = h.wait(10)
    local out, err = h.stdout(), h.stderr()
    h.cleanup()
    assert.equal(0, code, err)
    assert.matches("worked", out)
    assert.matches("weft: %d live tasks", err)
    assert.matches('"worker" pending, waits on event created at spec/fixtures/cli/sleepy.lua:2', err)
    assert.matches('"ticker" pending, waits on sleep %(0%.%d+ s left%)', err)
    assert.matches('"main" pending, waits on task "worker"', err)
    assert.matches("stack traceback", err)
  end)

  it("prints every live task on stderr and the run goes on", function()
    local h = cli.start({ "--debug", "examples/stuck.lua" })
    assert.is_true(h.wait_output("ready"))
    h.signal("QUIT")
    local ok = h.wait_output("healthy done")
    local code = h.wait(10)
    local err = h.stderr()
    h.cleanup()
    assert.is_true(ok)
    assert.matches('task %d+ "a" pending, waits on event created at examples/stuck.lua:5', err)
    assert.matches('spawned at examples/stuck.lua:6', err)
    assert.matches('"healthy" pending, waits on sleep', err)
    assert.matches("stack traceback", err)
    assert.equal(1, code)   -- then the cycle is reported as a deadlock
    assert.matches("Deadlock", err)
  end)
end)
