--- weft.on_signal: run a task each time a signal arrives. Each handler is
-- a luv signal handle of its own (so every handler of a signal runs, and an
-- open handler keeps the run alive); the luv callback only spawns the task.
-- When the last handler of a signal is closed, libuv puts the default
-- action back. User docs: docs/io.md (weft.on_signal).
-- @module weft.signal
local weft = require "weft"
local uv = require "weft.lazy_uv"   -- luv opened on first use

local M = {}

local open_handlers = {}   -- signal name -> handlers not yet closed

local Handler = {}
Handler.__index = Handler
Handler.__name = "weft.signal_handler"

--- Runs `fn(name)` as a new task each time signal `name` ("SIGHUP", ...)
-- arrives. Returns a handle with `close()` (also `<close>`).
-- @string name
-- @func fn
function M.on_signal(name, fn)
  if type(name) ~= "string" or not name:match("^SIG%u+%d*$") then
    error(("bad argument #1 to 'on_signal' (signal name such as \"SIGHUP\" expected, got %s)")
      :format(type(name) == "string" and ("%q"):format(name) or type(name)), 2)
  end
  if type(fn) ~= "function" then
    error(("bad argument #2 to 'on_signal' (function expected, got %s)"):format(type(fn)), 2)
  end
  local h = uv.new_signal()
  local ok, err = pcall(h.start, h, name:lower(), function() weft.spawn(fn, name) end)
  if not ok or err == nil then
    h:close()
    error(("bad argument #1 to 'on_signal' (unknown signal %s)"):format(name), 2)
  end
  open_handlers[name] = (open_handlers[name] or 0) + 1
  return setmetatable({ handle = h, name = name }, Handler)
end

--- Stops handling; the signal's default action is back once its last
-- handler is closed. Closing again is fine.
function Handler:close()
  if self.handle then
    self.handle:close()
    self.handle = nil
    open_handlers[self.name] = open_handlers[self.name] - 1
    -- the CLI handles SIGINT and SIGTERM itself: give them back to it
    local restore = rawget(weft, "_restore_signal")
    if open_handlers[self.name] == 0 and restore then restore(self.name) end
  end
end

Handler.__close = Handler.close
Handler.__tostring = function(h)
  return ("weft.signal_handler (%s%s)"):format(h.name, h.handle and "" or ", closed")
end

return M
