-- Hostile: allocates until something stops it (a quarter megabyte per step: a bomb,
-- not a spinner).
local hoard = {}
while true do
  hoard[#hoard + 1] = ("x"):rep(256 * 1024) .. #hoard
  weft.yield()
end
