-- Graphs that grow while they run (issue 15): run_graph passes its work
-- function a third argument, the run, whose add(node [, preds]) adds a
-- node; nodes that depend on the adder wait for what it added. Bad input
-- tried: a node already in the graph, an unknown pred, a cycle, nil and NaN
-- nodes, add while the run is stopping and after it ended.
local weft = require "weft"

local function run_logged(graph, body, opts)
  local log = {}
  local ok, res = pcall(weft.run, function()
    return weft.run_graph(graph, function(node, results, run)
      log[#log + 1] = node
      return body(node, results, run)
    end, opts)
  end)
  return log, ok, res
end

describe("run_graph's run:add", function()
  it("runs an added node after its preds and before the adder's dependents", function()
    local log, ok, res = run_logged({ a = {}, b = { "a" } }, function(node, _, run)
      if node == "a" then run:add("a2", { "a" }) end
      return node .. "!"
    end)
    assert.is_true(ok, tostring(res))
    assert.same({ "a", "a2", "b" }, log)
    assert.same({ a = "a!", a2 = "a2!", b = "b!" }, res)
  end)

  it("starts an added node without preds at once, while the adder still runs", function()
    local a_ended, side_saw_a_running = false, nil
    local log = run_logged({ a = {}, b = { "a" } }, function(node, _, run)
      if node == "a" then
        run:add("side")
        weft.sleep(0.05)
        a_ended = true
      elseif node == "side" then
        side_saw_a_running = not a_ended
      end
    end)
    assert.same({ "a", "side", "b" }, log)
    assert.is_true(side_saw_a_running)
  end)

  it("gives the same start order for the same inputs at limit 1", function()
    local function once()
      return (run_logged({ {}, {}, {} }, function(node, _, run)
        if node == 1 then
          run:add("z", {})
          run:add("y", { "z" })
          run:add("x", {})
        end
        if node == "x" then run:add("w", { 2 }) end
      end, { limit = 1 }))
    end
    local first = once()
    -- ready nodes start least id first; added nodes get ids after the rest
    assert.same({ 1, 2, 3, "z", "y", "x", "w" }, first)
    for _ = 1, 5 do assert.same(first, once()) end
  end)

  it("takes the adder explicitly, so a child task of a node can add for it", function()
    local child_done, b_waited = false, nil
    local log = run_logged({ a = {}, b = { "a" } }, function(node, _, run)
      if node == "a" then
        weft.gather({ function() run:add("from_child", {}, "a") end })
      elseif node == "from_child" then
        weft.sleep(0.05)
        child_done = true
      elseif node == "b" then
        b_waited = child_done
      end
    end)
    assert.same({ "a", "from_child", "b" }, log)
    assert.is_true(b_waited)
    local _, ok, err = run_logged({ a = {}, b = { "a" } }, function(node, _, run)
      if node == "a" then run:add("x", {}, "b") end
    end)
    assert.is_false(ok)
    assert.matches('run:add: "b" is not a running node', tostring(err), 1, true)
  end)

  it("lets added nodes add nodes", function()
    local log = run_logged({ root = {}, last = { "root" } }, function(node, _, run)
      local depth = tonumber(tostring(node):match("^d(%d+)$") or (node == "root" and 0))
      if depth and depth < 3 then run:add("d" .. depth + 1) end
    end)
    assert.same({ "root", "d1", "d2", "d3", "last" }, log)
  end)

  it("fails the adder on an unknown pred, a node already there, nil or NaN", function()
    local msgs = {}
    run_logged({ a = {} }, function(_, _, run)
      for _, args in ipairs({ { "n", { "nope" } }, { "a" }, { nil }, { 0 / 0 } }) do
        local ok, err = pcall(function() run:add(args[1], args[2]) end)
        assert.is_false(ok)
        msgs[#msgs + 1] = tostring(err)
      end
    end)
    assert.matches('run:add: "n" depends on unknown node "nope"', msgs[1], 1, true)
    assert.matches('run:add: node "a" is already in the graph', msgs[2], 1, true)
    assert.matches("bad argument #1 to 'add' %(a node cannot be nil or NaN%)", msgs[3])
    assert.matches("bad argument #1 to 'add' %(a node cannot be nil or NaN%)", msgs[4])
  end)

  it("refuses a node that would close a cycle, failing only the adder's work", function()
    local log, ok, err = run_logged({ a = {}, b = { "a" }, c = { "b" } }, function(node, _, run)
      if node == "a" then run:add("x", { "c" }) end
    end)
    assert.is_false(ok)
    assert.equal("GraphError", err.kind)
    assert.equal("a", err.failures[1].node)
    assert.equal("CycleError", err.failures[1].error.kind)
    assert.matches('adding "x" would close a cycle: "x" -> "b" -> "c" -> "x"',
      err.failures[1].error.message, 1, true)
    assert.same({ "a" }, log)
  end)

  it("skips what waits for a failed added node with keep_going", function()
    local _, ok, err = run_logged({ a = {}, b = { "a" }, other = {} }, function(node, _, run)
      if node == "a" then run:add("bad", {}) end
      if node == "bad" then error("bad fails") end
    end, { keep_going = true })
    assert.is_false(ok)
    assert.equal("bad", err.failures[1].node)
    assert.same({ "b" }, err.skipped)
    assert.equal(nil, err.results.b)
    assert.is_true(err.results.other == nil and err.results.a == nil)
  end)

  it("refuses add while the run is stopping and after it ended", function()
    local during, kept
    pcall(weft.run, function()
      weft.run_graph({ fails = {}, slow = {} }, function(node, _, run)
        kept = run
        if node == "fails" then weft.sleep(0.01) error("boom") end
        pcall(weft.sleep, 1)   -- cancelled by the failure
        local ok, err = pcall(function() run:add("late") end)
        during = not ok and tostring(err)
      end)
    end)
    assert.matches('run:add: "late" not added: the graph run is stopping', during, 1, true)
    local ok, err = pcall(kept.add, kept, "after")
    assert.is_false(ok)
    assert.matches('run:add: "after" not added: the graph run has ended', tostring(err), 1, true)
  end)
end)
