-- Raw luv callbacks waking tasks: a uv timer (callback style, outside any
-- task) sets a weft event three times; a task awaits each one.
-- Run: build/weft examples/uv_mix.lua
local weft = require "weft"
local uv = weft.uv

local tick = weft.event()
local count = 0
local timer = uv.new_timer()
timer:start(50, 50, function()          -- a luv callback: it may not await
  count = count + 1
  tick:set()
  if count == 3 then timer:close() end
end)

for i = 1, 3 do
  tick:wait()
  tick:clear()
  print(("task woke up on tick %d at %.2f s"):format(i, weft.now() % 1000))
end
print("the timer is closed, so the run ends")
