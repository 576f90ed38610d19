-- weft.run_graph: completion-driven graph runs, limit, results passing,
-- fail-fast with cleanup, keep_going with skipped nodes, cycles, a large
-- graph, cancellation from outside. Timed specs run on virtual time.
local weft = require "weft"

local diamond = {[1] = {}, [2] = {1}, [3] = {1}, [4] = {2, 3}}

local function sorted(list)
  local copy = {table.unpack(list)}
  table.sort(copy, function(a, b) return tostring(a) < tostring(b) end)
  return copy
end

describe("weft.run_graph", function()
  it("runs each node after its predecessors, in first-mention order", function()
    local log = {}
    weft.run_virtual(function()
      weft.run_graph(diamond, function(n)
        log[#log + 1] = "start " .. n
        weft.sleep(1)
        log[#log + 1] = "end " .. n
      end)
    end)
    assert.same({"start 1", "end 1", "start 2", "start 3", "end 2", "end 3", "start 4", "end 4"}, log)
  end)

  it("runs independent branches at once: the diamond takes 3 s", function()
    local elapsed = weft.run_virtual(function()
      local t0 = weft.now()
      weft.run_graph(diamond, function() weft.sleep(1) end)
      return weft.now() - t0
    end)
    assert.equal(3, elapsed)
  end)

  it("passes every finished node's first result and returns them", function()
    local seen
    local results = weft.run(function()
      return weft.run_graph({a = {}, b = {}, c = {"a", "b"}}, function(n, res)
        if n == "c" then seen = {a = res.a, b = res.b} end
        return n:upper(), "second"
      end)
    end)
    assert.same({a = "A", b = "B"}, seen)
    assert.same({a = "A", b = "B", c = "C"}, results)
  end)

  it("runs predecessors that are not keys of the graph", function()
    local ran = {}
    weft.run(function()
      weft.run_graph({x = {"y", "z"}}, function(n) ran[#ran + 1] = n end)
    end)
    assert.same({"y", "z", "x"}, ran)
  end)

  it("returns an empty table for an empty graph", function()
    assert.same({}, weft.run(function() return weft.run_graph({}, error) end))
  end)

  it("keeps at most `limit` tasks running", function()
    local running, peak = 0, 0
    local g = {}
    for i = 1, 8 do g[i] = {} end
    weft.run_virtual(function()
      weft.run_graph(g, function()
        running = running + 1
        peak = math.max(peak, running)
        weft.sleep(1)
        running = running - 1
      end, {limit = 3})
    end)
    assert.equal(3, peak)
  end)

  it("rejects a bad limit", function()
    assert.has_error(function()
      weft.run(function() weft.run_graph({}, print, {limit = 0}) end)
    end, "bad argument #3 to 'run_graph' (limit must be a positive integer)")
  end)

  it("raises CycleError before running anything", function()
    local ran = false
    local ok, err = pcall(weft.run, function()
      weft.run_graph({[1] = {}, [2] = {3}, [3] = {2}}, function() ran = true end)
    end)
    assert.is_false(ok)
    assert.equal("CycleError", err.kind)
    assert.equal(3, #err.cycle)
    assert.is_false(ran)
  end)

  it("fails fast: cancels running work, waits for its cleanup, skips the rest", function()
    local cleaned = false
    local ok, err = pcall(weft.run_virtual, function()
      weft.run_graph({[1] = {}, [2] = {}, [3] = {1}, [4] = {2}}, function(n)
        if n == 1 then
          weft.sleep(1)
          error("one failed", 0)
        end
        if n == 2 then
          local ok2, e = pcall(weft.sleep, 10)
          assert(not ok2)
          weft.sleep(0.5)       -- cleanup that awaits
          cleaned = true
          error(e)
        end
      end)
    end)
    assert.is_false(ok)
    assert.equal("GraphError", err.kind)
    assert.is_true(cleaned)
    assert.equal(1, #err.failures)
    assert.equal(1, err.failures[1].node)
    assert.equal("one failed", err.failures[1].error)
    assert.same({2}, err.cancelled)
    assert.same({3, 4}, err.skipped)
    assert.same({}, err.results)
    assert.matches("1 node failed", tostring(err))
  end)

  it("counts a node that catches the cancellation and returns as finished", function()
    local ok, err = pcall(weft.run_virtual, function()
      weft.run_graph({a = {}, b = {}}, function(n)
        if n == "a" then weft.sleep(1); error("x") end
        pcall(weft.sleep, 10)
        return "b survived"
      end)
    end)
    assert.is_false(ok)
    assert.same({}, err.cancelled)
    assert.equal("b survived", err.results.b)
  end)

  it("keep_going: independent branches finish, downstream nodes are skipped", function()
    local ok, err = pcall(weft.run_virtual, function()
      weft.run_graph({[1] = {}, [2] = {}, [3] = {1}, [4] = {3}, [5] = {2}, [6] = {5}}, function(n)
        weft.sleep(1)
        if n == 1 then error("bad") end
        return n * 10
      end, {keep_going = true})
    end)
    assert.is_false(ok)
    assert.equal("GraphError", err.kind)
    assert.equal(1, #err.failures)
    assert.same({3, 4}, err.skipped)
    assert.same({}, err.cancelled)
    assert.same({[2] = 20, [5] = 50, [6] = 60}, err.results)
  end)

  it("reports a node cancelled by someone else as a failure", function()
    local ok, err = pcall(weft.run_virtual, function()
      weft.run_graph({a = {}, b = {"a"}}, function(n)
        if n == "a" then
          weft.current():cancel()
          weft.sleep(1)
        end
      end)
    end)
    assert.is_false(ok)
    assert.equal("GraphError", err.kind)
    assert.equal("a", err.failures[1].node)
    assert.equal("Cancelled", err.failures[1].error.kind)
    assert.same({"b"}, err.skipped)
  end)

  it("propagates Cancelled when its caller is cancelled, after the cleanup", function()
    local cleaned = {}
    local err = weft.run_virtual(function()
      local runner = weft.spawn(weft.run_graph, diamond, function(n)
        local ok = pcall(weft.sleep, 10)
        if not ok then
          weft.sleep(1)
          cleaned[#cleaned + 1] = n
          error("cancelled " .. n)
        end
      end)
      weft.sleep(1)
      runner:cancel()
      local ok, e = pcall(runner.await, runner)
      assert(not ok)
      return e
    end)
    assert.equal("Cancelled", err.kind)
    assert.same({1}, cleaned)
  end)

  it("runs a 100k-node layered graph", function()
    local g, width = {}, 100
    for i = 1, 100000 do
      local layer, pos = (i - 1) // width, (i - 1) % width
      g[i] = layer == 0 and {} or {(layer - 1) * width + pos + 1,
                                    (layer - 1) * width + (pos + 1) % width + 1}
    end
    local order, seen = 0, {}
    local results = weft.run(function()
      return weft.run_graph(g, function(n)
        for _, p in ipairs(g[n]) do assert(seen[p], "predecessor not done") end
        weft.yield()
        seen[n] = true
        order = order + 1
        return n
      end)
    end)
    assert.equal(100000, order)
    assert.equal(100000, results[100000])
  end)

  it("raises outside a task", function()
    assert.has_error(function() weft.run_graph({}, print) end,
      "weft.run_graph: not inside a task (start one with weft.run or weft.spawn)")
  end)

  it("checks its arguments", function()
    weft.run(function()
      assert.has_error(function() weft.run_graph(nil, print) end,
        "bad argument #1 to 'run_graph' (table expected, got nil)")
      assert.has_error(function() weft.run_graph({}, 42) end,
        "bad argument #2 to 'run_graph' (function expected, got number)")
      assert.has_error(function() weft.run_graph({a = 1}, print) end,
        'bad argument #1 to \'run_graph\' (graph["a"] must be an array of predecessors, not a number)')
    end)
  end)

  it("keeps the scheduling order reproducible", function()
    local function run()
      local log = {}
      weft.run(function()
        weft.run_graph({c = {}, a = {}, b = {"a", "c"}, d = {}}, function(n)
          log[#log + 1] = n
        end)
      end)
      return table.concat(log)
    end
    assert.equal("acdb", run())
    assert.equal(run(), run())
    assert.same({"a", "b"}, sorted({"b", "a"}))
  end)

  -- Node tasks are light: their memory belongs to the run and they get a
  -- Lua object only when asked for. These ask in every way there is.
  describe("node tasks", function()
    it("give weft.current() one object that outlives the run", function()
      local held, same
      weft.run(function()
        weft.run_graph({a = {}, b = {"a"}}, function(n)
          if n == "b" then
            held = weft.current()
            same = rawequal(held, weft.current())
            assert.equal("running", held:status())
            weft.yield()
          end
          return n:upper()
        end)
      end)
      assert.is_true(same)
      for _ = 1, 3 do collectgarbage() end
      assert.equal("done", held:status())
      assert.equal("B", held:result())
      assert.matches("^weft.task task%-%d+ %(done%)$", tostring(held))
    end)

    it("are listed by weft.tasks() while they run", function()
      local listed
      weft.run(function()
        weft.run_graph({a = {}, b = {}, c = {"a", "b"}}, function(n)
          if n == "a" then
            weft.yield()
            listed = {}
            for _, rec in ipairs(weft.tasks()) do listed[#listed + 1] = rec.status end
          else
            weft.sleep(0.01)
          end
        end)
      end)
      -- the main task (waiting in run_graph), a (running), b (sleeping)
      assert.same({"pending", "running", "pending"}, listed)
    end)

    it("are seen by an instrument installed in the middle of a run", function()
      local finished = {}
      weft.run(function()
        local inst
        weft.run_graph({{}, {}, {}, {}}, function(n)
          if n == 1 then
            inst = weft.instrument({finished = function(t)
              finished[#finished + 1] = t:status() .. " " .. tostring(t:result())
            end})
          end
          weft.yield()
          return n * 10
        end)
        inst:close()
      end)
      table.sort(finished)
      assert.same({"done 10", "done 20", "done 30", "done 40"}, finished)
    end)

    it("keep running after a caller interrupted twice stops waiting, and end cleanly", function()
      local cleaned, err = {}, nil
      weft.run_virtual(function()
        local runner = weft.spawn(weft.run_graph, {a = {}, b = {}}, function(n)
          local ok = pcall(weft.sleep, 10)
          if not ok then
            weft.sleep(2)   -- a slow cleanup
            cleaned[#cleaned + 1] = n
          end
          return n
        end)
        weft.sleep(1)
        runner:cancel()
        weft.sleep(1)
        runner:cancel()     -- while the nodes still clean up
        local ok, e = pcall(runner.await, runner)
        assert(not ok)
        err = e
        collectgarbage()
        weft.sleep(5)       -- the nodes finish with nobody waiting
        collectgarbage()
      end)
      assert.equal("Cancelled", err.kind)
      assert.same({"a", "b"}, sorted(cleaned))
    end)

    it("run many graphs one after another without growing", function()
      local function rounds()
        weft.run(function()
          for _ = 1, 200 do
            local r = weft.run_graph({{}, {1}, {1}, {2, 3}}, function(n) weft.yield(); return n end)
            assert.same({1, 2, 3, 4}, r)
          end
        end)
        collectgarbage()
        collectgarbage()
        return collectgarbage("count")
      end
      rounds()   -- warms the thread pool and the anchor table up
      local before = rounds()
      assert.is_true(rounds() <= before + 1)
    end)
  end)
end)
