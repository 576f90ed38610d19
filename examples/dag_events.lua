-- Scheduling a task graph by hand, approach 1: one event per task.
-- Every node is spawned at once; each waits for the events of its
-- predecessors, works, then sets its own event. Correct and simple, but
-- every task exists (and waits) from the start, and a cycle just hangs
-- (weft reports it as a Deadlock: see dag_cycle.lua).
-- Run: build/weft examples/dag_events.lua   (the diamond takes 3.0x s)
local weft = require "weft"

local graph = {[1] = {}, [2] = {1}, [3] = {1}, [4] = {2, 3}}   -- the diamond
local t0 = weft.now()
local function log(fmt, ...)
  print(("[%4.2f] " .. fmt):format(weft.now() - t0, ...))
end

local function work(node)
  log("start %s", node)
  weft.sleep(1)
  log("done  %s", node)
end

local events = {}
for node in ipairs(graph) do events[node] = weft.event() end

local tasks = {}
for node, preds in ipairs(graph) do
  tasks[#tasks + 1] = weft.spawn(function()
    for _, p in ipairs(preds) do events[p]:wait() end
    work(node)
    events[node]:set()
  end)
end
weft.gather(tasks)
log("all done in %.2f s", weft.now() - t0)
