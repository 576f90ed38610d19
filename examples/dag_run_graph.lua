-- The production answer: weft.run_graph. The scheduler is C and
-- completion-driven: when a node finishes, the nodes it unblocks start at
-- once; nothing polls, nothing scans the pending work. `work` receives the
-- results of every finished node, and run_graph returns them all.
-- Run: build/weft examples/dag_run_graph.lua   (the diamond takes 3.0x s)
local weft = require "weft"

local graph = {[1] = {}, [2] = {1}, [3] = {1}, [4] = {2, 3}}   -- the diamond
local t0 = weft.now()
local function log(fmt, ...)
  print(("[%4.2f] " .. fmt):format(weft.now() - t0, ...))
end

local results = weft.run_graph(graph, function(node, results)
  local inputs = {}
  for _, p in ipairs(graph[node]) do inputs[#inputs + 1] = results[p] end
  log("start %s (inputs: %s)", node, table.concat(inputs, ", "))
  weft.sleep(1)
  log("done  %s", node)
  return "r" .. node
end)
log("all done in %.2f s: %s %s %s %s", weft.now() - t0,
    results[1], results[2], results[3], results[4])
