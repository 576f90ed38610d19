-- A failure stops the run: node "fetch" fails while its sibling
-- "compile" is still working. run_graph cancels "compile" (which cleans up,
-- here with an await), starts nothing more ("link" is skipped), waits for
-- the cleanup, then raises GraphError with failures, cancelled, skipped
-- and the results of what finished.
-- Run: build/weft examples/dag_failure.lua
local weft = require "weft"

local graph = {
  prepare = {},
  fetch = {"prepare"},
  compile = {"prepare"},
  link = {"fetch", "compile"},
}
local t0 = weft.now()
local function log(fmt, ...)
  print(("[%4.2f] " .. fmt):format(weft.now() - t0, ...))
end

local ok, err = pcall(weft.run_graph, graph, function(node)
  log("start %s", node)
  if node == "fetch" then
    weft.sleep(0.5)
    log("fail  %s", node)
    error("fetch: connection refused", 0)
  end
  local finished, e = pcall(weft.sleep, node == "compile" and 5 or 1)
  if not finished then
    log("%s cancelled: cleaning up", node)
    weft.sleep(0.2)
    log("%s clean", node)
    error(e)
  end
  log("done  %s", node)
  return node .. " ok"
end)
log("ok=%s", tostring(ok))
log("%s", tostring(err))
for _, f in ipairs(err.failures) do log("failed:    %s: %s", f.node, tostring(f.error)) end
log("cancelled: %s", table.concat(err.cancelled, ", "))
log("skipped:   %s", table.concat(err.skipped, ", "))
log("results:   prepare=%s", tostring(err.results.prepare))
