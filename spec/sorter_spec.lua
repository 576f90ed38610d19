-- weft.sorter: the behaviour of Python's graphlib.TopologicalSorter
-- (after CPython's Lib/test/test_graphlib.py, rewritten for Lua), plus
-- weft's own promises: first-mention order, any value as a node, errors
-- that name the node, an iterative cycle search.
local weft = require "weft"

-- The groups get_ready hands out, each sorted, until nothing is active.
local function groups(ts)
  ts:prepare()
  local out = {}
  while ts:is_active() do
    local nodes = ts:get_ready()
    for _, n in ipairs(nodes) do ts:done(n) end
    table.sort(nodes, function(a, b)
      if type(a) == type(b) and type(a) ~= "table" then return a < b end
      return tostring(a) < tostring(b)
    end)
    out[#out + 1] = nodes
  end
  return out
end

local function check_graph(graph, expected)
  assert.same(expected, groups(weft.sorter(graph)))
  local flat = {}
  for _, g in ipairs(expected) do
    for _, n in ipairs(g) do flat[#flat + 1] = n end
  end
  local order = weft.sorter(graph):static_order()
  assert.equal(#flat, #order)
  -- same groups, group by group
  local i = 0
  for _, g in ipairs(expected) do
    local want, got = {}, {}
    for _, n in ipairs(g) do want[n] = true; i = i + 1; got[order[i]] = true end
    assert.same(want, got)
  end
end

local function cycle_of(graph)
  local ts = weft.sorter()
  for node, preds in pairs(graph) do ts:add(node, table.unpack(preds)) end
  local ok, err = pcall(ts.prepare, ts)
  assert.is_false(ok)
  assert.equal("CycleError", err.kind)
  return err.cycle, graph
end

-- A reported cycle is real: first repeated last, each a predecessor of the next.
local function assert_valid_cycle(cycle, graph)
  assert.is_true(#cycle >= 2)
  assert.equal(cycle[1], cycle[#cycle])
  for i = 1, #cycle - 1 do
    local found = false
    for _, p in ipairs(graph[cycle[i + 1]] or {}) do
      if p == cycle[i] then found = true end
    end
    assert.is_true(found, ("%s is not a predecessor of %s"):format(cycle[i], cycle[i + 1]))
  end
end

describe("weft.sorter", function()
  describe("ordering", function()
    it("orders a mixed graph in groups", function()
      check_graph({[2] = {11}, [9] = {11, 8}, [10] = {11, 3}, [11] = {7, 5}, [8] = {7, 3}},
                  {{3, 5, 7}, {8, 11}, {2, 9, 10}})
    end)

    it("handles a single node", function()
      check_graph({[1] = {}}, {{1}})
    end)

    it("handles a chain", function()
      local g, want = {}, {}
      for x = 0, 9 do g[x] = {x + 1} end
      for x = 10, 0, -1 do want[#want + 1] = {x} end
      check_graph(g, want)
    end)

    it("handles two chains", function()
      check_graph({[2] = {3}, [3] = {4}, [4] = {5}, [5] = {1}, [11] = {12}, [12] = {13},
                   [13] = {14}, [14] = {15}},
                  {{1, 15}, {5, 14}, {4, 13}, {3, 12}, {2, 11}})
    end)

    it("handles a deeper graph", function()
      check_graph({[0] = {1, 2}, [1] = {3}, [2] = {5, 6}, [3] = {4}, [4] = {9}, [5] = {3},
                   [6] = {7}, [7] = {8}, [8] = {4}, [9] = {}},
                  {{9}, {4}, {3, 8}, {1, 5, 7}, {6}, {2}, {0}})
      check_graph({[0] = {1, 2}, [1] = {}, [2] = {3}, [3] = {}}, {{1, 3}, {2}, {0}})
      check_graph({[0] = {1, 2}, [1] = {}, [2] = {3}, [3] = {}, [4] = {5}, [5] = {6}, [6] = {}},
                  {{1, 3, 6}, {2, 5}, {0, 4}})
    end)

    it("handles nodes without dependencies", function()
      check_graph({[1] = {2}, [3] = {4}, [5] = {6}}, {{2, 4, 6}, {1, 3, 5}})
      check_graph({[1] = {}, [3] = {}, [5] = {}}, {{1, 3, 5}})
    end)

    it("counts a predecessor given many times once per mention", function()
      check_graph({[1] = {2}, [3] = {4}, [0] = {2, 4, 4, 4, 4, 4}}, {{2, 4}, {0, 1, 3}})
      local ts = weft.sorter()
      ts:add(1, 2); ts:add(1, 2); ts:add(1, 2)
      assert.same({2, 1}, ts:static_order())
    end)

    it("accumulates predecessors added incrementally", function()
      local ts = weft.sorter()
      ts:add(1, 2); ts:add(1, 3); ts:add(1, 4); ts:add(1, 5)
      assert.same(weft.sorter({[1] = {2, 3, 4, 5}}):static_order(), ts:static_order())
    end)

    it("handles an empty graph", function()
      check_graph({}, {})
      assert.same({}, weft.sorter():static_order())
    end)

    it("hands out simultaneously ready nodes in first-mention order", function()
      local ts = weft.sorter()
      ts:add("z", "y", "x")
      ts:add("w")
      ts:add("a", "b")
      ts:prepare()
      assert.same({"y", "x", "w", "b"}, ts:get_ready())
    end)

    it("reads a graph table in a reproducible order", function()
      local order = weft.sorter({c = {}, a = {}, b = {}, [2] = {}, [1] = {}, [0.5] = {}})
        :static_order()
      assert.same({1, 2, 0.5, "a", "b", "c"}, order)
    end)

    it("does not depend on the order of insertion between groups", function()
      local function grouped(ts)
        ts:prepare()
        local out = {}
        while ts:is_active() do
          local nodes = ts:get_ready()
          ts:done(table.unpack(nodes))
          local set = {}
          for _, n in ipairs(nodes) do set[n] = true end
          out[#out + 1] = set
        end
        return out
      end
      local ts = weft.sorter()
      ts:add(3, 2, 1); ts:add(1, 0); ts:add(4, 5); ts:add(6, 7); ts:add(4, 7)
      local ts2 = weft.sorter()
      ts2:add(1, 0); ts2:add(3, 2, 1); ts2:add(4, 7); ts2:add(6, 7); ts2:add(4, 5)
      assert.same(grouped(ts), grouped(ts2))
    end)
  end)

  describe("nodes", function()
    it("takes any value but nil and NaN; tables by identity", function()
      local t1, t2 = {}, {}
      local f = function() end
      local ts = weft.sorter()
      ts:add(t1, t2)
      ts:add(f, t1, true, 1.5, "s")
      local order = ts:static_order()
      assert.equal(t2, order[1])
      assert.same({t2, true, 1.5, "s", t1, f}, order)
    end)

    it("rejects nil and NaN", function()
      local ts = weft.sorter()
      assert.has_error(function() ts:add(nil) end,
        "bad argument #1 to 'add' (a node cannot be nil)")
      assert.has_error(function() ts:add(0 / 0) end,
        "bad argument #1 to 'add' (a node cannot be NaN)")
      assert.has_error(function() ts:add(1, nil) end,
        "bad argument #2 to 'add' (a node cannot be nil)")
      assert.has_error(function() weft.sorter({[1] = {0 / 0}}) end,
        "bad argument #1 to 'sorter' (graph[1][1] is NaN, which cannot be a node)")
    end)

    it("rejects a graph entry that is not an array", function()
      local ok, err = pcall(weft.sorter, {a = "b"})
      assert.is_false(ok)
      assert.matches('graph%["a"%]', err)
    end)
  end)

  describe("cycles", function()
    it("reports a self cycle", function()
      assert.same({1, 1}, (cycle_of({[1] = {1}})))
    end)

    it("reports a simple cycle with its first node repeated", function()
      local cycle, g = cycle_of({[1] = {2}, [2] = {1}})
      assert.equal(3, #cycle)
      assert_valid_cycle(cycle, g)
    end)

    it("reports an indirect cycle, each node a predecessor of the next", function()
      local cycle, g = cycle_of({[1] = {2}, [2] = {3}, [3] = {1}})
      assert.equal(4, #cycle)
      assert_valid_cycle(cycle, g)
    end)

    it("reports only the nodes in the cycle", function()
      local cycle, g = cycle_of({[1] = {2}, [2] = {3}, [3] = {1}, [5] = {4}, [4] = {6}})
      assert.equal(4, #cycle)
      assert_valid_cycle(cycle, g)
    end)

    it("reports one of several cycles", function()
      local cycle, g = cycle_of({[1] = {2}, [2] = {1}, [3] = {4}, [4] = {5}, [6] = {7}, [7] = {6}})
      assert.equal(3, #cycle)
      assert_valid_cycle(cycle, g)
    end)

    it("reports a cycle in the middle of the graph", function()
      local cycle, g = cycle_of({[1] = {2}, [2] = {3}, [3] = {2, 4}, [4] = {5}})
      assert.equal(3, #cycle)
      assert_valid_cycle(cycle, g)
    end)

    it("names the cycle in the message", function()
      local ok, err = pcall(function() weft.sorter({a = {"b"}, b = {"a"}}):prepare() end)
      assert.is_false(ok)
      assert.matches('CycleError: nodes are in a cycle: "a" %-> "b" %-> "a"', tostring(err))
    end)

    it("still hands out the nodes outside the cycle", function()
      local ts = weft.sorter({[1] = {2}, [2] = {1}, [3] = {}, [4] = {3}})
      assert.error_matches(function() ts:prepare() end,
        "^CycleError: nodes are in a cycle: 1 %-> 2 %-> 1$")
      assert.same({3}, ts:get_ready())
      ts:done(3)
      assert.same({4}, ts:get_ready())
    end)

    it("raises from static_order", function()
      local ok, err = pcall(function() return weft.sorter({[1] = {1}}):static_order() end)
      assert.is_false(ok)
      assert.equal("CycleError", err.kind)
    end)

    it("finds a cycle through a million-node chain without overflowing", function()
      local ts = weft.sorter()
      for i = 2, 1000000 do ts:add(i, i - 1) end
      ts:add(1, 1000000)
      local ok, err = pcall(ts.prepare, ts)
      assert.is_false(ok)
      assert.equal(1000001, #err.cycle)
    end)

    it("orders a million-node chain", function()
      local ts = weft.sorter()
      for i = 2, 1000000 do ts:add(i, i - 1) end
      local order = ts:static_order()
      assert.equal(1000000, #order)
      assert.equal(1, order[1])
      assert.equal(1000000, order[1000000])
    end)
  end)

  describe("protocol", function()
    it("raises before prepare", function()
      local ts = weft.sorter()
      assert.has_error(function() ts:get_ready() end, "get_ready: prepare() must be called first")
      assert.has_error(function() ts:done(3) end, "done: prepare() must be called first")
      assert.has_error(function() ts:is_active() end, "is_active: prepare() must be called first")
    end)

    it("raises when prepared twice", function()
      local ts = weft.sorter()
      ts:prepare()
      assert.has_error(function() ts:prepare() end, "prepare: cannot prepare() more than once")
    end)

    it("raises when adding after prepare", function()
      local ts = weft.sorter()
      ts:prepare()
      assert.has_error(function() ts:add(1) end, "add: nodes cannot be added after prepare()")
    end)

    it("raises for invalid nodes in done, naming them", function()
      local ts = weft.sorter()
      ts:add(1, 2, 3, 4)
      ts:add(2, 3, 4)
      ts:prepare()
      ts:get_ready()
      assert.has_error(function() ts:done(2) end, "done: node 2 was not passed out (still not ready)")
      assert.has_error(function() ts:done(24) end, "done: node 24 was not added using add()")
      assert.has_error(function() ts:done("x") end, 'done: node "x" was not added using add()')
      ts:done(3)
      assert.has_error(function() ts:done(3) end, "done: node 3 was already marked done")
    end)

    it("hands each node out once, as done allows", function()
      local ts = weft.sorter()
      ts:add(1, 2, 3, 4)
      ts:add(2, 3)
      ts:prepare()
      assert.same({3, 4}, ts:get_ready())
      assert.same({}, ts:get_ready())
      ts:done(3)
      assert.same({2}, ts:get_ready())
      assert.same({}, ts:get_ready())
      ts:done(4)
      ts:done(2)
      assert.same({1}, ts:get_ready())
      assert.same({}, ts:get_ready())
      ts:done(1)
      assert.same({}, ts:get_ready())
      assert.is_false(ts:is_active())
    end)

    it("is active while a node is ready or handed out", function()
      local ts = weft.sorter()
      ts:add(1, 2)
      ts:prepare()
      assert.is_true(ts:is_active())
      assert.same({2}, ts:get_ready())
      assert.is_true(ts:is_active())
      ts:done(2)
      assert.is_true(ts:is_active())
      assert.same({1}, ts:get_ready())
      assert.is_true(ts:is_active())
      ts:done(1)
      assert.is_false(ts:is_active())
    end)

    it("marks several nodes done in one call", function()
      local ts = weft.sorter({c = {"a", "b"}})
      ts:prepare()
      ts:done(table.unpack(ts:get_ready()))
      assert.same({"c"}, ts:get_ready())
    end)
  end)

  -- Integer nodes go through a C index while they are dense, and through a
  -- Lua table when large, negative or sparse; a key first seen as sparse
  -- is moved into the index when it grows over it. Tried: 0, negatives,
  -- math.maxinteger, a huge key before the small ones, floats with and
  -- without integer values, integers mixed with strings and tables.
  describe("integer nodes", function()
    it("keeps one node per integer whether it is dense or sparse", function()
      local ts = weft.sorter()
      ts:add(1, 5000)           -- 5000 is sparse now, dense once 1..4000 exist
      for i = 2, 4000 do ts:add(i, i - 1) end
      ts:add(5000, 0, -7, math.maxinteger)
      local order = ts:static_order()
      assert.equal(4004, #order)
      local pos = {}
      for i, n in ipairs(order) do
        assert.is_nil(pos[n], "node " .. tostring(n) .. " twice")
        pos[n] = i
      end
      assert.is_true(pos[0] < pos[5000] and pos[-7] < pos[5000])
      assert.is_true(pos[math.maxinteger] < pos[5000] and pos[5000] < pos[1])
      assert.is_true(pos[1] < pos[2] and pos[3999] < pos[4000])
    end)

    it("finds integer nodes in done wherever they are kept", function()
      local ts = weft.sorter()
      ts:add(3, 10 ^ 12 // 1, -1)
      ts:prepare()
      local ready = ts:get_ready()
      assert.same({10 ^ 12 // 1, -1}, ready)
      ts:done(-1, 10 ^ 12 // 1)
      assert.same({3}, ts:get_ready())
      ts:done(3)
      assert.is_false(ts:is_active())
      assert.has_error(function() ts:done(4) end, "done: node 4 was not added using add()")
    end)

    it("treats a float with an integer value as that integer, as table keys do", function()
      local ts = weft.sorter()
      ts:add(2.0, 1)
      ts:add(3, 2, 1.5)
      ts:prepare()
      local first = ts:get_ready()
      assert.same({1, 1.5}, first)
      ts:done(1, 1.5)
      local second = ts:get_ready()
      assert.equal(1, #second)
      assert.equal(2, second[1])
      assert.equal("float", math.type(second[1]))   -- its first mention
      ts:done(2)
      assert.same({3}, ts:get_ready())
    end)

    it("keeps integers, strings and tables apart", function()
      local t = {}
      local order = weft.sorter({[1] = {"1", t}, ["1"] = {}, [2] = {1}}):static_order()
      assert.equal(4, #order)
      assert.equal(2, order[4])
      assert.equal(1, order[3])
    end)
  end)

  -- Bad graph tables tried: a non-table entry under an integer key and
  -- under a string key, a nil hole (via a holey array) and a NaN among
  -- the predecessors; each error names the entry, and nothing is built.
  describe("bad graph tables", function()
    it("names the entry that is not an array", function()
      assert.has_error(function() weft.sorter({{}, 5}) end,
        "bad argument #1 to 'sorter' (graph[2] must be an array of predecessors, not a number)")
      assert.has_error(function() weft.sorter({x = "y"}) end,
        [[bad argument #1 to 'sorter' (graph["x"] must be an array of predecessors, not a string)]])
    end)

    it("names the entry with a predecessor that cannot be a node", function()
      assert.has_error(function() weft.sorter({{}, {1, 0 / 0}}) end,
        "bad argument #1 to 'sorter' (graph[2][2] is NaN, which cannot be a node)")
      assert.has_error(function() weft.sorter({a = {"b", 0 / 0}}) end,
        [[bad argument #1 to 'sorter' (graph["a"][2] is NaN, which cannot be a node)]])
    end)
  end)
end)
