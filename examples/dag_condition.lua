-- Scheduling a task graph by hand, approach 2: one shared condition.
-- Each task waits on the same condition until all its predecessors are
-- done; each finish calls notify_all. Every finish wakes every waiter to
-- re-check its predicate: the thundering herd, O(N x width) wake-ups.
-- Run: build/weft examples/dag_condition.lua   (the diamond takes 3.0x s)
local weft = require "weft"

local graph = {[1] = {}, [2] = {1}, [3] = {1}, [4] = {2, 3}}   -- the diamond
local t0 = weft.now()
local function log(fmt, ...)
  print(("[%4.2f] " .. fmt):format(weft.now() - t0, ...))
end

local cond = weft.condition()
local finished = {}
local wakeups = 0

local function ready(preds)
  wakeups = wakeups + 1
  for _, p in ipairs(preds) do
    if not finished[p] then return false end
  end
  return true
end

local tasks = {}
for node, preds in ipairs(graph) do
  tasks[#tasks + 1] = weft.spawn(function()
    cond:with(function() cond:wait_for(function() return ready(preds) end) end)
    log("start %s", node)
    weft.sleep(1)
    log("done  %s", node)
    cond:with(function()
      finished[node] = true
      cond:notify_all()
    end)
  end)
end
weft.gather(tasks)
log("all done in %.2f s, %d predicate checks for %d nodes", weft.now() - t0, wakeups, #tasks)
