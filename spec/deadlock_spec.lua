-- Deadlock detection (API.md "Deadlock"): when tasks wait and nothing can
-- wake them, the task driven by weft.run gets a Deadlock at its await point.
local weft = require "weft"

describe("deadlock", function()
  it("is raised in the driven task, naming each waiter and what it waits on", function()
    local err = weft.run(function()
      local e = weft.event()
      local b = weft.spawn(function() e:wait() end)
      b.name = "b"
      local ok, err = pcall(b.await, b)
      assert.is_false(ok)
      b:cancel()
      pcall(b.await, b)
      return err
    end)
    assert.equal("Deadlock", err.kind)
    assert.matches('task "b" waits on event created at spec/deadlock_spec.lua:%d+', err.message)
    assert.equal(2, #err.waiting)
    local ons = {}
    for _, w in ipairs(err.waiting) do ons[w.task.name] = w.on end
    assert.matches("^event created at", ons.b)
    ons.b = nil
    local _, main_on = next(ons)
    assert.equal('task "b"', main_on)
  end)

  it("is caught with pcall and the task goes on", function()
    local r = weft.run(function()
      local ok, err = pcall(function() weft.event():wait() end)
      assert.is_false(ok)
      assert.equal("Deadlock", err.kind)
      return "went on"
    end)
    assert.equal("went on", r)
  end)

  it("an uncaught Deadlock is raised by weft.run", function()
    local ok, err = pcall(weft.run, function() weft.lock():acquire() weft.future():await() end)
    assert.is_false(ok)
    assert.equal("Deadlock", err.kind)
    assert.matches("future created at", tostring(err))
  end)

  it("is found within one turn, not after a sleeping timer expires", function()
    local t0 = weft.now()
    weft.run(function()
      local s = weft.spawn(function() weft.sleep(0.01) end)
      s:cancel()
      pcall(s.await, s)
      pcall(function() weft.queue():get() end)
    end)
    assert.is_true(weft.now() - t0 < 0.5)
  end)

  it("is not raised while a task sleeps", function()
    local r = weft.run(function()
      local e = weft.event()
      weft.spawn(function() weft.sleep(0.02) e:set() end)
      e:wait()
      return "woken"
    end)
    assert.equal("woken", r)
  end)

  it("a cycle of waits between tasks is reported", function()
    local err = weft.run(function()
      local a_ready, b_ready = weft.event(), weft.event()
      local a = weft.spawn(function() b_ready:wait() a_ready:set() end)
      local b = weft.spawn(function() a_ready:wait() b_ready:set() end)
      local ok, err = pcall(weft.gather, { a, b })
      a:cancel()
      b:cancel()
      pcall(a.await, a)
      pcall(b.await, b)
      return err
    end)
    assert.equal("Deadlock", err.kind)
    assert.equal(3, #err.waiting)
  end)
end)
