-- Bounding concurrency: 8 independent leaves with limit = 3. run_graph
-- starts three, and each time one finishes it starts the next ready node,
-- so the run takes ceil(8 / 3) = 3 rounds and never has more than 3 going.
-- Run: build/weft examples/dag_limit.lua   (3.0x s)
local weft = require "weft"

local graph = {}
for i = 1, 8 do graph["leaf" .. i] = {} end
local t0 = weft.now()
local function log(fmt, ...)
  print(("[%4.2f] " .. fmt):format(weft.now() - t0, ...))
end

local running, peak = 0, 0
weft.run_graph(graph, function(node)
  running = running + 1
  peak = math.max(peak, running)
  log("start %s (%d running)", node, running)
  weft.sleep(1)
  running = running - 1
end, {limit = 3})
log("peak concurrency %d, all done in %.2f s", peak, weft.now() - t0)
