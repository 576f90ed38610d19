-- Threads: 8 calls of a CPU-bound Lua function through weft.thread at once,
-- against the same 8 calls one after another on the loop, while a task
-- sleeps 10 ms in a loop and records the longest gap between its wake-ups.
package.cpath = "./" .. (os.getenv("WEFT_BUILD") or "build") .. "/?.so;" .. package.cpath
local weft = require "weft"
local calls, work = tonumber(arg[1]) or 8, tonumber(arg[2]) or 20000000

local function burn(k)
  local x = 0
  for i = 1, k do x = (x + i * i) % 1000003 end
  return x
end

local function ticker(stop)
  local worst, last = 0, weft._hrtime()
  while not stop.flag do
    weft.sleep(0.01)
    local now = weft._hrtime()
    if now - last > worst then worst = now - last end
    last = now
  end
  return worst
end

weft.run(function()
  local stop = { flag = false }
  local tick = weft.spawn(ticker, stop)
  weft.sleep(0.02)
  local t0 = weft._hrtime()
  for _ = 1, calls do burn(work) end
  local seq = weft._hrtime() - t0
  stop.flag = true
  local seq_gap = tick:await()

  stop = { flag = false }
  tick = weft.spawn(ticker, stop)
  weft.sleep(0.02)
  t0 = weft._hrtime()
  local tasks = {}
  for i = 1, calls do tasks[i] = weft.spawn(weft.thread, burn, work) end
  weft.gather(tasks)
  local par = weft._hrtime() - t0
  stop.flag = true
  local par_gap = tick:await()
  print(("threads: %d calls sequential %.3f s (longest timer gap %.0f ms), weft.thread %.3f s "
    .. "(longest timer gap %.1f ms), speed-up %.2fx"):format(calls, seq, seq_gap * 1e3, par,
    par_gap * 1e3, seq / par))
end)
