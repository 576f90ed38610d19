-- gives up on a slow operation: the application hears about it
local ok, err = pcall(weft.wait_for, function() return app.delay(10000):await() end, 0.05)
print("impatient: " .. tostring(err))
