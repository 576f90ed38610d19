-- A deadline around a slow task: wait_for cancels it when time is up, its
-- cleanup runs, and the caller gets a Timeout error it can catch.
--   build/weft examples/timeout.lua
local weft = require "weft"

weft.run(function()
  local slow = weft.spawn(function()
    local file <close> = setmetatable({}, { __close = function()
      print("slow task: cleanup ran (files closed, locks released)")
    end })
    weft.sleep(10)
    return "never"
  end)
  local t0 = weft.now()
  local ok, err = pcall(weft.wait_for, slow, 0.5)
  print(("wait_for gave up after %.2fs: %s"):format(weft.now() - t0, tostring(err)))
  print("slow task is " .. slow:status())

  -- the same with weft.timeout around a block of code
  ok, err = pcall(weft.timeout, 0.2, function() weft.sleep(5) end)
  print("weft.timeout: " .. tostring(err) .. " (kind " .. err.kind .. ")")
end)
