--- Chrome trace-event JSON of a pipeline run (`weft run --trace FILE`),
-- which Perfetto and chrome://tracing open: one track per concurrent slot
-- (named by a `thread_name` metadata event), a complete event (`"ph":"X"`)
-- per task, and one per process a task ran, nested inside it.
-- @module weft.trace
local M = {}

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

--- A small JSON encoder: strings, finite numbers (integers stay integral),
-- booleans, nil/null, arrays (tables with [1] or empty `{}` marked by
-- `M.array`) and objects with string keys (sorted, so output is stable).
local array_mt = {}
function M.array(t) return setmetatable(t or {}, array_mt) end

function M.encode(v)
  local t = type(v)
  if t == "string" then return encode_string(v)
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    if math.type(v) == "integer" then return tostring(v) end
    return ("%.17g"):format(v)
  elseif t == "boolean" then return tostring(v)
  elseif t == "nil" then return "null"
  elseif t == "table" then
    local parts = {}
    if getmetatable(v) == array_mt or v[1] ~= nil then
      for i = 1, #v do parts[i] = M.encode(v[i]) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    for i, k in ipairs(keys) do parts[i] = encode_string(k) .. ":" .. M.encode(v[k]) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  error("cannot encode a " .. t .. " as JSON")
end

local function us(s) return math.floor(s * 1e6 + 0.5) end

--- The trace events of a finished run, as a Lua table.
function M.events(run)
  local ev, t0 = {}, run.started
  ev[#ev + 1] = { name = "process_name", ph = "M", pid = 1, tid = 0,
    args = { name = "weft run " .. (run.pipeline.file or "") } }
  for slot = 1, run.nslots do
    ev[#ev + 1] = { name = "thread_name", ph = "M", pid = 1, tid = slot,
      args = { name = "slot " .. slot } }
  end
  for _, rec in ipairs(run.list) do
    if rec.start then
      local fin = rec.finish or run.finished
      ev[#ev + 1] = { name = rec.name, cat = "task", ph = "X", pid = 1, tid = rec.slot,
        ts = us(rec.start - t0), dur = us(fin - rec.start),
        args = { status = rec.status, attempts = rec.attempts } }
      for _, p in ipairs(rec.procs or {}) do
        -- slurm (#19): a batch job's queue wait is its own slice before the run
        local from, to = p.run_start or p.start, p.run_end or p.finish or fin
        if p.queued then
          ev[#ev + 1] = { name = ("queue wait (slurm job %s)"):format(p.job), cat = "queue",
            ph = "X", pid = 1, tid = rec.slot, ts = us(p.queued - t0),
            dur = us(from - p.queued), args = { job = p.job } }
        end
        ev[#ev + 1] = { name = table.concat(p.argv, " "):sub(1, 120), cat = "process",
          ph = "X", pid = 1, tid = rec.slot, ts = us(from - t0),
          dur = us(to - from), args = { code = p.code, job = p.job, state = p.state } }
      end
    end
  end
  return ev
end

--- Writes the trace of `run` to `path`.
function M.write(run, path)
  local f = assert(io.open(path, "wb"))
  f:write(M.encode({ traceEvents = M.events(run), displayTimeUnit = "ms" }), "\n")
  f:close()
end

return M
