-- Hardening of the core (issue 14): huge deadlines, cancellations that must
-- not be lost or mistaken, waits that absorb an interruption and must still
-- end in Deadlock, nested weft.run, virtual time. Each block names the defect.
local weft = require "weft"
local cli = require "spec.support.cli"

-- CPU seconds a process has used (utime + stime), from /proc.
local function cpu_seconds(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  local fields = {}
  for w in s:match("%) (.*)"):gmatch("%S+") do fields[#fields + 1] = w end
  return (tonumber(fields[12]) + tonumber(fields[13])) / 100
end

describe("huge deadlines (defect 1)", function()
  it("weft.sleep(math.huge) arms no timer: with nothing else to wait for, a Deadlock", function()
    local ok, err = pcall(weft.run, function() weft.sleep(math.huge) end)
    assert.is_false(ok)
    assert.equal("Deadlock", err.kind)
    assert.matches("waits on sleep", err.message)
    assert.is_false(weft._stats().timer)
  end)

  it("a finite huge sleep waits (its timer armed) and can be cancelled", function()
    for _, s in ipairs({ 1e17, math.maxinteger, 2^64 / 1000, 2^70, 1e300 }) do
      weft.run(function()
        local t = weft.spawn(weft.sleep, s)
        weft.sleep(0.01)
        assert.equal("pending", t:status())
        t:cancel()
        assert.is_false(pcall(t.await, t))
      end)
    end
  end)

  it("timeout, wait_for and wait with a huge or infinite deadline", function()
    for _, s in ipairs({ math.huge, 1e17, math.maxinteger, 2^70 }) do
      local r = weft.run(function()
        local a = weft.timeout(s, function() weft.sleep(0.01) return "a" end)
        local b = weft.wait_for(function() weft.sleep(0.01) return "b" end, s)
        local t = weft.spawn(weft.sleep, 0.01)
        local done = weft.wait({ t }, { timeout = s })
        return a .. b .. #done
      end)
      assert.equal("ab1", r)
    end
  end)

  it("the CLI does not spin on weft.sleep(math.huge) and SIGTERM still ends it", function()
    local h = cli.start({ "-e", [[
      weft.uv.new_timer():start(600000, 0, function() end)  -- keeps the loop alive
      weft.spawn(function() weft.sleep(math.huge) end)
      weft.sleep(0.1) print "x" io.stdout:flush()
      weft.sleep(math.maxinteger)]] })
    local ok, err = pcall(function()
      assert.is_true(h.wait_output("x", 10))
      local before = cpu_seconds(h.pid)
      cli.sleep(0.5)
      local used = cpu_seconds(h.pid) - before
      assert.is_true(used < 0.2, "the loop spins: " .. used .. " s of CPU in 0.5 s")
      h.signal("TERM")
      assert.equal(143, h.wait(10))
    end)
    if cli.alive(h.pid) then os.execute("kill -KILL " .. h.pid) end
    h.cleanup()
    assert(ok, err)
  end)

  it("under virtual time an infinite sleep is a Deadlock, a huge one jumps", function()
    local ok, err = pcall(weft.run_virtual, function() weft.sleep(math.huge) end)
    assert.is_false(ok)
    assert.equal("Deadlock", err.kind)
    local now = weft.run_virtual(function() weft.sleep(1e17) return weft.now() end)
    assert.equal(1e17, now)
  end)
end)

describe("a cancel caught earlier in a scope (defect 2)", function()
  -- The kind of error weft.timeout(10, body) raises under virtual time,
  -- after setup() ran in the same task.
  local function timeout_kind(setup, body)
    local ok, err = weft.run_virtual(function()
      setup()
      return pcall(weft.timeout, 10, body)
    end)
    assert.is_false(ok)
    return err.kind
  end

  it("weft.timeout still raises Timeout after the task caught its own cancel", function()
    assert.equal("Timeout", timeout_kind(function() end, function()
      weft.current():cancel()
      pcall(weft.yield)
      weft.sleep(20)
    end))
  end)

  it("weft.timeout still raises Timeout after catching a cancel another task sent", function()
    assert.equal("Timeout", timeout_kind(function()
      local me = weft.current()
      weft.spawn(function() me:cancel() end)
    end, function()
      pcall(weft.sleep, 1)
      weft.sleep(20)
    end))
  end)

  it("a cancel arriving while the timeout's own is pending still propagates as Cancelled", function()
    assert.equal("Cancelled", timeout_kind(function()
      local me = weft.current()
      weft.spawn(function() weft.sleep(10) me:cancel() end)
      weft.yield()   -- its deadline first: it runs (and cancels) before the timed-out body resumes
    end, function() weft.sleep(20) end))
  end)

  it("a group still raises ErrorGroup after its body caught a cancel earlier", function()
    local ok, err = weft.run_virtual(function()
      return pcall(weft.group, function(g)
        weft.current():cancel()
        pcall(weft.yield)
        g:spawn(function() weft.sleep(1) error("boom") end)
        weft.sleep(20)
      end)
    end)
    assert.is_false(ok)
    assert.equal("ErrorGroup", err.kind)
    assert.matches("boom", tostring(err.errors[1]))
  end)

  it("wait_for and run_graph raise Timeout / GraphError after a caught cancel", function()
    local k1, k2 = weft.run_virtual(function()
      weft.current():cancel()
      pcall(weft.yield)
      local _, e1 = pcall(weft.wait_for, function() weft.sleep(20) end, 10)
      local _, e2 = pcall(weft.run_graph, { a = {} }, function() error("x") end)
      return e1.kind, e2.kind
    end)
    assert.equal("Timeout", k1)
    assert.equal("GraphError", k2)
  end)
end)

-- Runs a script with build/weft under a hard time limit (a spinning loop
-- cannot be interrupted from inside).
local function run_limited(code, seconds)
  return cli.run({ "-e", code }, { env = "timeout -s KILL " .. (seconds or 10) })
end

describe("a deadlock inside a wait that absorbs an interruption (defect 3)", function()
  it("condition:wait re-acquiring a lock that a finished task holds: Deadlock, no spin", function()
    local r = run_limited([[
      local lk = weft.lock(); local cv = weft.condition(lk)
      local ok, err = pcall(weft.run, function()
        weft.spawn(function() weft.sleep(0.05) lk:acquire() end)   -- ends holding lk
        cv:with(function() cv:wait() end)
      end)
      print(ok, err.kind) io.stdout:flush() os.exit(0)]])
    assert.equal(0, r.code, r.stderr)
    assert.equal("false\tDeadlock\n", r.stdout)
  end)

  it("a group child that caught the group's cancel and waits forever: Deadlock, no spin", function()
    local r = run_limited([[
      local fut = weft.future()
      local ok, err = pcall(weft.run, function()
        weft.group(function(g)
          g:spawn(function() pcall(weft.sleep, 10); fut:await() end)
          g:spawn(function() weft.sleep(0.05) error("sibling fails") end)
        end)
      end)
      print(ok, err.kind) io.stdout:flush() os.exit(0)]])
    assert.equal(0, r.code, r.stderr)
    assert.equal("false\tDeadlock\n", r.stdout)
  end)

  it("gather, run_graph and wait_for whose child absorbs the cancel: Deadlock", function()
    local r = run_limited([[
      local fut = weft.future()
      local function stubborn() pcall(weft.sleep, 10); fut:await() end
      local cases = {
        gather = function() weft.gather({ stubborn, function() weft.sleep(0.05) error("x") end }) end,
        graph = function()
          weft.run_graph({ a = {}, b = {} }, function(n)
            if n == "a" then stubborn() else weft.sleep(0.05) error("x") end
          end)
        end,
        wait_for = function() weft.wait_for(stubborn, 0.05) end,
      }
      for _, name in ipairs({ "gather", "graph", "wait_for" }) do
        local ok, err = pcall(weft.run, cases[name])
        print(name, ok, type(err) == "table" and err.kind or err)
      end
      io.stdout:flush() os.exit(0)]])
    assert.equal(0, r.code, r.stderr)
    assert.equal("gather\tfalse\tDeadlock\ngraph\tfalse\tDeadlock\n" ..
                 "wait_for\tfalse\tDeadlock\n", r.stdout)
  end)
end)

describe("a cancel requested while no await runs (defect 4)", function()
  it("a group body that cancels its own task and returns: Cancelled, the child cancelled", function()
    local ok, err, child_status = weft.run(function()
      local ev, child = weft.event(), nil
      local t = weft.spawn(function()
        return pcall(weft.group, function(g)
          child = g:spawn(function() ev:wait() end)
          weft.current():cancel()
          return 1
        end)
      end)
      local ok, err = t:await()
      return ok, err, child:status()
    end)
    assert.is_false(ok)
    assert.equal("Cancelled", err.kind)
    assert.equal("cancelled", child_status)
  end)

  it("a cancel another task sent, caught in the body, is spent: the group returns", function()
    local ok, err = weft.run(function()
      local t
      t = weft.spawn(function()
        return pcall(weft.group, function(g)
          g:spawn(weft.sleep, 0.01)
          weft.spawn(function() t:cancel() end)
          pcall(weft.yield)       -- delivered here and caught: that request is spent
          return 1
        end)
      end)
      return t:await()
    end)
    assert.is_true(ok)   -- the request was delivered (and caught) in the body
    assert.equal(1, err)
  end)

  it("gather, run_graph, timeout and a nested run after a cancel with no await yet", function()
    local kinds = weft.run(function()
      local out = {}
      local function try(name, f)
        local t = weft.spawn(function()
          weft.current():cancel()
          return f()
        end)
        local ok, err = pcall(t.await, t)
        out[#out + 1] = name .. "=" .. (ok and "ok" or err.kind)
      end
      try("gather", function() return weft.gather({ function() return 1 end }) end)
      try("graph", function() return weft.run_graph({ a = {} }, function() return 1 end) end)
      try("timeout", function() return weft.timeout(1, function() return 1 end) end)
      try("run", function() return weft.run(function() return 1 end) end)
      return table.concat(out, " ")
    end)
    assert.equal("gather=Cancelled graph=Cancelled timeout=Cancelled run=Cancelled", kinds)
  end)
end)

describe("nested weft.run (defect 15)", function()
  it("cancelling the caller cancels the inner task and waits for its cleanup", function()
    local log = {}
    local ok, err = weft.run(function()
      local caller = weft.spawn(function()
        return weft.run(function()
          local ok, e = pcall(weft.sleep, 10)
          weft.sleep(0.01)                 -- cleanup that awaits
          log[#log + 1] = "inner cleaned up"
          error(e, 0)
        end)
      end)
      weft.sleep(0.01)
      caller:cancel()
      local ok, err = pcall(caller.await, caller)
      log[#log + 1] = "caller ended"
      return ok, err
    end)
    assert.is_false(ok)
    assert.equal("Cancelled", err.kind)
    assert.same({ "inner cleaned up", "caller ended" }, log)
  end)

  it("Deadlock goes to the innermost weft.run's task, which can catch it", function()
    local r = weft.run(function()
      return weft.run(function()
        local ok, err = pcall(function() weft.event():wait() end)
        return (ok and "no" or err.kind) .. " caught inside"
      end)
    end)
    assert.equal("Deadlock caught inside", r)
  end)

  it("three levels: the innermost gets it and the outer ones go on", function()
    local r = weft.run(function()
      local a = weft.run(function()
        local b = weft.run(function()
          local ok, err = pcall(weft.future().await, weft.future())
          return err.kind
        end)
        return b .. "/2"
      end)
      return a .. "/1"
    end)
    assert.equal("Deadlock/2/1", r)
  end)

  it("a caller whose inner task absorbs the cancel: the inner one gets the Deadlock, no spin", function()
    local r = run_limited([[
      local fut, inner = weft.future(), nil
      local ok, err = pcall(weft.run, function()
        local me = weft.current()
        weft.spawn(function() weft.sleep(0.05) me:cancel() end)
        weft.run(function() inner = weft.current(); pcall(weft.sleep, 10); fut:await() end)
      end)
      local _, inner_err = pcall(inner.await, inner)
      print(ok, err.kind, inner:status(), inner_err.kind) io.stdout:flush() os.exit(0)]])
    assert.equal(0, r.code, r.stderr)
    assert.equal("false\tCancelled\tfailed\tDeadlock\n", r.stdout)
  end)
end)

describe("run_virtual with real work around (defect 13)", function()
  it("an idle listening server is not pending work: the clock jumps past it", function()
    local srv
    local ok, now = pcall(weft.run_virtual, function()
      srv = weft.net.listen("127.0.0.1", 0, function() end)
      weft.sleep(5)
      return weft.now()
    end)
    srv:close()
    assert.is_true(ok, now)
    assert.equal(5, now)
  end)

  it("a run left with only an idle listener is a Deadlock, not a hang", function()
    local r = run_limited([[
      local srv
      local ok, err = pcall(weft.run_virtual, function()
        srv = weft.net.listen("127.0.0.1", 0, function() end)
        weft.event():wait()
      end)
      srv:close()
      print(ok, err.kind)]])
    assert.equal(0, r.code, r.stderr)
    assert.equal("false\tDeadlock\n", r.stdout)
  end)

  it("a connection to it is real work: the clock stands still while it is served", function()
    local srv
    local ok, got = pcall(weft.run_virtual, function()
      srv = weft.net.listen("127.0.0.1", 0, function(s) s:write("hi\n") end)
      local t0 = weft.now()
      local c = weft.net.connect("127.0.0.1", srv.port)
      local line = c:read_line()
      c:close()
      weft.sleep(2)
      return line .. " " .. (weft.now() - t0)
    end)
    srv:close()
    assert.is_true(ok, got)
    assert.equal("hi 2.0", got)
  end)

  it("a deadline left from real time keeps what it had left, to the millisecond", function()
    weft.run(function()
      weft.spawn(weft.sleep, 0.4)
      weft.yield()   -- it starts sleeping in real time
    end)
    local t = weft.run_virtual(function()
      local left = weft.tasks()[1].task
      left:await()
      return weft.now()
    end)
    assert.equal(0.4, t)
  end)
end)

describe("misuse of the core API names the argument (defect 9, core part)", function()
  -- Tried: every method of future, event, lock, semaphore, condition, queue,
  -- task and sorter, and every weft.* function of the core, with nil, false,
  -- numbers (NaN, inf, negative, fractional), strings, tables, threads,
  -- files and functions, as self and as arguments. What follows are the
  -- ones that did not name their argument.
  local function err_of(f)
    local ok, err = pcall(f)
    assert.is_false(ok)
    return tostring(err)
  end

  it("cond:wait_for with something not callable", function()
    local msg = weft.run(function()
      local c = weft.condition()
      return c:with(function() return err_of(function() c:wait_for(coroutine.create(print)) end) end)
    end)
    assert.matches("bad argument #1 to 'wait_for' %(function expected, got thread%)", msg)
  end)

  it("sorter:add with a nil or NaN node names that node's position", function()
    local ts = weft.sorter()
    assert.matches("bad argument #1 to 'add' %(a node cannot be nil%)", err_of(function() ts:add(nil) end))
    assert.matches("bad argument #1 to 'add' %(a node cannot be NaN%)", err_of(function() ts:add(0/0) end))
    assert.matches("bad argument #3 to 'add' %(a node cannot be nil%)",
                   err_of(function() ts:add(1, 2, nil, 3) end))
  end)

  it("a bad graph is argument #1 of the function called, run_graph included", function()
    assert.matches("bad argument #1 to '[%w.]*sorter' %(graph%[\"a\"%] must be an array",
                   err_of(function() weft.sorter({ a = "x" }) end))
    local msg = weft.run(function()
      return err_of(function() weft.run_graph({ a = 1 }, print) end)
    end)
    assert.matches("bad argument #1 to '[%w.]*run_graph' %(graph%[\"a\"%] must be an array", msg)
    assert.matches("bad argument #1 to '[%w.]*sorter' %(graph%[\"a\"%]%[2%] is nil",
                   err_of(function() weft.sorter({ a = { 1, nil, 3 } }) end))
  end)

  it("weft.instrument with an unknown hook name", function()
    assert.matches("bad argument #1 to '[%w.]*instrument' %(unknown hook 'stpe'",
                   err_of(function() weft.instrument({ stpe = print }) end))
  end)
end)

describe("a huge deadline in a wait description (defect 1, also)", function()
  it("weft.tasks() shows a sleep of 1e300 s in a readable form", function()
    local on = weft.run(function()
      local t = weft.spawn(weft.sleep, 1e300)
      weft.yield()
      local on
      for _, rec in ipairs(weft.tasks()) do if rec.task == t then on = rec.on end end
      t:cancel()
      pcall(t.await, t)
      return on
    end)
    assert.equal("sleep (1e+300 s left)", on)
  end)
end)
