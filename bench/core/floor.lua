-- The bare Lua 5.4 floor for spawn.lua: no event loop, only coroutines.
--   floor.lua N SHAPE [BATCH]
--   SHAPE loop:  for each task: coroutine.create, resume (runs to the yield),
--                resume (finishes)  -- the floor the issue names
--   SHAPE batch: create BATCH coroutines, resume each once, then each again
--                (the same shape as spawn.lua: all of a batch are suspended
--                at once); BATCH = N is all at once
--   SHAPE object: batch, and each coroutine has the smallest object a task
--                handle could be (an empty table: 56 bytes, less than any
--                userdata with a user value) held in an anchor table from
--                its create until it finishes, as a scheduler must hold an
--                unfinished task whose handle the caller dropped. What one
--                Lua object a task costs, whoever makes it (issue 16)
-- Timed with luv's uv.hrtime (the clock weft.now uses) when lua-luv is
-- installed, else os.clock.
local N = math.tointeger(tonumber(arg[1] or "1000000"))
local SHAPE = arg[2] or "loop"
local BATCH = math.tointeger(tonumber(arg[3] or "1000"))

local ok, uv = pcall(require, "luv")
local now = ok and function() return uv.hrtime() * 1e-9 end or os.clock

local create, resume, yield = coroutine.create, coroutine.resume, coroutine.yield
local function body() yield() end

local function object()
  local anchor = {}
  for _ = 1, N // BATCH do
    local list = {}
    for i = 1, BATCH do
      local co = create(body)
      list[i] = co
      anchor[i] = {}
      resume(co)
    end
    for i = 1, BATCH do
      resume(list[i])
      anchor[i] = false
    end
  end
end

local function loop()
  for _ = 1, N do
    local co = create(body)
    resume(co)
    resume(co)
  end
end

local function batch()
  for _ = 1, N // BATCH do
    local list = {}
    for i = 1, BATCH do
      local co = create(body)
      list[i] = co
      resume(co)
    end
    for i = 1, BATCH do resume(list[i]) end
  end
end

collectgarbage()
local t0 = now()
if SHAPE == "loop" then loop() elseif SHAPE == "object" then object() else batch() end
local dt = now() - t0
print(("time=%.4f us_per_task=%.3f n=%d shape=%s batch=%d")
  :format(dt, dt / N * 1e6, N, SHAPE, SHAPE == "loop" and 1 or BATCH))
