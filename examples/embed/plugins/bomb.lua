-- Hostile: allocates until something stops it.
local hoard = {}
while true do
  hoard[#hoard + 1] = ("x"):rep(64 * 1024) .. #hoard
  if #hoard % 64 == 0 then weft.yield() end
end
