--- Chrome trace-event JSON of a pipeline run (`weft run --trace FILE`),
-- which Perfetto and chrome://tracing open: one track per concurrent slot
-- (named by a `thread_name` metadata event), a complete event (`"ph":"X"`)
-- per task, and one per process a task ran, nested inside it.
-- @module weft.trace
local M = {}

local writer = require "weft.trace_writer"

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
-- @raise when the file cannot be written
function M.write(run, path)
  local w = writer.open(path)
  for _, ev in ipairs(M.events(run)) do w:event(ev) end
  w:close()
end

return M
