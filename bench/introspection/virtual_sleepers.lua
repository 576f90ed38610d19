-- 100k tasks sleeping random durations of up to one day, on virtual time:
-- the whole day runs at once. Prints wall time, the virtual time reached,
-- and peak RSS (VmHWM) growth per task.
--   weft virtual_sleepers.lua [N]
local weft = require "weft"
local N = math.tointeger(tonumber(arg[1] or "100000"))

local function vmhwm_kb()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmHWM:%s+(%d+)")
    if kb then return tonumber(kb) end
  end
end

math.randomseed(42)
local before = vmhwm_kb()
local t0 = weft._hrtime()
local last, woken = weft.run_virtual(function()
  local last, woken = 0, 0
  local sleepers = {}
  for i = 1, N do
    local d = math.random() * 86400
    sleepers[i] = weft.spawn(function()
      weft.sleep(d)
      woken = woken + 1
      if weft.now() > last then last = weft.now() end
    end)
  end
  weft.gather(sleepers)
  return last, woken
end)
local wall = weft._hrtime() - t0
print(("time=%.4f virtual_end=%.0f woken=%d rss_per_task_bytes=%.0f n=%d")
  :format(wall, last, woken, (vmhwm_kb() - before) * 1024 / N, N))
