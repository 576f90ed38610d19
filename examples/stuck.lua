-- Three tasks waiting on each other in a cycle, plus a healthy one.
--   build/weft --debug examples/stuck.lua     the Deadlock report names each task,
--                                            what it waits on and where it was spawned
--   press Ctrl-\ while it runs (SIGQUIT)     a dump of every live task; the run goes on
local e1, e2, e3 = weft.event(), weft.event(), weft.event()
local a = weft.spawn(function() e3:wait() e1:set() end)
local b = weft.spawn(function() e1:wait() e2:set() end)
local c = weft.spawn(function() e2:wait() e3:set() end)
a.name, b.name, c.name = "a", "b", "c"
local healthy = weft.spawn(function() for _ = 1, 3 do weft.sleep(0.1) end print("healthy done") end)
healthy.name = "healthy"
print("ready")
io.stdout:flush()
healthy:await()
weft.gather({ a, b, c })
