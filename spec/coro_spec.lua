-- Coroutines inside tasks: weft's suspension passes through generators;
-- awaiting where Lua cannot yield raises a clear error and the task goes on.
local weft = require "weft"

describe("coroutines inside tasks", function()
  it("a coroutine.wrap generator may await; its own yields go to its caller", function()
    local log = {}
    weft.run(function()
      local other = weft.spawn(function()
        for i = 1, 3 do log[#log + 1] = "other" .. i weft.yield() end
      end)
      local gen = coroutine.wrap(function()
        for i = 1, 3 do
          weft.yield()             -- other tasks run meanwhile
          coroutine.yield(i * 10)
        end
      end)
      for _ = 1, 3 do
        local v = gen()   -- (log[#log + 1] = gen() would fix the index before gen runs)
        log[#log + 1] = v
      end
      other:await()
    end)
    assert.same({ "other1", 10, "other2", 20, "other3", 30 }, log)
  end)

  it("coroutine.resume passes suspension through and returns yields", function()
    local got = weft.run(function()
      local co = coroutine.create(function(a)
        weft.sleep(0.001)
        local b = coroutine.yield(a + 1)
        weft.sleep(0.001)
        return b * 2
      end)
      local r = {}
      r[#r + 1] = { coroutine.resume(co, 1) }
      r[#r + 1] = { coroutine.resume(co, 5) }
      r[#r + 1] = { coroutine.resume(co) }
      return r
    end)
    assert.same({ true, 2 }, got[1])
    assert.same({ true, 10 }, got[2])
    assert.is_false(got[3][1])
    assert.matches("dead coroutine", got[3][2])
  end)

  it("nested generators pass suspension through two levels", function()
    local r = weft.run(function()
      local outer = coroutine.wrap(function()
        local inner = coroutine.wrap(function()
          weft.sleep(0.001)
          coroutine.yield("inner")
        end)
        coroutine.yield(inner())
      end)
      return outer()
    end)
    assert.equal("inner", r)
  end)

  it("errors inside a generator propagate as in plain Lua", function()
    weft.run(function()
      local gen = coroutine.wrap(function() weft.yield() error("gen failed") end)
      local ok, err = pcall(gen)
      assert.is_false(ok)
      assert.matches("gen failed", err)
      local co = coroutine.create(function() weft.yield() error({ x = 1 }) end)
      local ok2, err2 = coroutine.resume(co)
      assert.is_false(ok2)
      assert.same({ x = 1 }, err2)
    end)
  end)

  it("cancellation reaches a task suspended inside a generator", function()
    local cleaned = false
    weft.run(function()
      local t = weft.spawn(function()
        local gen = coroutine.wrap(function()
          local ok, err = pcall(weft.sleep, 10)
          cleaned = true
          error(err, 0)
        end)
        gen()
      end)
      weft.yield()
      t:cancel()
      local ok, err = pcall(t.await, t)
      assert.is_false(ok)
      assert.equal("Cancelled", err.kind)
    end)
    assert.is_true(cleaned)
  end)

  it("behave as plain Lua outside tasks", function()
    local gen = coroutine.wrap(function() coroutine.yield(1) coroutine.yield(2) end)
    assert.equal(1, gen())
    assert.equal(2, gen())
    local co = coroutine.create(function(x) return x * 2 end)
    assert.same({ true, 8 }, { coroutine.resume(co, 4) })
  end)

  it("a plain coroutine.yield at task level lets other tasks run", function()
    local log = {}
    weft.run(function()
      local t = weft.spawn(function() log[#log + 1] = "b" end)
      coroutine.yield("ignored")
      log[#log + 1] = "a"
      t:await()
    end)
    assert.same({ "b", "a" }, log)
  end)
end)

describe("awaiting where Lua cannot yield", function()
  it("raises an error saying so, inside a table.sort comparator", function()
    weft.run(function()
      local ok, err = pcall(table.sort, { 3, 1, 2 }, function(a, b) weft.sleep(0) return a < b end)
      assert.is_false(ok)
      assert.matches("cannot await here", err)
      weft.sleep(0.001)   -- and the task goes on
    end)
  end)

  it("raises inside a metamethod called from C", function()
    weft.run(function()
      local obj = setmetatable({}, { __tostring = function() weft.yield() return "x" end })
      local ok, err = pcall(tostring, obj)
      assert.is_false(ok)
      assert.matches("cannot await here", err)
    end)
  end)

  it("raises in a generator resumed from a place that cannot yield", function()
    weft.run(function()
      local gen = coroutine.wrap(function() weft.yield() return 1 end)
      local ok, err = pcall(table.sort, { 2, 1 }, function(a, b) gen() return a < b end)
      assert.is_false(ok)
      assert.matches("cannot await here", err)
    end)
  end)
end)
