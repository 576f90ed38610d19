-- One task computing without awaiting (a numeric loop and table work):
-- where a step budget's count hook fires most (every 1000 instructions).
--   compute.lua N
-- Prints time=seconds of the loop.
local weft = require "weft"
local N = math.tointeger(tonumber(arg[1] or "20000000"))

local t = weft.run(function()
  local t0 = weft._hrtime()
  local acc, tab = 0, {}
  for i = 1, N do
    acc = (acc + i * 7) % 1000003
    if i % 64 == 0 then tab[#tab % 1024 + 1] = acc end
  end
  return weft._hrtime() - t0
end)
print(("time=%.4f"):format(t))
