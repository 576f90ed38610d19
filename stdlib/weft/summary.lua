--- The end-of-run summary, sized for runs of any size: counts by status,
-- wall and task time, the slowest five tasks, the critical path, then one
-- block per failed task that says what to do about it (the error with its
-- exit code or signal, the chain of targets that needed the task, the last
-- lines of its stderr or output, a traceback trimmed to the user's frames
-- for a Lua error, and the command that reruns just that task). The table
-- of every task comes first when the run has at most `table_max` tasks or
-- with `full` (`weft run --summary full`).
-- @module weft.summary
local M = {}

local function duration(rec)
  if not rec.start then return 0 end
  return (rec.finish or rec.start) - rec.start
end
M.duration = duration

--- The critical path of a finished run: the chain of dependencies (and of
-- tasks added while running that a task waited for), through tasks that
-- ran, whose durations add up to the most.
-- @tab run as returned by pipeline:run
-- @treturn {rec,...} the path, first task first
-- @treturn number its length in seconds
function M.critical_path(run)
  local by_name, best, via = run.pipeline.by_name, {}, {}
  local function cost(rec)
    if best[rec] then return best[rec] end
    local b, v = 0, nil
    local list, more = rec.deps, rec.waits_for   -- no table per task: paid by every run
    while list do
      for _, d in ipairs(list) do
        local dep = by_name[d]
        if dep and dep.start then
          local c = cost(dep)
          if c > b then b, v = c, dep end
        end
      end
      list, more = more, nil
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

