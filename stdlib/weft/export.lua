--- The task graph as Graphviz DOT or Mermaid text, for `weft run --graph`.
-- Edges go from a dependency to the task that needs it.
-- @module weft.export
local M = {}

local function dot_id(s)
  return '"' .. s:gsub('[\\"]', "\\%0") .. '"'
end

--- DOT text for the task records in `list` (as pipeline:select returns).
function M.dot(list)
  local out = { "digraph weft {", "  rankdir=LR;" }
  for _, rec in ipairs(list) do
    local label = rec.desc and (" [tooltip=" .. dot_id(rec.desc) .. "]") or ""
    out[#out + 1] = "  " .. dot_id(rec.name) .. label .. ";"
  end
  for _, rec in ipairs(list) do
    for _, d in ipairs(rec.deps) do
      out[#out + 1] = ("  %s -> %s;"):format(dot_id(d), dot_id(rec.name))
    end
  end
  out[#out + 1] = "}"
  return table.concat(out, "\n") .. "\n"
end

--- Mermaid flowchart text for the task records in `list`.
function M.mermaid(list)
  local ids, out = {}, { "graph LR" }
  for i, rec in ipairs(list) do
    ids[rec.name] = "t" .. i
    out[#out + 1] = ('  t%d["%s"]'):format(i, rec.name:gsub('"', "#quot;"))
  end
  for _, rec in ipairs(list) do
    for _, d in ipairs(rec.deps) do
      out[#out + 1] = ("  %s --> %s"):format(ids[d], ids[rec.name])
    end
  end
  return table.concat(out, "\n") .. "\n"
end

return M
