--- Chrome trace-event JSON, streamed to a file: the format Perfetto and
-- chrome://tracing open. One writer serves `weft --trace` (any script) and
-- `weft run --trace` (pipelines).
-- @module weft.trace_writer
local M = {}

local format, concat, type, pairs, tostring = string.format, table.concat, type, pairs, tostring
local floor = math.floor

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function quote(s)
  s = tostring(s):gsub('[%c"\\]', function(c)
    return escapes[c] or format("\\u%04x", c:byte())
  end)
  return '"' .. s .. '"'
end
M.quote = quote

local function encode(v)
  local t = type(v)
  if t == "string" then return quote(v) end
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    if math.type(v) == "integer" then return tostring(v) end
    return format("%.3f", v)
  end
  if t == "boolean" then return tostring(v) end
  if t == "table" then
    local parts = {}
    for k, x in pairs(v) do parts[#parts + 1] = quote(k) .. ":" .. encode(x) end
    return "{" .. concat(parts, ",") .. "}"
  end
  return "null"
end
M.encode = encode

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
  local parts = {}
  for k, v in pairs(ev) do parts[#parts + 1] = quote(k) .. ":" .. encode(v) end
  self.file:write(self.first and "" or ",\n", "{", concat(parts, ","), "}")
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
