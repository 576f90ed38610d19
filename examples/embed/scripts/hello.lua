-- awaits both of the application's operations
local who = ...
local t0 = weft.now()
app.delay(50):await()
local sum = app.checksum(("weft"):rep(250000)):await()
print(("hello %s: checksum %08x after %.2fs"):format(who, sum, weft.now() - t0))
