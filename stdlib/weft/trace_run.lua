--- `weft --trace FILE.json`: records a whole run with weft.instrument and
-- writes it as Chrome trace events: one track per task (named after it),
-- a slice per step, a slice for each wait between steps labelled with what
-- the task waited on, and markers where tasks were spawned, cancelled and
-- finished.
-- @module weft.trace_run
local weft = require "weft"
local writer = require "weft.trace_writer"

local M = {}

local active

--- Starts tracing to `path`. Raises if the file cannot be written.
-- @string path
function M.start(path)
  local w = writer.open(path)
  local t0
  local names, last_end, waiting = {}, {}, {}
  local function us(seconds)
    t0 = t0 or seconds
    return (seconds - t0) * 1e6
  end
  local function track(task)
    local name = task.name
    if names[task.id] ~= name then
      names[task.id] = name
      w:track_name(task.id, name)
    end
    return task.id
  end
  local now = weft._hrtime
  active = {
    writer = w,
    instrument = weft.instrument({
      spawned = function(task)
        local by = weft.current()
        w:marker(track(task), "spawned", us(now()), by and { by = by.name } or nil)
      end,
      step = function(task, seconds, on, ended)
        local tid = track(task)
        local start = us(ended - seconds)
        if last_end[tid] and waiting[tid] then
          w:slice(tid, "wait: " .. waiting[tid], last_end[tid], start - last_end[tid],
            { on = waiting[tid] })
        end
        w:slice(tid, task.name, start, seconds * 1e6)
        last_end[tid] = us(ended)
        waiting[tid] = on
      end,
      cancelled = function(task)
        w:marker(track(task), "cancelled", us(now()))
      end,
      finished = function(task)
        w:marker(track(task), "finished", us(now()), { status = task:status() })
        last_end[task.id], waiting[task.id] = nil, nil
      end,
    }),
  }
end

--- Stops tracing and completes the file (also after Ctrl-C or an error).
function M.stop()
  if not active then return end
  active.instrument:close()
  active.writer:close()
  active = nil
end

return M
