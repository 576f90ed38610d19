--- The parts of the weft module that are naturally Lua, added onto the C
-- classes when `require "weft"` runs.
-- @module weft.core
local weft, classes = ...

local Condition = classes["weft.condition"].__index

--- Waits until `pred()` returns a true value, re-checking after each wake-up.
-- The lock must be held, as for `wait`.
-- @tparam function pred
-- @return the true value `pred` returned
function Condition:wait_for(pred)
  if type(pred) ~= "function" and not (getmetatable(pred) or {}).__call then
    error(("bad argument #1 to 'wait_for' (function expected, got %s)"):format(type(pred)), 2)
  end
  local result = pred()
  while not result do
    self:wait()
    result = pred()
  end
  return result
end

-- Parts of the module written in Lua that need "weft" themselves load on
-- first use: weft.pipeline and friends.
local lazy = { pipeline = "weft.pipeline" }
local previous = getmetatable(weft)
local fallback = previous and previous.__index
setmetatable(weft, {
  __index = function(t, k)
    local name = lazy[k]
    if name then
      local m = require(name)
      rawset(t, k, m)
      return m
    end
    if type(fallback) == "function" then return fallback(t, k) end
    if type(fallback) == "table" then return fallback[k] end
    return nil
  end,
})

return weft
