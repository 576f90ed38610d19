-- An hour of retries with exponential backoff, under a deadline, run on
-- virtual time: every sleep and timeout completes at once, in order, so the
-- whole hour takes milliseconds and prints the same timestamps every run.
--   build/weft examples/virtual_time.lua
local weft = require "weft"

local attempts = 0
local function flaky_service()          -- down for the first 50 minutes
  attempts = attempts + 1
  weft.sleep(30)                        -- each call takes 30 s
  if weft.now() < 3000 then error("service unavailable", 0) end
  return "ok"
end

local function with_retries(fn, deadline)
  local delay = 10
  return weft.timeout(deadline, function()
    while true do
      local ok, result = pcall(weft.wait_for, fn, 60)
      if ok then return result end
      print(("t=%5ds  attempt %d failed (%s), retrying in %ds"):format(weft.now(), attempts,
        tostring(result), delay))
      weft.sleep(delay)
      delay = math.min(delay * 2, 600)
    end
  end)
end

local wall = os.clock()
local result = weft.run_virtual(function()
  local r = with_retries(flaky_service, 3600)
  print(("t=%5ds  %s after %d attempts"):format(weft.now(), r, attempts))
  local ok, err = pcall(weft.timeout, 100, weft.sleep, 500)
  print(("t=%5ds  then a 100 s deadline on a 500 s sleep: %s"):format(weft.now(), tostring(err)))
  return r
end)
print(("virtual hour done in %.3f s of CPU: %s"):format(os.clock() - wall, result))
