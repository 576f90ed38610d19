--- weft.uv (luv) for the stdlib's own modules, looked up on first use.
-- luv is opened the first time weft.uv is read (issue 13: a no-op `weft run`
-- never needs it), so a module that may need luv takes this table at
-- require and reads weft.uv's functions from it only when it calls them.
-- @module weft.lazy_uv
local weft = require "weft"

return setmetatable({}, { __index = function(t, k)
  local v = weft.uv[k]
  t[k] = v
  return v
end })
