-- Runs bench/core/spawn.lua with one no-op instrument installed, to price
-- the hooks: `weft noop_instrument.lua N BATCH MODE`.
local weft = require "weft"
local nop = function() end
weft.instrument({ spawned = nop, step = nop, finished = nop, idle = nop })
arg[0] = "bench/core/spawn.lua"
dofile("bench/core/spawn.lua")
