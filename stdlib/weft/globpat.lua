--- Glob segments as Lua patterns, shared by weft.fs.glob and the
-- synchronous glob of weft.incremental: `*` and `?` within a segment and
-- `[...]` classes (`[a-c]`, `[!x]` for "not x"). nil when a segment has no
-- wildcard, so callers can take it literally.
-- @module weft.globpat
local M = {}

--- The anchored Lua pattern for one path segment, or nil if it has no wildcard.
function M.segment(seg)
  if not seg:find("[%*%?%[]") then return nil end
  local out, i = { "^" }, 1
  while i <= #seg do
    local c = seg:sub(i, i)
    local close = c == "[" and seg:find("]", i + 2, true)
    if close then   -- a class: ranges kept, only % and a leading ! translated
      local set = seg:sub(i + 1, close - 1):gsub("%%", "%%%%"):gsub("^!", "^")
      out[#out + 1] = "[" .. set .. "]"
      i = close
    elseif c == "*" then out[#out + 1] = "[^/]*"
    elseif c == "?" then out[#out + 1] = "[^/]"
    else out[#out + 1] = c:gsub("%W", "%%%0") end
    i = i + 1
  end
  return table.concat(out) .. "$"
end

return M
