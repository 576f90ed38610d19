-- N tasks sleeping S seconds concurrently: wall time and memory.
--   sleep.lua N S MODE     MODE: gather (default) | await
-- Prints key=value pairs: wall (s, from the first spawn until every task
-- has finished), base_kb (VmRSS before the tasks), peak_kb (VmHWM at the
-- end) and bytes_per_task = (peak - base) / N.
local weft = require "weft"

local N = math.tointeger(tonumber(arg[1] or "100000"))
local S = tonumber(arg[2] or "1")
local MODE = arg[3] or "gather"

local function status_kb(key)
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match(key .. ":%s*(%d+) kB"))
end

local sleep, spawn = weft.sleep, weft.spawn

local function main()
  local list = {}
  for i = 1, N do list[i] = spawn(sleep, S) end
  if MODE == "await" then
    for i = 1, N do list[i]:await() end
  else
    weft.gather(list)
  end
end

collectgarbage()
local base = status_kb("VmRSS")
local t0 = weft.now()
weft.run(main)
local wall = weft.now() - t0
local peak = status_kb("VmHWM")
print(("wall=%.4f base_kb=%d peak_kb=%d bytes_per_task=%.0f n=%d mode=%s")
  :format(wall, base, peak, (peak - base) * 1024 / N, N, MODE))
