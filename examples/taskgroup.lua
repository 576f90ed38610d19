-- Structured concurrency: a task group whose child fails. The failure
-- cancels its long-running sibling, whose cleanup runs, and the group
-- raises an ErrorGroup holding the failure.
--   build/weft examples/taskgroup.lua
local weft = require "weft"

weft.run(function()
  local ok, err = pcall(weft.group, function(g)
    g:spawn(function()
      local ok, e = pcall(weft.sleep, 60)
      print("long task: cleaning up after " .. tostring(e))
      error(e, 0)   -- let the cancellation go on
    end)
    g:spawn(function()
      weft.sleep(0.2)
      error("failing task: could not reach the database")
    end)
  end)
  print("group raised: " .. tostring(err))
  for i, e in ipairs(err.errors) do
    print(("  error %d: %s"):format(i, tostring(e)))
  end
end)
