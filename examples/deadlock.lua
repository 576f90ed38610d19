-- Two tasks, each waiting for an event the other one sets only after its
-- own wait: nothing can ever wake them. weft notices and raises Deadlock
-- in the main task, naming who waits on what, instead of hanging.
--   build/weft examples/deadlock.lua
local weft = require "weft"

weft.run(function()
  local a_ready, b_ready = weft.event(), weft.event()
  local a = weft.spawn(function() b_ready:wait() a_ready:set() end)
  local b = weft.spawn(function() a_ready:wait() b_ready:set() end)
  a.name, b.name = "a", "b"
  local ok, err = pcall(weft.gather, { a, b })
  print(tostring(err))
  print(("err.kind = %s, %d tasks waiting"):format(err.kind, #err.waiting))
  a:cancel()
  b:cancel()
end)
