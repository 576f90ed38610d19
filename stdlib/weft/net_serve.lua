--- The Lua side of weft.net's servers (host/net.c): each accepted
-- connection runs `serve` as a task, and `server:close()` is `close`.
-- @module weft.net_serve
local M = {}

local function with_traceback(e)
  return { e = e, tb = debug.traceback(tostring(e), 2) }
end

--- Makes the two functions for the weft module being opened (net.c calls
-- this while `require "weft"` is still running, so weft comes as an argument).
-- @tparam table weft the module
-- @tparam function report prints a message as an unobserved error is printed
-- @tparam function stop stops a server listening: its running handler tasks,
--   or nil when it was closed already; raises close's argument error
-- @treturn function serve(handler, stream, tasks, peer): runs handler(stream)
--   under xpcall, then closes the stream; a failure other than a
--   cancellation is reported with the peer, without failing the task
-- @treturn function close(server): stops listening, cancels the running
--   handlers and, inside a task, waits for them
function M.bind(weft, report, stop)
  local function serve(handler, stream, tasks, peer)
    local me = weft.current()
    tasks[me] = true
    local ok, err = xpcall(handler, with_traceback, stream)
    tasks[me] = nil
    stream:close()
    if not ok and not weft.is_error(err.e, "Cancelled") then
      report("weft.net: handler error (peer " .. peer .. "): " .. err.tb .. "\n")
    end
  end
  local function close(server)
    local tasks = stop(server)
    if not tasks then return end
    local me, list = weft.current(), {}
    for t in pairs(tasks) do if t ~= me then list[#list + 1] = t end end
    for _, t in ipairs(list) do t:cancel() end
    if me and #list > 0 then weft.wait(list) end
  end
  return serve, close
end

return M
