-- weft.sorter static_order on N nodes with 3 predecessors each
-- (i - 1, (i + 1) // 2, (i + 2) // 3), built with add() as graphlib's peer does.
-- With "graph" as second argument, the graph is first built as a table
-- (not timed, not counted) and given to weft.sorter(graph).
-- usage: build/weft bench/graph/static_order.lua N [graph]
-- prints: <seconds for add + static_order> <VmHWM growth in MB>
local weft = require "weft"

local function vm(field)
  for line in io.lines("/proc/self/status") do
    local v = line:match("^" .. field .. ":%s+(%d+)")
    if v then return tonumber(v) / 1024 end
  end
end

local n, mode = tonumber(arg[1]), arg[2]
local graph
if mode == "graph" then
  graph = {[1] = {}}
  for i = 2, n do graph[i] = {i - 1, (i + 1) // 2, (i + 2) // 3} end
end
collectgarbage()
local base = vm("VmRSS")
local t0 = os.clock()
local ts
if graph then
  ts = weft.sorter(graph)
else
  ts = weft.sorter()
  for i = 1, n do
    if i > 1 then ts:add(i, i - 1, (i + 1) // 2, (i + 2) // 3) else ts:add(i) end
  end
end
local order = ts:static_order()
local t = os.clock() - t0
assert(#order == n and order[1] == 1)
print(("%.4f %.1f"):format(t, vm("VmHWM") - base))
