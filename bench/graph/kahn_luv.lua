-- The pure-Lua peer: the Kahn scheduler a Lua user would write on luv
-- (Debian lua-luv, under stock lua5.4). One coroutine per node; a node's
-- body yields once (resumed on the next loop turn by an idle handle); when
-- a node finishes, its successors' in-degrees drop and the ready ones start.
-- usage: lua5.4 bench/graph/kahn_luv.lua layered|wide N
-- prints: <seconds for the run>
package.path = "bench/graph/?.lua;" .. package.path
local uv = require "luv"
local gen = require "gen"

local function run_dag(graph, work)
  local indeg, succ, results = {}, {}, {}
  for node, preds in pairs(graph) do
    indeg[node] = (indeg[node] or 0) + #preds
    for _, p in ipairs(preds) do
      indeg[p] = indeg[p] or 0
      local s = succ[p]
      if not s then s = {}; succ[p] = s end
      s[#s + 1] = node
    end
  end
  local resume_next, nnext = {}, 0
  local idle = uv.new_idle()
  local start

  local function finish(node, value)
    results[node] = value
    local s = succ[node]
    if s then
      for i = 1, #s do
        local v = s[i]
        local d = indeg[v] - 1
        indeg[v] = d
        if d == 0 then start(v) end
      end
    end
  end

  local function step(co, node)
    local ok, done, value = coroutine.resume(co, node, results)
    if not ok then error(done) end
    if coroutine.status(co) == "dead" then
      finish(node, done)
    else
      nnext = nnext + 1
      resume_next[nnext] = co
      resume_next[-nnext] = node
    end
  end

  start = function(node)
    step(coroutine.create(work), node)
  end

  idle:start(function()
    local batch, nb = resume_next, nnext
    resume_next, nnext = {}, 0
    for i = 1, nb do step(batch[i], batch[-i]) end
    if nnext == 0 then idle:stop() end
  end)
  for node, d in pairs(indeg) do
    if d == 0 then start(node) end
  end
  uv.run()
  idle:close()
  uv.run()
  return results
end

local kind, n = arg[1], tonumber(arg[2])
local g = gen[kind](n)
local yield = coroutine.yield
local function work(node) yield() return node end
local t0 = uv.hrtime()
local results = run_dag(g, work)
local t = (uv.hrtime() - t0) / 1e9
assert(results[n] == n)
print(("%.4f"):format(t))
