-- A cycle: 2 needs 3 and 3 needs 2. run_graph finds it before running
-- anything and raises CycleError naming the cycle. The hand-rolled events
-- version (dag_events.lua) would wait forever; weft notices that no task
-- can ever wake and raises Deadlock instead of hanging.
-- Run: build/weft examples/dag_cycle.lua
local weft = require "weft"

local graph = {[2] = {3}, [3] = {2}}
local t0 = weft.now()
local function log(fmt, ...)
  print(("[%4.2f] " .. fmt):format(weft.now() - t0, ...))
end

local ok, err = pcall(weft.run_graph, graph, function(node)
  log("start %s (never printed)", node)
end)
log("run_graph: %s (ok=%s)", tostring(err), tostring(ok))
log("err.cycle = {%s}", table.concat(err.cycle, ", "))

-- the same graph with one event per task
local events = {[2] = weft.event(), [3] = weft.event()}
local tasks = {}
for node, preds in pairs(graph) do
  tasks[#tasks + 1] = weft.spawn(function()
    for _, p in ipairs(preds) do events[p]:wait() end
    events[node]:set()
  end)
end
ok, err = pcall(weft.gather, tasks)   -- gather cancels the waiting tasks
log("events version: %s", tostring(err):gsub("\n", "\n       "))
log("%s (ok=%s)", err.kind, tostring(ok))
