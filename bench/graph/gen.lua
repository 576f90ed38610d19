-- Graph generators shared by the Lua benchmarks (the Python peer builds the
-- same graphs in peer_run_dag.py).
--   layered(n, width, deps): layers of `width` nodes, each node depending on
--     `deps` distinct nodes of the previous layer (node i of a layer on
--     nodes i, i+1, ..., i+deps-1 of the previous one, modulo width)
--   wide(n): n independent nodes
local M = {}

function M.layered(n, width, deps)
  width, deps = width or 100, deps or 3
  local g = {}
  for i = 1, n do
    local layer, pos = (i - 1) // width, (i - 1) % width
    local preds = {}
    if layer > 0 then
      for k = 0, deps - 1 do
        preds[#preds + 1] = (layer - 1) * width + (pos + k) % width + 1
      end
    end
    g[i] = preds
  end
  return g
end

function M.wide(n)
  local g = {}
  for i = 1, n do g[i] = {} end
  return g
end

return M
