-- Scheduling a task graph by hand, approach 3: recursion with memoized
-- tasks. run(node) starts the node's task the first time it is asked for
-- and returns the same task afterwards; the task first awaits run(p) for
-- each predecessor. No locks are needed: between two awaits nothing else
-- runs, so "look up, else spawn and remember" cannot race.
-- Run: build/weft examples/dag_memo.lua   (the diamond takes 3.0x s)
local weft = require "weft"

local graph = {[1] = {}, [2] = {1}, [3] = {1}, [4] = {2, 3}}   -- the diamond
local t0 = weft.now()
local function log(fmt, ...)
  print(("[%4.2f] " .. fmt):format(weft.now() - t0, ...))
end

local memo = {}
local function run(node)
  if not memo[node] then
    memo[node] = weft.spawn(function()
      local deps = {}
      for _, p in ipairs(graph[node] or {}) do deps[#deps + 1] = run(p) end
      weft.gather(deps)
      log("start %s", node)
      weft.sleep(1)
      log("done  %s", node)
      return node
    end)
  end
  return memo[node]
end

local all = {}
for node in ipairs(graph) do all[#all + 1] = run(node) end
weft.gather(all)
log("all done in %.2f s", weft.now() - t0)
