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

local matchers = {}   -- segment -> its matcher (segments repeat across globs and runs)

local function any() return true end

--- A function telling whether a name matches the segment `seg`, or nil if it
-- has no wildcard. The common `*SUFFIX` (`*.c`) compares the end of the name
-- instead of running the pattern, whose `[^/]*` backtracks over the name.
function M.matcher(seg)
  local m = matchers[seg]
  if m ~= nil then return m or nil end
  local pat = M.segment(seg)
  if not pat then
    m = false
  elseif seg == "*" then
    m = any
  elseif seg:sub(1, 1) == "*" and not seg:find("[%*%?%[]", 2) then
    local suffix, n = seg:sub(2), 1 - #seg
    m = function(name) return name:sub(n) == suffix end
  else
    m = function(name) return name:match(pat) ~= nil end
  end
  matchers[seg] = m
  return m or nil
end

return M
