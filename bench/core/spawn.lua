-- Spawn + await N tasks whose body is one weft.yield().
-- Runs under the CLI (`weft spawn.lua ...`) and as a module under lua5.4
-- (the Makefile's build dir on package.cpath, see run.sh).
--   spawn.lua N BATCH MODE
--   BATCH: tasks spawned before any is awaited (N = all at once)
--   MODE:  gather (weft.gather(list), as asyncio.gather) | await (t:await() each)
-- Prints one line of key=value pairs; time is wall seconds of the loop only.
local weft = require "weft"

local N = math.tointeger(tonumber(arg[1] or "1000000"))
local BATCH = math.tointeger(tonumber(arg[2] or "1000"))
local MODE = arg[3] or "gather"

local yield, spawn, gather = weft.yield, weft.spawn, weft.gather
local function body() yield() end

local function run_gather()
  for _ = 1, N // BATCH do
    local list = {}
    for i = 1, BATCH do list[i] = spawn(body) end
    gather(list)
  end
end

local function run_await()
  for _ = 1, N // BATCH do
    local list = {}
    for i = 1, BATCH do list[i] = spawn(body) end
    for i = 1, BATCH do list[i]:await() end
  end
end

local work = MODE == "await" and run_await or run_gather
collectgarbage()
local t0 = weft.now()
weft.run(work)
local dt = weft.now() - t0
print(("time=%.4f us_per_task=%.3f n=%d batch=%d mode=%s")
  :format(dt, dt / N * 1e6, N, BATCH, MODE))
