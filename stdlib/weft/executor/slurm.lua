--- The Slurm executor: each process of a pipeline task becomes one batch job
-- (`weft run --executor slurm`). See weft.executor for the interface.
--
-- Submission: `sbatch --parsable` with the job name `<task>.<run id>`, a
-- `--comment` naming the task, the task's resources (cpus, mem, time,
-- partition, account, gpus, extra sbatch arguments) and the command as
-- `--wrap`. At most `rate` submissions a second (`--slurm-rate`, default 10)
-- and at most `jobs` (-j) jobs queued or running at once.
--
-- Status: the job script writes an exit marker as its last step, which the
-- waiting task reads as it follows the output: a job that ends by itself
-- costs no Slurm call. One poller task per run issues ONE `squeue
-- --states=all` for all of the run's unfinished jobs when the run has been
-- quiet for the interval (see Slurm:poll_due), for jobs killed whole,
-- requeued or stuck. The interval starts at `poll` (2 s), grows by half each
-- time nothing changed up to `poll_max` (60 s), and falls back to `poll` when
-- a job changes state or is submitted. The poller survives Ctrl-C (which
-- cancels every task): it keeps polling until every job has ended, so
-- nothing is left behind.
--
-- Output: a job writes stdout and stderr to files under
-- `.weft/slurm/<run id>/`; the waiting task follows them (a read every 50 ms
-- to 1 s, faster while output arrives) and hands each line to the same
-- callbacks a local process has. The files stay for inspection, beside
-- `commands.log`, every Slurm command weft issued with its time.
--
-- Cancellation (a task timeout, Ctrl-C, SIGTERM, a failure without -k) puts
-- the job on a list that the poller sends as one `scancel` for all of them;
-- the cancelled task then waits until squeue reports the job ended before
-- `Cancelled` propagates. Slurm commands run through luv, not weft.exec, so
-- a cancellation never kills an `sbatch` half-way (which could leave a job
-- weft does not know about).
--
-- Without cgroups (jobacct_gather/linux with OverMemoryKill), Slurm reports
-- a job killed for memory as FAILED by signal 9 (or exit code 137, when the
-- batch shell outlived its killed child) and writes "Exceeded job memory
-- limit" to its stderr; weft reports that as OUT_OF_MEMORY.
-- @module weft.executor.slurm
local weft = require "weft"

local M = {}

M.POLL, M.POLL_MAX, M.RATE = 2, 60, 10
M.CANCEL_POLL = 0.5     -- polls come this fast while weft waits for cancelled jobs
local TICK = 0.2        -- how often the poller looks at its clock and cancel list
local FOLLOW_MIN, FOLLOW_MAX = 0.05, 1

-- States after which a job never runs again. A job preempted and requeued
-- (or requeued after NODE_FAIL, or by `scontrol requeue`) never shows these
-- in squeue: it goes back to PENDING with its restart count one higher;
-- PREEMPTED or NODE_FAIL there means it was not requeued.
local FINAL = { COMPLETED = true, FAILED = true, TIMEOUT = true, OUT_OF_MEMORY = true,
  CANCELLED = true, NODE_FAIL = true, BOOT_FAIL = true, DEADLINE = true, REVOKED = true,
  SPECIAL_EXIT = true, PREEMPTED = true }
-- States (flags squeue shows) while Slurm puts a job back in the queue: say
-- so, keep waiting. REQUEUE_HOLD waits for `scontrol release`.
local REQUEUE = { REQUEUED = true, REQUEUE_HOLD = true, REQUEUE_FED = true }

local Slurm = {}
Slurm.__index = Slurm

local function is_cancel(err)
  return type(err) == "table" and err.kind == "Cancelled"
end

