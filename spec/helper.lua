-- Loaded by busted before the specs (see .busted). Makes build/weft.so (or
-- $WEFT_BUILD/weft.so under `make check`) the module `require "weft"`
-- finds, and checks after every spec that nothing was left behind: no live
-- task, no armed deadline, no referenced libuv handle. A leftover is
-- cleaned up (so one spec cannot break the next) and reported as a failure.
local build = os.getenv("WEFT_BUILD") or "build"
package.cpath = "./" .. build .. "/?.so;" .. package.cpath

local weft = require "weft"
local busted = require "busted"

local function leftovers()
  local s = weft._stats()
  if s.tasks == 0 and s.deadlines == 0 and s.handles == 0 then
    return nil
  end
  local names = {}
  for _, rec in ipairs(weft.tasks()) do
    names[#names + 1] = ("%s (%s%s)"):format(rec.name, rec.status, rec.on and ", on " .. rec.on or "")
  end
  return ("left behind: %d tasks [%s], %d deadlines, %d handles")
    :format(s.tasks, table.concat(names, ", "), s.deadlines, s.handles)
end

local function clean_up()
  for _ = 1, 3 do
    local live = weft.tasks()
    if #live == 0 then return end
    pcall(weft.run, function()
      for _, rec in ipairs(live) do rec.task:cancel() end
      for _, rec in ipairs(live) do pcall(rec.task.await, rec.task) end
    end)
  end
end

-- A spec fails when one of its tasks failed and nobody observed the error
-- (weft reported it on stderr when its run ended): such an error would
-- otherwise only show as noise between the dots.
local reported_before = 0
busted.subscribe({ "test", "start" }, function()
  reported_before = weft._stats().reported
  return nil, true
end)
busted.subscribe({ "test", "end" }, function(element, parent, status)
  local n = weft._stats().reported - reported_before
  if n > 0 and status == "success" then
    local problem = ("%d task error%s nobody observed (see stderr)"):format(n, n > 1 and "s" or "")
    busted.publish({ "failure", "it" }, element, parent, problem, {})
    busted.publish({ "failure" }, element, parent, problem, {})
  end
  return nil, true
end)

busted.subscribe({ "test", "end" }, function(element, parent, status)
  require("support.cli").stop_all()   -- what a failed test left running
  local problem = leftovers()
  if problem then
    clean_up()
    if status == "success" then
      busted.publish({ "failure", "it" }, element, parent, problem, {})
      busted.publish({ "failure" }, element, parent, problem, {})
    end
  end
  return nil, true
end)

return true
