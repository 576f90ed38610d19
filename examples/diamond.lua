-- The diamond: task 1 runs first, 2 and 3 run in parallel once it is done,
-- 4 runs when both are done. Each step sleeps 1 s, so the whole run takes
-- 3 s, not 4: weft runs independent tasks concurrently on one thread.
--   build/weft examples/diamond.lua
local weft = require "weft"

local t0 = weft.now()
local function stamp() return ("%.2fs"):format(weft.now() - t0) end

local function step(n)
  print(("task %d starting at %s"):format(n, stamp()))
  weft.sleep(1)
  print(("task %d done at %s"):format(n, stamp()))
  return n
end

weft.run(function()
  step(1)
  weft.gather({ function() return step(2) end, function() return step(3) end })
  step(4)
end)
print(("total %s"):format(stamp()))
