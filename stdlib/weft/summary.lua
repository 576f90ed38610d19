--- The end-of-run summary: each task's status and duration, the total wall
-- time, the sum of task times, the critical path with its length, and the
-- last output lines of every failed task.
-- @module weft.summary
local M = {}

local function duration(rec)
  if not rec.start then return 0 end
  return (rec.finish or rec.start) - rec.start
end
M.duration = duration

--- The critical path of a finished run: the chain of dependencies, through
-- tasks that ran, whose durations add up to the most.
-- @tab run as returned by pipeline:run
-- @treturn {rec,...} the path, first task first
-- @treturn number its length in seconds
function M.critical_path(run)
  local by_name, best, via = run.pipeline.by_name, {}, {}
  local function cost(rec)
    if best[rec] then return best[rec] end
    local b, v = 0, nil
    for _, d in ipairs(rec.deps) do
      local dep = by_name[d]
      if dep.start then
        local c = cost(dep)
        if c > b then b, v = c, dep end
      end
    end
    best[rec], via[rec] = b + duration(rec), v
    return best[rec]
  end
  local top, len = nil, -1
  for _, rec in ipairs(run.list) do
    if rec.start then
      local c = cost(rec)
      if c > len then top, len = rec, c end
    end
  end
  local path = {}
  while top do
    table.insert(path, 1, top)
    top = via[top]
  end
  return path, math.max(len, 0)
end

--- Seconds a task's processes waited in a batch queue (slurm #19), or nil.
function M.queue_wait(rec)
  local wait
  for _, p in ipairs(rec.procs or {}) do
    if p.queued and p.run_start then wait = (wait or 0) + (p.run_start - p.queued) end
  end
  return wait
end

local function fmt_time(s)
  if s >= 60 then return ("%dm%04.1fs"):format(s // 60, s % 60) end
  return ("%.2fs"):format(s)
end
M.fmt_time = fmt_time

--- The summary text (lines end with "\n").
-- @tab run
-- @tab[opt] opts `color` (boolean), `tail` (lines of output shown for a
-- failed task, default 10)
function M.render(run, opts)
  opts = opts or {}
  local paint = function(t, c) return opts.color and ("\27[%sm%s\27[0m"):format(c, t) or t end
  local out, width, total = {}, 4, 0
  for _, rec in ipairs(run.list) do width = math.max(width, #rec.name) end
  out[#out + 1] = "summary:"
  for _, rec in ipairs(run.list) do
    local d = duration(rec)
    total = total + d
    local status = rec.status
    local colored = paint(("%-11s"):format(status),
      (status == "done" or status == "up to date") and 32 or (status == "skipped" and 2 or 31))
    local extra = ""
    if (rec.attempts or 0) > 1 then extra = ("  (%d attempts)"):format(rec.attempts) end
    out[#out + 1] = ("  %-" .. width .. "s  %s %8s%s"):format(rec.name, colored,
      rec.start and fmt_time(d) or "-", extra)
  end
  local wall = (run.finished or run.started) - run.started
  local path, len = M.critical_path(run)
  local names = {}
  for i, rec in ipairs(path) do names[i] = rec.name end
  out[#out + 1] = ("total %s wall, %s of task time; critical path %s: %s"):format(
    fmt_time(wall), fmt_time(total), fmt_time(len),
    #names > 0 and table.concat(names, " -> ") or "(none)")
  for _, note in ipairs(run.notes or {}) do out[#out + 1] = note end   -- slurm (#19)
  for _, rec in ipairs(run.list) do
    if rec.status == "failed" or rec.status == "interrupted" then
      local msg = rec.error and tostring(rec.error):gsub("\n.*", "") or rec.status
      out[#out + 1] = paint(("%s %s: %s"):format(rec.status:upper(), rec.name, msg), 31)
      local tail, n = rec.tail or {}, opts.tail or 10
      for i = math.max(1, #tail - n + 1), #tail do
        out[#out + 1] = "  " .. rec.name .. " | " .. tail[i]
      end
    end
  end
  local interrupted = {}
  for _, rec in ipairs(run.list) do
    if rec.status == "interrupted" then interrupted[#interrupted + 1] = rec.name end
  end
  if run.timed_out then
    out[#out + 1] = paint("pipeline timed out", 31)
  elseif run.interrupted then
    out[#out + 1] = paint("interrupted; tasks cut short: " ..
      (#interrupted > 0 and table.concat(interrupted, ", ") or "none"), 31)
  end
  return table.concat(out, "\n") .. "\n"
end

return M
