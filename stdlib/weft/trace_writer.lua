--- Chrome trace-event JSON, streamed to a file: the format Perfetto and
-- chrome://tracing open. One writer serves `weft --trace` (any script,
-- weft.trace_run) and `weft run --trace` (pipelines, weft.trace); each event
-- is encoded by weft.json.
-- @module weft.trace_writer
local M = {}

local encode = require("weft").json.encode
local floor = math.floor

local Writer = {}
Writer.__index = Writer

--- Opens `path` for writing a trace; raises with a clear message when the
-- file cannot be written (before anything runs).
-- @string path
-- @treturn table the writer
function M.open(path)
  local f, err = io.open(path, "w")
  if not f then
    error(("cannot write trace file: %s"):format(err), 0)
  end
  f:write('{"displayTimeUnit":"ms","traceEvents":[\n')
  return setmetatable({ file = f, first = true, path = path }, Writer)
end

--- Writes one event (a table with Chrome's fields: name, ph, ts, dur, pid, tid, args...).
function Writer:event(ev)
  if not self.file then return end
  ev.pid = ev.pid or 1
  self.file:write(self.first and "" or ",\n", encode(ev))
  self.first = false
end

--- Names a track (Chrome's thread_name metadata).
function Writer:track_name(tid, name)
  self:event({ name = "thread_name", ph = "M", tid = tid, args = { name = name } })
end

--- A complete slice: `ts` and `dur` in microseconds.
function Writer:slice(tid, name, ts, dur, args)
  self:event({ name = name, ph = "X", tid = tid, ts = floor(ts), dur = floor(dur), args = args })
end

--- A marker on a track at `ts` (microseconds).
function Writer:marker(tid, name, ts, args)
  self:event({ name = name, ph = "i", s = "t", tid = tid, ts = floor(ts), args = args })
end

--- Ends the JSON and closes the file; safe to call twice.
function Writer:close()
  if not self.file then return end
  self.file:write("\n]}\n")
  self.file:close()
  self.file = nil
end

return M