local function shell_quote(s)
  s = tostring(s)
  if s ~= "" and s:match("^[%w@%%+=:,./_-]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end
M.shell_quote = shell_quote

local function safe_name(s)
  return (tostring(s):gsub("[^%w._-]", "_"))
end

-- {======== Slurm commands

-- Runs a Slurm command to its end even when the calling task is cancelled
-- meanwhile. Returns the exit code, stdout, stderr and the cancellation
-- that arrived (if one did), for the caller to raise once it has cleaned up.
local function command(argv)
  local uv = weft.uv
  local pipes = { uv.new_pipe(false), uv.new_pipe(false) }
  local bufs, left, code = { {}, {} }, 3, nil
  local done = weft.future()
  local function part_done()
    left = left - 1
    if left == 0 then done:set() end
  end
  local handle
  handle = uv.spawn(argv[1], { args = { table.unpack(argv, 2) }, stdio = { nil, pipes[1], pipes[2] } },
    function(c, sig)
      code = sig ~= 0 and 128 + sig or c
      handle:close()
      part_done()
    end)
  if not handle then
    pipes[1]:close()
    pipes[2]:close()
    return 127, "", ("cannot run %s"):format(argv[1])
  end
  for i, pipe in ipairs(pipes) do
    pipe:read_start(function(err, data)
      if data then
        bufs[i][#bufs[i] + 1] = data
      else
        pipe:close()
        part_done()
      end
      if err then bufs[i][#bufs[i] + 1] = "" end
    end)
  end
  local cancelled
  while true do
    local ok, err = pcall(done.await, done)
    if ok then break end
    if not is_cancel(err) then error(err, 0) end
    cancelled = cancelled or err
  end
  return code, table.concat(bufs[1]), table.concat(bufs[2]), cancelled
end

--- Runs a Slurm command, counting it and logging it to commands.log.
function Slurm:slurm(argv)
  local name = argv[1]
  self.counts[name] = (self.counts[name] or 0) + 1
  if self.log then
    local parts = {}
    for i, a in ipairs(argv) do parts[i] = shell_quote(a):gsub("\n", "\\n") end
    self.log:write(("%.3f %s\n"):format(weft.now() - self.t0, table.concat(parts, " ")))
    self.log:flush()
  end
  return command(argv)
end

-- }========

-- {======== job description

-- Slurm's time format for a number of seconds (Slurm rounds up to minutes).
local function slurm_time(seconds)
  local s = math.ceil(seconds)
  local d, h, m = s // 86400, s % 86400 // 3600, s % 3600 // 60
  if d > 0 then return ("%d-%02d:%02d:%02d"):format(d, h, m, s % 60) end
  return ("%d:%02d:%02d"):format(h, m, s % 60)
end
M.slurm_time = slurm_time

local function int_or_text(v)
  return math.type(v) == "float" and math.tointeger(v) or v
end

--- sbatch arguments for resolved resources.
function M.resource_args(r)
  local a = {}
  if r.cpus then a[#a + 1] = "--cpus-per-task=" .. int_or_text(math.ceil(r.cpus)) end
  if r.mem then
    a[#a + 1] = "--mem=" .. (type(r.mem) == "number" and ("%dM"):format(math.ceil(r.mem)) or r.mem)
  end
  if r.time then
    a[#a + 1] = "--time=" .. (type(r.time) == "number" and slurm_time(r.time) or r.time)
  end
  if r.partition then a[#a + 1] = "--partition=" .. r.partition end
  if r.account then a[#a + 1] = "--account=" .. r.account end
  if r.gpus then a[#a + 1] = "--gpus=" .. int_or_text(r.gpus) end
  if type(r.sbatch) == "string" then
    for w in r.sbatch:gmatch("%S+") do a[#a + 1] = w end
  elseif type(r.sbatch) == "table" then
    for _, w in ipairs(r.sbatch) do a[#a + 1] = tostring(w) end
  end
  return a
end

-- The job script: the environment changes and the program in a subshell,
-- then, as its very last step, one line to the job's exit marker: "STATUS
-- START END RESTARTS" (wall clock seconds of the node). weft reads that file
-- as it follows the output, so a job that ends by itself is seen without
-- asking Slurm. A job killed whole (scancel, --time, memory, a lost node)
-- writes no marker: the poller finds those. printf is a builtin, so the line
-- goes out in one write; a reader that sees it half-written ignores it.
local function wrap_script(argv, env, marker)
  local lines, keys = { "weft_t0=$(date +%s.%N 2>/dev/null)", "(" }, {}
  for k in pairs(env or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    if not tostring(k):match("^[%a_][%w_]*$") then
      error(("env: %q is not a variable name a job script can set"):format(tostring(k)), 0)
    end
    local v = env[k]
    if v == false then
      lines[#lines + 1] = "unset " .. k
    else
      lines[#lines + 1] = ("export %s=%s"):format(k, shell_quote(tostring(v)))
    end
  end
  local words = {}
  for i, a in ipairs(argv) do words[i] = shell_quote(a) end
  lines[#lines + 1] = "exec " .. table.concat(words, " ")
  lines[#lines + 1] = ")"
  lines[#lines + 1] = "weft_s=$?"
  lines[#lines + 1] = ([[printf '%%s %%s %%s %%s\n' "$weft_s" "$weft_t0" "$(date +%%s.%%N 2>/dev/null)" ]]
    .. [["${SLURM_RESTART_COUNT:-0}" >%s]]):format(shell_quote(marker))
  lines[#lines + 1] = "exit $weft_s"
  return table.concat(lines, "\n")
end

local function absolute(cwd, path)
  if path:sub(1, 1) == "/" then return path end
  return cwd .. "/" .. path
end

--- The sbatch command line of one job.
function Slurm:sbatch_argv(job)
  local ctx, opts = job.ctx, job.opts
  local a = { "sbatch", "--parsable",
    "--job-name=" .. safe_name(ctx.task) .. "." .. self.run_id,
    ("--comment=weft task %s attempt %d (%s)"):format(ctx.task, ctx.attempt, self.file or "?"),
    "--output=" .. (opts.stdout == "null" and "/dev/null" or job.paths[1]),
    "--error=" .. (opts.stderr == "null" and "/dev/null" or job.paths[2]),
    -- weft creates the files; a requeued job appends its second run's output
    "--open-mode=append",
    "--chdir=" .. (opts.cwd and absolute(self.cwd, opts.cwd) or self.cwd) }
  if job.input then a[#a + 1] = "--input=" .. job.input end
  for _, r in ipairs(M.resource_args(ctx.resources or {})) do a[#a + 1] = r end
  a[#a + 1] = "--wrap=" .. (job.argv and wrap_script(job.argv, opts.env, job.marker)
    or "<each weft.sh/weft.exec command of the task>")
  return a
end

--- The sbatch command line a dry run prints.
function Slurm:describe(argv, ctx)
  local job = { argv = argv, opts = {}, ctx = ctx,
    paths = { ("%s/%s.%d.N.out"):format(self.dir, safe_name(ctx.task), ctx.attempt),
      ("%s/%s.%d.N.err"):format(self.dir, safe_name(ctx.task), ctx.attempt) } }
  local words = {}
  for i, a in ipairs(self:sbatch_argv(job)) do words[i] = shell_quote(a) end
  return table.concat(words, " ")
end

-- }========

--- A Slurm executor for one run.
-- @tab config `jobs`, `rate`, `poll`, `poll_max`, `run_id`, `file`
function M.new(config)
  local uv = weft.uv
  local sec, usec = uv.gettimeofday()
  local self = setmetatable({
    jobs_max = config.jobs or 1, rate = config.rate or M.RATE,
    poll_min = config.poll or M.POLL, poll_max = config.poll_max or M.POLL_MAX,
    -- pid and a few clock bits: in PID namespaces pids repeat
    run_id = config.run_id or ("weft-%s-%d-%04x"):format(os.date("%Y%m%d-%H%M%S"),
      math.tointeger(uv.os_getpid()) or 0, uv.hrtime() // 1000 % 65536),
    file = config.file, cwd = uv.cwd(), t0 = weft.now(),
    wall_offset = sec + usec / 1e6 - weft.now(),
    counts = { sbatch = 0, squeue = 0, scancel = 0 }, njobs = 0, serial = 0,
    jobs = {}, active = 0, to_cancel = {}, next_submit = 0, last_news = 0, last_poll = 0,
    submit_lock = weft.lock(),
  }, { __index = Slurm })
  self.poll_interval = self.poll_min
  self.slots = weft.semaphore(math.max(1, self.jobs_max))
  self.dir = self.cwd .. "/.weft/slurm/" .. self.run_id
  return self
end

function Slurm:ensure_dir()
  if self.log then return end
  weft.fs.mkdir(self.dir, { parents = true })
  self.log = assert(io.open(self.dir .. "/commands.log", "ab"))
end

-- {======== output following

local function new_stream(path, mode, callback)
  local f = io.open(path, "wb")   -- the job's file exists before it starts: follow it at once
  if f then f:close() end
  return { path = path, mode = mode or "capture", callback = callback, partial = "",
    chunks = {}, file = nil }
end

-- Hands complete lines (and at the end, a last unterminated one) to the
-- stream's callback. The first error of a callback is returned; no callback
-- is called after it.
local function deliver(job, s, data, final)
  if s.mode == "capture" then s.chunks[#s.chunks + 1] = data end
  if s.mode == "inherit" then
    io.stdout:write(data)
    io.stdout:flush()
    return
  end
  if not s.callback or job.callback_error then return end
  local text = s.partial .. data
  local from = 1
  while true do
    local nl = text:find("\n", from, true)
    if not nl then break end
    local ok, err = pcall(s.callback, text:sub(from, nl - 1))
    if not ok then job.callback_error = err return end
    from = nl + 1
  end
  s.partial = text:sub(from)
  if final and s.partial ~= "" then
    local ok, err = pcall(s.callback, s.partial)
    if not ok then job.callback_error = err end
    s.partial = ""
  end
end

-- Reads what the job wrote since the last call. Local reads of appended
-- data are quick, so plain io is used (a weft.fs read could be cut by a
-- cancellation and lose what it read). Returns true when data came.
function Slurm:read_output(job, final)
  local got = false
  for _, s in ipairs(job.streams) do
    if s.mode ~= "null" then
      s.file = s.file or io.open(s.path, "rb")
      local data = s.file and s.file:read("a")
      if data and data ~= "" then
        got = true
        deliver(job, s, data, false)
      end
      if final then
        deliver(job, s, "", true)
        if s.file then s.file:close() s.file = nil end
      end
    end
  end
  return got
end

local function close_streams(job)
  for _, s in ipairs(job.streams or {}) do
    if s.file then s.file:close() s.file = nil end
  end
end

-- }========

-- {======== submission, waiting, cancelling

--- Puts a job on the batch the poller sends to scancel.
function Slurm:cancel_job(job)
  if job.cancel_requested or job.final then return end
  job.cancel_requested = true
  self.to_cancel[#self.to_cancel + 1] = job.id
end

-- Submits the job at the allowed rate. Returns nothing; sets job.id or
-- raises. A cancellation during sbatch is kept in job.stop.
function Slurm:submit(job)
  local code, out, err
  self.submit_lock:with(function()
    local wait = self.next_submit - weft.now()
    if wait > 0 then weft.sleep(wait) end
    self.next_submit = weft.now() + 1 / self.rate
    job.submitted = weft.now()
    code, out, err, job.stop = self:slurm(job.sbatch)
  end)
  job.id = code == 0 and tonumber(out:match("^%s*(%d+)"))
  if not job.id then
    if job.stop then error(job.stop, 0) end
    error(weft.error("ProcessError", ("sbatch failed (exit %d): %s"):format(code,
      (err ~= "" and err or out):gsub("%s+$", "")), { code = code, argv = job.argv,
      stdout = "", stderr = err, state = "SUBMIT_FAILED" }), 0)
  end
  self.njobs = self.njobs + 1
  self.jobs[job.id] = job
  self.active = self.active + 1
  job.wake = weft.event()
  if job.stop then self:cancel_job(job) end
  -- a new job is looked at once the run goes quiet, whatever the interval had grown to
  self.poll_interval = self.poll_min
  self.last_news = weft.now()
  self:ensure_poller()
end

local function wall_to_mono(self, t)
  return t and t - self.wall_offset
end

-- Reads the job's exit marker (see wrap_script). Exit status 0: the job has
-- COMPLETED, no Slurm call needed. Another status: the poller is asked for
-- Slurm's state soon (a process the kernel killed for memory under cgroups
-- shows as status 137 here, OUT_OF_MEMORY in Slurm).
function Slurm:read_marker(job)
  local f = io.open(job.marker, "rb")
  if not f then return end
  local text = f:read("a") or ""
  f:close()
  local status, start, finish, restarts = text:match("^(%d+) (%S*) (%S*) (%d+)\n$")
  if not status then return end
  job.marked = true
  self.last_news = weft.now()
  job.run_start = wall_to_mono(self, tonumber(start))
  job.run_end = wall_to_mono(self, tonumber(finish))
  job.marker_status = tonumber(status)
  restarts = tonumber(restarts)
  self:note_restarts(job, restarts, ("was requeued by Slurm %d time%s before it ended")
    :format(restarts, restarts == 1 and "" or "s"))
  if job.marker_status == 0 then
    job.state, job.wait_status = "COMPLETED", 0
    self:finish_job(job)
  else
    self.urgent_at = math.min(self.urgent_at or math.huge, weft.now() + M.CANCEL_POLL)
  end
end

-- Says (among the task's output) that Slurm ran the job again: a
-- preemption, a lost node or `scontrol requeue` put it back in the queue.
function Slurm:note_restarts(job, restarts, what)
  if not restarts or restarts <= (job.restarts or 0) then return end
  job.restarts = restarts
  if job.ctx.say then job.ctx.say(("slurm job %d %s"):format(job.id, what)) end
end

local TIMED_OUT = setmetatable({}, { __tostring = function() return "timed out" end })

-- Follows the job's output until Slurm reports it ended. A cancellation, a
-- timeout or a callback error cancels the job, then the wait goes on (it
-- cannot be cut short again). Returns the first such reason, or nil.
function Slurm:wait_job(job)
  local timeout = job.opts.timeout
  local deadline = timeout and job.submitted + timeout
  local tick = FOLLOW_MIN
  local function stop(reason)
    if not job.stop then job.stop = reason end
    self:cancel_job(job)
  end
  while not job.final do
    tick = self:read_output(job) and FOLLOW_MIN or math.min(tick * 2, FOLLOW_MAX)
    if not job.marked then self:read_marker(job) end
    if job.final then break end
    if job.callback_error then stop(job.callback_error) end
    local d = tick
    if deadline and not job.stop then
      if weft.now() >= deadline then stop(TIMED_OUT) else d = math.min(d, deadline - weft.now()) end
    end
    local ok, err = pcall(weft.timeout, d, job.wake.wait, job.wake)
    if not ok and not (type(err) == "table" and err.kind == "Timeout") then stop(err) end
  end
  self:read_output(job, true)
  if job.callback_error and not job.stop then job.stop = job.callback_error end
  return job.stop
end

local function decode_status(status)
  status = tonumber(status) or 0
  local sig = status & 0x7f
  local exit = (status >> 8) & 0xff
  return exit, sig ~= 0 and sig or nil
end

local function captured(job, i)
  local s = job.streams[i]
  return s.mode == "capture" and table.concat(s.chunks) or ""
end

local function out_of_memory(job)
  local s = job.streams[2]
  local text = table.concat(s.chunks)
  if s.mode ~= "capture" then
    local f = io.open(s.path, "rb")
    text = f and f:read("a") or ""
    if f then f:close() end
  end
  return text:find("Exceeded job memory limit", 1, true) or text:find("oom%-kill") ~= nil
end

local FALLBACK_CODE = { TIMEOUT = 124, OUT_OF_MEMORY = 137, CANCELLED = 143 }

local WHAT = {
  FAILED = "failed", TIMEOUT = "hit its Slurm time limit", OUT_OF_MEMORY = "ran out of memory",
  CANCELLED = "was cancelled outside weft", NODE_FAIL = "lost its node",
  BOOT_FAIL = "could not boot its node", PREEMPTED = "was preempted and not requeued",
  UNKNOWN = "left squeue before weft saw it end",
}

-- The result of an ended job, or the ProcessError it is.
function Slurm:outcome(job)
  local state = job.state
  local exit, sig = decode_status(job.wait_status)
  local code = sig and 128 + sig or exit
  local res = { code = code, signal = sig, stdout = captured(job, 1), stderr = captured(job, 2) }
  if state == "COMPLETED" then return res end
  -- the step's processes all get SIGKILL, in no set order: the batch shell
  -- may die of it (signal 9) or outlive its killed child and exit 137
  if (state == "FAILED" or state == "CANCELLED") and code == 137 and out_of_memory(job) then
    state = "OUT_OF_MEMORY"
  end
  if state == "FAILED" and code ~= 0 and job.opts.check == false then return res end
  if code == 0 or state == "TIMEOUT" then code = FALLBACK_CODE[state] or 1 end
  local prog = job.argv[1] == "sh" and job.argv[3] or job.argv[1]
  local msg
  if state == "FAILED" then
    msg = sig and ("'%s' was killed by signal %d"):format(prog, sig)
      or ("'%s' exited with code %d"):format(prog, code)
  else
    msg = ("'%s' %s"):format(prog, WHAT[state] or state)
  end
  error(weft.error("ProcessError", ("%s (slurm job %d %s)"):format(msg, job.id, state), {
    code = code, signal = sig, argv = job.argv, stdout = res.stdout, stderr = res.stderr,
    state = state, slurm_state = job.state, job = job.id, reason = job.reason,
    timeout = state == "TIMEOUT" or nil }), 0)
end

-- Copies the job's times to the trace record of the process.
function Slurm:record(job)
  local p = job.ctx.proc
  if not p then return end
  p.job, p.state = job.id, job.state
  p.queued = job.submitted
  local now = weft.now()
  local start = job.run_start and math.max(job.submitted, math.min(job.run_start, now))
  p.run_start = start or now
  p.run_end = math.max(p.run_start, math.min(job.run_end or now, now))
end

--- Runs `argv` as one batch job (see the module header).
function Slurm:exec(argv, opts, ctx)
  opts = opts or {}
  self:ensure_dir()
  self.serial = self.serial + 1
  local base = ("%s/%s.%d.%d"):format(self.dir, safe_name(ctx.task), ctx.attempt, self.serial)
  local job = { argv = argv, opts = opts, ctx = ctx, paths = { base .. ".out", base .. ".err" },
    marker = base .. ".exit" }
  job.streams = { new_stream(job.paths[1], opts.stdout, opts.on_stdout),
    new_stream(job.paths[2], opts.stderr, opts.on_stderr) }
  if opts.stdin and opts.stdin ~= "" then   -- a batch job's stdin is /dev/null otherwise
    job.input = base .. ".in"
    local f = assert(io.open(job.input, "wb"))
    f:write(opts.stdin)
    f:close()
  end
  job.sbatch = self:sbatch_argv(job)
  self.slots:acquire()
  local ok, res = pcall(function()
    self:submit(job)
    local stop = self:wait_job(job)
    self:record(job)
    if stop == TIMED_OUT then
      local _, sig = decode_status(job.wait_status)
      error(weft.error("ProcessError", ("'%s' timed out (slurm job %d cancelled after %gs)")
        :format(argv[1], job.id, opts.timeout), { timeout = true, code = 124, signal = sig,
        argv = argv, stdout = captured(job, 1), stderr = captured(job, 2), state = job.state,
        job = job.id }), 0)
    elseif stop then
      error(stop, 0)
    end
    return self:outcome(job)
  end)
  self.slots:release()
  close_streams(job)
  if not ok then error(res, 0) end
  return res
end

-- }========

-- {======== the poller

-- Slurm's times (node-local, one-second resolution) on weft's clock.
local function slurm_time_to_mono(self, text)
  local y, mo, d, h, mi, s = tostring(text):match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)$")
  if not y then return nil end
  return wall_to_mono(self, os.time({ year = tonumber(y), month = tonumber(mo), day = tonumber(d),
    hour = tonumber(h), min = tonumber(mi), sec = tonumber(s) }))
end

local SQUEUE_FORMAT = "JobID:|,State:|,exit_code:|,StartTime:|,EndTime:|,Reason:|,RestartCnt:|"

--- Parses `squeue --noheader --Format=` SQUEUE_FORMAT output: a list of
-- {id=, state=, status=, start=, finish=, reason=, restarts=}.
function M.parse_squeue(out)
  local rows = {}
  for line in out:gmatch("[^\n]+") do
    local id, state, status, start, finish, reason, restarts =
      line:match("^%s*(%d+)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|")
    if id then
      rows[#rows + 1] = { id = tonumber(id), state = state:match("^(%S+)") or state,
        status = tonumber(status), start = start, finish = finish, reason = reason,
        restarts = tonumber(restarts) }
    end
  end
  return rows
end

--- What a job's squeue state means to weft: "final" (it never runs again),
-- "requeue" (Slurm runs it again: keep waiting) or "wait" (pending,
-- running, completing, ...).
function M.classify(state)
  if FINAL[state] then return "final" end
  if REQUEUE[state] then return "requeue" end
  return "wait"
end

-- Applies one squeue row to its job; true when the job's state changed.
function Slurm:update(job, row)
  local state = row.state
  job.reason = row.reason
  self:note_restarts(job, row.restarts, ("was requeued by Slurm (restart %d, now %s%s); "
    .. "weft keeps waiting"):format(row.restarts or 0, state,
    (row.reason or "None") ~= "None" and ": " .. row.reason or ""))
  if state == job.state then return false end
  local kind = M.classify(state)
  -- a job that ended by itself has written its marker: its times are the
  -- script's own (to the millisecond, Slurm's are to the second)
  if kind == "final" and not job.marked then
    self:read_marker(job)
    if job.final then return true end
  end
  if kind == "requeue" and job.ctx.say then
    job.ctx.say(("slurm job %d is %s; Slurm requeues it, weft keeps waiting"):format(job.id, state))
  end
  if not job.marked and (kind == "requeue" or state == "PENDING") then job.run_start = nil end
  job.state = state
  if not job.marked and (state == "RUNNING" or kind == "final") then
    job.run_start = job.run_start or slurm_time_to_mono(self, row.start)
  end
  if kind == "final" then
    job.wait_status = row.status
    if not job.marked then job.run_end = slurm_time_to_mono(self, row.finish) end
    self:finish_job(job)
  end
  return true
end

function Slurm:finish_job(job)
  if job.final then return end
  job.final = true
  self.active = self.active - 1
  job.wake:set()
end

-- A job squeue no longer knows was purged after MinJobAge: it has ended.
-- A marker says how; without one, weft cannot tell.
function Slurm:purged(job)
  if job.marked then
    job.state, job.wait_status = "FAILED", job.marker_status << 8
  elseif not FINAL[job.state or ""] then
    job.state = "UNKNOWN"
  end
  self:finish_job(job)
end

-- One squeue for every unfinished job of the run. Returns whether a state changed.
function Slurm:poll()
  local ids = {}
  for id, job in pairs(self.jobs) do
    if not job.final then ids[#ids + 1] = id end
  end
  if #ids == 0 then return false end
  table.sort(ids)
  local code, out, err = self:slurm({ "squeue", "--noheader", "--states=all",
    "--jobs=" .. table.concat(ids, ","), "--Format=" .. SQUEUE_FORMAT })
  local gone_all = code ~= 0 and err:find("Invalid job id", 1, true)
  if code ~= 0 and not gone_all then
    self.poll_failures = (self.poll_failures or 0) + 1
    if self.poll_failures == 1 then
      io.stderr:write("weft: squeue failed, retrying: ", (err:gsub("%s+$", "")), "\n")
    end
    return false
  end
  self.poll_failures = 0
  local seen, changed = {}, false
  for _, row in ipairs(M.parse_squeue(out)) do
    local job = self.jobs[row.id]
    if job and not job.final then
      seen[job.id] = true
      if self:update(job, row) then changed = true end
    end
  end
  for _, id in ipairs(ids) do
    local job = self.jobs[id]
    if not seen[id] and not job.final then
      self:purged(job)
      changed = true
    end
  end
  return changed
end

function Slurm:scancel()
  local ids = self.to_cancel
  self.to_cancel = {}
  table.sort(ids)
  local words = { "scancel" }
  for _, id in ipairs(ids) do words[#words + 1] = tostring(id) end
  self:slurm(words)
  self.urgent_at = math.min(self.urgent_at or math.huge, weft.now() + M.CANCEL_POLL)
end

-- Whether a job needs Slurm's word soon: weft cancelled it, or its marker
-- says it failed and Slurm's state says how.
local function awaited(job)
  return not job.final and (job.cancel_requested or job.marked)
end

-- When to poll. Jobs that end by themselves say so in their markers, so
-- squeue is only for jobs killed whole, requeued or stuck: it runs once the
-- run has been quiet (no submission, no marker) for the interval, which
-- starts at `poll` and grows by half per poll that saw nothing new up to
-- `poll_max`; and at least every `poll_max` however busy the run is. Jobs
-- weft cancelled or whose marker says failure are asked about every
-- CANCEL_POLL seconds until Slurm reports them ended.
function Slurm:poll_due(now)
  if self.urgent_at and now >= self.urgent_at then return true end
  local quiet_since = math.max(self.last_poll, self.last_news)
  return now >= quiet_since + self.poll_interval or now >= self.last_poll + self.poll_max
end

-- The poller's body: runs while some job has not ended. A cancellation
-- (Ctrl-C cancels every task) does not stop it: the cancelled tasks wait on
-- it to see their jobs end.
function Slurm:poll_loop()
  self.last_poll = weft.now()
  while self.active > 0 do
    -- a tick cut short by a cancellation is not the time to scancel: the
    -- other cancelled tasks have not asked yet, and one call should take all
    local slept = pcall(weft.sleep, TICK)
    if slept and #self.to_cancel > 0 then pcall(self.scancel, self) end
    local now = weft.now()
    if self.active > 0 and self:poll_due(now) then
      local ok, changed = pcall(self.poll, self)
      if ok and changed then
        self.poll_interval = self.poll_min
      else
        self.poll_interval = math.min(self.poll_interval * 1.5, self.poll_max)
      end
      self.last_poll, self.urgent_at = now, nil
      for _, job in pairs(self.jobs) do
        if awaited(job) then self.urgent_at = now + M.CANCEL_POLL break end
      end
    end
  end
  self.poller = nil
end

function Slurm:ensure_poller()
  if self.poller then return end
  self.poller = weft.spawn(function() self:poll_loop() end)
  self.poller.name = "slurm poller"
end

-- }========

--- The line the end-of-run summary shows.
function Slurm:notes()
  if self.njobs == 0 then return {} end
  local c = self.counts
  return { ("slurm: %d jobs, %d sbatch, %d squeue, %d scancel; output in %s/"):format(
    self.njobs, c.sbatch, c.squeue, c.scancel, self.dir) }
end

return M
