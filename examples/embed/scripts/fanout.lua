-- several delays at once: they overlap on the application's loop
local t0 = weft.now()
local tasks = {}
for i = 1, 5 do
  tasks[i] = weft.spawn(function() app.delay(100):await() return i end)
end
local r = weft.gather(tasks)
print(("fanout: %d delays of 0.1s took %.1fs"):format(#r, weft.now() - t0))
