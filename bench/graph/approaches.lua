-- The three hand-rolled approaches of examples/dag_*.lua against
-- run_graph on one layered graph (width 100, 3 deps per node), bodies that
-- yield once. usage: build/weft bench/graph/approaches.lua events|condition|memo|run_graph N
-- prints: <seconds>
package.path = "bench/graph/?.lua;" .. package.path
local weft = require "weft"
local gen = require "gen"

local approach, n = arg[1], tonumber(arg[2])
local graph = gen.layered(n)
local yield = weft.yield

local run = {}

function run.events()
  local events, tasks = {}, {}
  for node = 1, n do events[node] = weft.event() end
  for node = 1, n do
    local preds = graph[node]
    tasks[node] = weft.spawn(function()
      for _, p in ipairs(preds) do events[p]:wait() end
      yield()
      events[node]:set()
    end)
  end
  weft.gather(tasks)
end

function run.condition()
  local cond, finished, tasks = weft.condition(), {}, {}
  for node = 1, n do
    local preds = graph[node]
    local function ready()
      for _, p in ipairs(preds) do if not finished[p] then return false end end
      return true
    end
    tasks[node] = weft.spawn(function()
      cond:with(function() cond:wait_for(ready) end)
      yield()
      cond:with(function() finished[node] = true; cond:notify_all() end)
    end)
  end
  weft.gather(tasks)
end

function run.memo()
  local memo = {}
  local function get(node)
    local t = memo[node]
    if not t then
      t = weft.spawn(function()
        local deps = {}
        for _, p in ipairs(graph[node]) do deps[#deps + 1] = get(p) end
        weft.gather(deps)
        yield()
        return node
      end)
      memo[node] = t
    end
    return t
  end
  local all = {}
  for node = 1, n do all[node] = get(node) end
  weft.gather(all)
end

function run.run_graph()
  weft.run_graph(graph, function() yield() end)
end

local t0 = weft.now()
run[approach]()
print(("%.4f"):format(weft.now() - t0))