-- {======== describing an error

local SIGNALS = { [1] = "SIGHUP", [2] = "SIGINT", [3] = "SIGQUIT", [6] = "SIGABRT",
  [9] = "SIGKILL", [11] = "SIGSEGV", [13] = "SIGPIPE", [14] = "SIGALRM", [15] = "SIGTERM" }

local function one_line(s, max)
  s = tostring(s):gsub("%s*\n%s*", " "):gsub("%c", "")
  if #s > max then s = s:sub(1, max - 3) .. "..." end
  return s
end

-- A plain table error, shown as a table: {code = 3, why = "x"}.
local function table_text(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for i, k in ipairs(keys) do
    if i > 8 then parts[#parts + 1] = "..." break end
    local v = t[k]
    local vs = type(v) == "string" and ("%q"):format(one_line(v, 60)) or tostring(v)
    parts[#parts + 1] = (type(k) == "string" and k:match("^[%a_][%w_]*$") and k
      or "[" .. tostring(k) .. "]") .. " = " .. vs
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

--- The text of an error value: a string as is, a table with __tostring
-- through it, another table as a table, anything else through tostring.
function M.error_text(err)
  if type(err) == "table" then
    local mt = getmetatable(err)
    if not (mt and mt.__tostring) then return table_text(err) end
  end
  return tostring(err)
end

--- A one-line description of why a task failed: for a process, its exit
-- code, signal or timeout and a short form of its command (or the first
-- line of an executor's own message).
-- Is this ProcessError's first line one of weft.exec's own (which say no
-- more than its fields)? Executors (Slurm) write others, worth keeping.
local function plain_exec_message(err)
  local first = tostring(err.message or ""):match("^[^\n]*")
  for _, form in ipairs({ "exited with code %d+", "was killed by signal %d+",
                          "timed out %(killed by signal %d+%)" }) do
    -- alone, or followed by the last lines of stderr
    if first:match("^'.*' " .. form .. "$") or first:match("^'.*' " .. form .. ":") then
      return true
    end
  end
  return first == ""
end

function M.reason(err)
  if type(err) == "table" and err.kind == "ProcessError" and not plain_exec_message(err) then
    return "ProcessError: " .. one_line(tostring(err.message):match("^[^\n]*"), 200)
  end
  if type(err) == "table" and err.kind == "ProcessError" then
    local argv = type(err.argv) == "table" and err.argv or {}
    local cmd = argv[1] == "/bin/sh" and argv[2] == "-c" and argv[3] or table.concat(argv, " ")
    local how
    if err.timeout then
      how = "timed out"
    elseif err.signal then
      how = ("killed by signal %d%s"):format(err.signal,
        SIGNALS[err.signal] and " (" .. SIGNALS[err.signal] .. ")" or "")
    else
      how = ("exit code %s"):format(tostring(err.code))
    end
    return ("ProcessError: %s: %s"):format(how, one_line(cmd, 70))
  end
  return one_line(M.error_text(err), 160)
end

-- }========

-- {======== what to do about a failure

-- The chain from `rec` up to a target of the run that needed it.
local function needed_by(run, rec)
  local targets, users = {}, {}
  for _, t in ipairs(run.targets or {}) do targets[t] = true end
  for _, r in ipairs(run.list) do
    for _, d in ipairs(r.deps) do
      users[d] = users[d] or {}
      table.insert(users[d], r)
    end
  end
  local from, queue, seen = {}, { rec }, { [rec] = true }
  local i = 1
  while queue[i] do
    local r = queue[i]
    i = i + 1
    if targets[r.name] and r ~= rec then
      local chain = {}
      while r ~= rec do
        table.insert(chain, 1, r.name)
        r = from[r]
      end
      return chain
    end
    for _, u in ipairs(users[r.name] or {}) do
      if not seen[u] then
        seen[u], from[u] = true, r
        queue[#queue + 1] = u
      end
    end
  end
  return nil
end
M.needed_by = needed_by

local function shell_word(s)
  if s:match("^[%w_./:=+,@%%-]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

--- The command that reruns just `rec`.
function M.rerun_command(run, rec)
  local P = run.pipeline
  local file = P.shown_file or P.file
  local c = P.run_dir and ("-C " .. shell_word(P.run_dir) .. " ") or ""
  local f = (file and file ~= "Weftfile.lua" and file ~= "(lua)") and ("-f " .. shell_word(file) .. " ") or ""
  return ("weft run %s%s%s"):format(c, f, shell_word(rec.name))
end

-- The last n lines of rec's stderr (marked " !| "), else of its output.
local function tail_lines(rec, n)
  local tail = require("weft.pipeline").tail
  local err = tail(rec, n, "stderr")
  if #err > 0 then return err, " !| " end
  return tail(rec, n), " | "
end

local function failure_block(run, rec, opts, paint)
  local out = {}
  out[#out + 1] = paint(("%s %s: %s"):format(rec.status:upper(), rec.name, M.reason(rec.error)), 31)
  local chain = needed_by(run, rec)
  if chain then out[#out + 1] = "  needed by: " .. table.concat(chain, " -> ") end
  if rec.traceback then
    for line in rec.traceback:gmatch("[^\n]+") do out[#out + 1] = "  " .. line end
  end
  local lines, mark = tail_lines(rec, opts.tail or 10)
  for _, l in ipairs(lines) do out[#out + 1] = "  " .. rec.name .. mark .. l end
  out[#out + 1] = "  rerun: " .. M.rerun_command(run, rec)
  return out
end

-- }========

local ORDER = { "done", "up to date", "failed", "interrupted", "skipped" }

--- The tasks counted by status: "480 done, 2 failed, 18 skipped".
local function counts_line(run)
  local n, seen = {}, {}
  for _, rec in ipairs(run.list) do n[rec.status] = (n[rec.status] or 0) + 1 end
  local parts = {}
  for _, s in ipairs(ORDER) do
    if n[s] then parts[#parts + 1] = ("%d %s"):format(n[s], s) seen[s] = true end
  end
  for s, c in pairs(n) do
    if not seen[s] then parts[#parts + 1] = ("%d %s"):format(c, s) end
  end
  return table.concat(parts, ", ")
end

M.counts = counts_line

local function full_table(run, out, paint)
  local width = 4
  for _, rec in ipairs(run.list) do width = math.max(width, #rec.name) end
  for _, rec in ipairs(run.list) do
    local status = rec.status
    local colored = paint(("%-11s"):format(status),
      (status == "done" or status == "up to date") and 32 or (status == "skipped" and 2 or 31))
    local extra = ""
    if (rec.attempts or 0) > 1 then extra = ("  (%d attempts)"):format(rec.attempts) end
    out[#out + 1] = ("  %-" .. width .. "s  %s %8s%s"):format(rec.name, colored,
      rec.start and fmt_time(duration(rec)) or "-", extra)
  end
end

--- The slowest `n` tasks that ran, slowest first.
function M.slowest(run, n)
  -- a pass keeping the n best in order, not a sort of every task: the
  -- summary of a 500-task run is paid once per run, by every run
  local top, dur = {}, {}
  if n <= 0 then return top end
  for _, rec in ipairs(run.list) do
    if rec.start then
      local d = duration(rec)
      local i = #top
      if i < n or d > dur[i] then   -- ties keep the earlier task (run.list is in index order)
        if i == n then i = i - 1 end
        while i > 0 and d > dur[i] do
          top[i + 1], dur[i + 1] = top[i], dur[i]
          i = i - 1
        end
        top[i + 1], dur[i + 1] = rec, d
      end
    end
  end
  return top
end

--- The summary text (lines end with "\n").
-- @tab run
-- @tab[opt] opts `color` (boolean), `tail` (lines of output shown for a
-- failed task, default 10), `full` (always the table of every task),
-- `table_max` (the table is shown up to this many tasks, default 12)
function M.render(run, opts)
  opts = opts or {}
  local paint = function(t, c) return opts.color and ("\27[%sm%s\27[0m"):format(c, t) or t end
  local out, total = {}, 0
  for _, rec in ipairs(run.list) do total = total + duration(rec) end
  out[#out + 1] = "summary: " .. counts_line(run)
  if opts.full or #run.list <= (opts.table_max or 12) then
    full_table(run, out, paint)
  else
    local parts = {}
    for _, rec in ipairs(M.slowest(run, 5)) do
      parts[#parts + 1] = ("%s %s"):format(rec.name, fmt_time(duration(rec)))
    end
    if #parts > 0 then out[#out + 1] = "slowest: " .. table.concat(parts, ", ") end
  end
  local wall = (run.finished or run.started) - run.started
  local path, len = M.critical_path(run)
  local names = {}
  for i, rec in ipairs(path) do names[i] = rec.name end
  out[#out + 1] = ("total %s wall, %s of task time; critical path %s: %s"):format(
    fmt_time(wall), fmt_time(total), fmt_time(len),
    #names > 0 and table.concat(names, " -> ") or "(none)")
  for _, note in ipairs(run.notes or {}) do out[#out + 1] = note end   -- slurm (#19)
  local interrupted = {}
  for _, rec in ipairs(run.list) do
    if rec.status == "failed" or (rec.status == "interrupted" and not run.interrupted
        and not (type(rec.error) == "table" and rec.error.kind == "Cancelled")) then
      for _, l in ipairs(failure_block(run, rec, opts, paint)) do out[#out + 1] = l end
    elseif rec.status == "interrupted" then
      interrupted[#interrupted + 1] = rec.name
    end
  end
  for _, rec in ipairs(run.list) do
    if rec.leftovers and #rec.leftovers > 0 then
      out[#out + 1] = paint(("warning: %s left processes running, terminated: %s"):format(rec.name,
        table.concat(rec.leftovers, ", ")), 33)
    end
  end
  if run.timed_out then
    out[#out + 1] = paint("pipeline timed out", 31)
  elseif run.interrupted then
    out[#out + 1] = paint("interrupted; tasks cut short: " ..
      (#interrupted > 0 and table.concat(interrupted, ", ") or "none"), 31)
  elseif #interrupted > 0 then
    out[#out + 1] = "cancelled after the failure: " .. table.concat(interrupted, ", ")
  end
  return table.concat(out, "\n") .. "\n"
end

return M
