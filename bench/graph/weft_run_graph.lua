-- weft.run_graph on a generated graph with no-op bodies that yield once.
-- usage: build/weft bench/graph/weft_run_graph.lua layered|wide N [LIMIT]
-- prints: <seconds for run_graph>
package.path = "bench/graph/?.lua;" .. package.path
local weft = require "weft"
local gen = require "gen"

local kind, n, limit = arg[1], tonumber(arg[2]), tonumber(arg[3])
local g = gen[kind](n)
local yield = weft.yield
local function work(node) yield() return node end
local t0 = weft.now()
local results = weft.run_graph(g, work, limit and {limit = limit} or nil)
local t = weft.now() - t0
assert(results[n] == n)
print(("%.4f"):format(t))
