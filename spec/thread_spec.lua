-- weft.thread (API.md "Threads").
local weft = require "weft"

describe("weft.thread", function()
  it("runs a function in another Lua state and returns its results", function()
    local a, b, c = weft.run(weft.thread, function(x, y) return x + y, "s", { k = { 1, 2 } } end, 2, 3)
    assert.equal(5, a)
    assert.equal("s", b)
    assert.same({ k = { 1, 2 } }, c)
  end)

  it("copies arguments: nil, booleans, numbers, strings, tables", function()
    local got = weft.run(weft.thread, function(...) return select("#", ...), ... end,
      nil, true, 1.5, 7, "x", { a = { b = false } })
    assert.equal(6, got)
    local all = { weft.run(weft.thread, function(...) return ... end, nil, true, 1.5, 7) }
    assert.same({ nil, true, 1.5, 7 }, all)
    assert.equal("integer", math.type(all[4]))
  end)

  it("sees no upvalues, only its arguments and the standard libraries", function()
    local up = 42
    local got = weft.run(weft.thread, function() return up, type(string.format), type(weft) end)
    assert.is_nil(got)
    assert.equal("function", select(2, weft.run(weft.thread, function()
      return up, type(string.format)
    end)))
  end)

  it("raises the worker's error as a string with its traceback", function()
    local ok, err = pcall(weft.run, weft.thread, function() error("worker failed") end)
    assert.is_false(ok)
    assert.equal("string", type(err))
    assert.matches("worker failed", err)
    assert.matches("traceback", err)
  end)

  it("refuses values it cannot copy", function()
    assert.has_error(function() weft.run(weft.thread, function() end, print) end,
      "weft.thread: argument 1 cannot be copied (function)")
    local ok, err = pcall(weft.run, weft.thread, function() return io.stdout end)
    assert.is_false(ok)
    assert.matches("result 1 cannot be copied", err)
    assert.has_error(function() weft.run(weft.thread, print) end,
      "bad argument #1 to 'weft.thread' (a Lua function expected (a C function cannot be copied))")
    assert.has_error(function() weft.run(weft.thread, 42) end,
      "bad argument #1 to 'weft.thread' (function expected, got number)")
  end)

  it("runs several at once while the loop keeps answering", function()
    local got = weft.run(function()
      local ticks = 0
      local ticker = weft.spawn(function() while true do weft.sleep(0.01); ticks = ticks + 1 end end)
      local work = function(n) local s = 0; for i = 1, n do s = s + i % 7 end; return s end
      local r = weft.gather({
        function() return weft.thread(work, 3e6) end,
        function() return weft.thread(work, 3e6) end,
      })
      ticker:cancel()
      pcall(ticker.await, ticker)
      return { r[1] == r[2], ticks > 0 }
    end)
    assert.same({ true, true }, got)
  end)

  it("a cancelled call abandons the result and leaves nothing behind", function()
    weft.run(function()
      local t = weft.spawn(weft.thread, function() local s = 0; for i = 1, 2e6 do s = s + i end; return s end)
      weft.yield()
      t:cancel()
      assert.is_false(pcall(t.await, t))
      assert.equal("cancelled", t:status())
    end)
    -- let the abandoned worker finish so no request is left
    weft.run(function() weft.sleep(0.2) end)
  end)

  it("raises outside a task", function()
    assert.has_error(function() weft.thread(function() end) end,
      "weft.thread: not inside a task (start one with weft.run or weft.spawn)")
  end)
end)
