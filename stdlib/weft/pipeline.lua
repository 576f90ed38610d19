--- Pipelines: the Weftfile DSL and the runner behind `weft run`.
--
-- A pipeline is a set of named tasks with dependencies. `load(path)` runs a
-- Weftfile in a sandbox (the standard libraries, a global `weft`, and
-- `task`/`default`); `new()` builds one from plain Lua. `run` executes the
-- selected targets and everything they depend on as a graph, at most `jobs`
-- at a time, with retries and timeouts per task, reporting through a
-- reporter object (see weft.reporter.plain) and returning a run record the
-- summary, trace and report modules read.
--
-- The graph is driven by a small Kahn loop over weft.spawn and a completion
-- queue. NOTE for the lead: once weft.run_graph (host/graph.c) is in, the loop
-- in `execute` can become `weft.run_graph(graph, work, {limit=, keep_going=})`;
-- the bookkeeping (records, skipped, interrupted) stays as it is.
--
-- Usage errors (unknown dependency, duplicate task, cycle, unknown target)
-- are raised as tables `{usage = true, message = ...}` naming the task and the
-- file:line of its declaration.
-- @module weft.pipeline
local weft = require "weft"
local retry = require "weft.retry"
local taskspec = require "weft.taskspec"         -- the task fields (issue 13)
local incremental = require "weft.incremental"   -- up-to-date checks (issue 13)
local executor = require "weft.executor"   -- slurm (#19): where task processes run

local M = {}

local Pipeline = {}
Pipeline.__index = Pipeline

local UsageError = { __tostring = function(e) return e.message end }

local function usage_error(fmt, ...)
  error(setmetatable({ usage = true, message = fmt:format(...) }, UsageError), 0)
end
M.usage_error = usage_error

--- Is `err` a usage error raised by this module?
function M.is_usage_error(err)
  return type(err) == "table" and err.usage == true
end

--- A new, empty pipeline.
-- @treturn Pipeline
function M.new()
  return setmetatable({ tasks = {}, by_name = {}, defaults = nil, file = "(lua)" }, Pipeline)
end

local function where(level)
  local info = debug.getinfo(level + 1, "Sl")
  if not info then return "?" end
  return ("%s:%d"):format(info.short_src, info.currentline)
end

local as_list = incremental.as_list   -- nil -> {}, "x" -> {"x"}

--- Adds a task. `spec` holds the function (at [1] or as `fn`) and the
-- options `deps`, `desc`, `timeout`, `retries`, `backoff`.
-- @string name
-- @tab spec
-- @string[opt] at "file:line" of the declaration (default: the caller's)
function Pipeline:task(name, spec, at)
  at = at or where(2)
  if type(name) ~= "string" or name == "" then
    usage_error("%s: task name must be a non-empty string", at)
  end
  if type(spec) ~= "table" then
    usage_error("%s: task %q: expected a table { function ... end, deps = ... }", at, name)
  end
  local prev = self.by_name[name]
  if prev then
    usage_error("%s: task %q is declared twice (first at %s)", at, name, prev.where)
  end
  local fn = taskspec.check(name, spec, at, usage_error)
  local rec = {
    name = name, fn = fn, where = at, desc = spec.desc,
    deps = as_list(spec.deps), timeout = spec.timeout,
    retries = spec.retries or 0, backoff = spec.backoff or 1,
    index = #self.tasks + 1,
    -- issue 13: files and stdin; `spec` is part of the incremental key
    spec = spec, sources = spec.sources, generates = spec.generates, depfile = spec.depfile,
    stdin = spec.stdin,
  }
  local ex_err   -- slurm (#19): the task's executor and resources
  rec.executor, rec.resources, ex_err = executor.task_options(spec)
  if ex_err then usage_error("%s: task %q: %s", at, name, ex_err) end
  self.tasks[#self.tasks + 1] = rec
  self.by_name[name] = rec
  return rec
end

--- Sets the default targets (a name or a list of names).
function Pipeline:default(names)
  self.defaults = as_list(names)
  self.defaults_where = where(2)
end

--- Checks dependencies and cycles; raises a usage error naming the task and
-- its declaration line.
function Pipeline:validate()
  local names = {}
  for i, rec in ipairs(self.tasks) do names[i] = rec.name end
  local generated_by = {}
  for _, rec in ipairs(self.tasks) do
    for _, d in ipairs(rec.deps) do
      if not self.by_name[d] then
        usage_error("%s: task %q depends on unknown task %q%s", rec.where, rec.name, tostring(d),
          taskspec.did_you_mean(tostring(d), names, '"'))
      end
    end
    for _, path in ipairs(incremental.literal_generates(rec)) do
      local other = generated_by[path]
      if other then
        usage_error("%s: tasks %q and %q both generate %s (%q declared at %s)", rec.where,
          other.name, rec.name, path, other.name, other.where)
      end
      generated_by[path] = rec
    end
  end
  local state, stack = {}, {}
  local function visit(rec)
    state[rec] = "active"
    stack[#stack + 1] = rec.name
    for _, d in ipairs(rec.deps) do
      local dep = self.by_name[d]
      if state[dep] == "active" then
        local i = #stack
        while stack[i] ~= dep.name do i = i - 1 end
        local cycle = { table.unpack(stack, i) }
        cycle[#cycle + 1] = dep.name
        usage_error("%s: task %q is part of a dependency cycle: %s", dep.where, dep.name,
          table.concat(cycle, " -> "))
      elseif not state[dep] then
        visit(dep)
      end
    end
    stack[#stack] = nil
    state[rec] = "done"
  end
  for _, rec in ipairs(self.tasks) do
    if not state[rec] then visit(rec) end
  end
end

--- The targets and everything they depend on, in declaration order.
-- @tparam {string,...} targets
function Pipeline:select(targets)
  local chosen = {}
  local function add(name, from)
    local rec = self.by_name[name]
    if not rec then
      local names = {}
      for i, r in ipairs(self.tasks) do names[i] = r.name end
      usage_error("unknown target %q%s%s (see --list)", tostring(name), from or "",
        taskspec.did_you_mean(tostring(name), names, '"'))
    end
    if chosen[rec] then return end
    chosen[rec] = true
    for _, d in ipairs(rec.deps) do add(d) end
  end
  for _, t in ipairs(targets) do add(t) end
  local list = {}
  for _, rec in ipairs(self.tasks) do
    if chosen[rec] then list[#list + 1] = rec end
  end
  return list
end

--- The selected tasks in waves: each wave depends only on earlier ones.
function Pipeline:waves(list)
  local level, waves = {}, {}
  local function depth(rec)
    if level[rec] then return level[rec] end
    local l = 1
    for _, d in ipairs(rec.deps) do
      l = math.max(l, depth(self.by_name[d]) + 1)
    end
    level[rec] = l
    return l
  end
  for _, rec in ipairs(list) do
    local l = depth(rec)
    waves[l] = waves[l] or {}
    table.insert(waves[l], rec)
  end
  return waves
end

-- {======== output routing: which pipeline task is running this code?

local owner = setmetatable({}, { __mode = "k" })   -- weft task -> record
local current_run                                   -- the run in progress

local function current_record()
  local t = weft.current()
  local rec = t and owner[t]
  if rec then return rec end
  if current_run and current_run.nrunning == 1 then   -- only one candidate
    return current_run.last_started
  end
  return nil
end

local function emit(rec, stream, line)
  local run = current_run
  if rec then
    local tail = rec.tail
    tail[#tail + 1] = line
    if #tail > 20 then table.remove(tail, 1) end
  end
  if run and run.reporter then
    run.reporter:line(rec, stream, line)
  else
    io.stdout:write(line, "\n")
  end
end

local function with_streaming(argv, opts, rec)
  local o = {}
  local src = opts or argv
  for k, v in pairs(src) do
    if type(k) ~= "number" or opts then o[k] = v end
  end
  local user_out, user_err = o.on_stdout, o.on_stderr
  if o.stdout ~= "inherit" and o.stdout ~= "null" then
    o.on_stdout = function(line)
      emit(rec, "stdout", line)
      if user_out then user_out(line) end
    end
  end
  if o.stderr ~= "inherit" and o.stderr ~= "null" then
    o.on_stderr = function(line)
      emit(rec, "stderr", line)
      if user_err then user_err(line) end
    end
  end
  return o
end

local function argv_of(argv)
  local a = {}
  for i = 1, #argv do a[i] = argv[i] end
  return a
end

local function traced(rec, argv, run_it)
  local p = { argv = argv, start = weft.now() }
  if rec then rec.procs[#rec.procs + 1] = p end
  local ok, res = pcall(run_it, p)
  p.finish = weft.now()
  p.code = ok and res.code or (type(res) == "table" and res.code) or nil
  if not ok then error(res, 0) end
  return res
end

-- A task's processes read /dev/null (an empty stdin) unless the task says
-- `stdin = "inherit"` or the call passes its own `stdin` (issue 13).
local function with_stdin(rec, argv, opts)
  if not rec or rec.stdin == "inherit" then return opts end
  local src = opts or argv
  if src.stdin ~= nil then return opts end
  local o = {}
  for k, v in pairs(src) do
    if type(k) ~= "number" or opts then o[k] = v end
  end
  o.stdin = ""
  return o
end

--- The `weft` a Weftfile sees: the module, with `exec`, `sh` and `spawn`
-- that route output and child tasks to the pipeline task running them.
local function task_weft()
  local proxy = setmetatable({}, { __index = weft })
  -- slurm (#19): a task's processes start through its executor
  -- (`given`, `opts`: where weft.exec's caller put the options)
  local function run_process(shown, argv, given, opts)
    local rec = current_record()
    opts = with_stdin(rec, given, opts)
    return traced(rec, shown, function(p)
      return executor.exec(current_run and current_run.executors, rec, argv,
        with_streaming(given, opts, rec), p, function(line) emit(rec, "stderr", line) end)
    end)
  end
  function proxy.exec(argv, opts)
    local a = argv_of(argv)
    return run_process(a, a, argv, opts)
  end
  function proxy.sh(cmd, opts)
    if type(cmd) ~= "string" then return weft.sh(cmd, opts) end   -- weft.sh's own error
    return run_process({ "sh", "-c", cmd }, { "/bin/sh", "-c", cmd }, {}, opts or {})
  end
  function proxy.spawn(fn, ...)
    local rec = current_record()
    local t = weft.spawn(fn, ...)
    if rec then owner[t] = rec end
    return t
  end
  return proxy
end

local function task_print(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  local text = table.concat(parts, "\t")
  local rec = current_record()
  for line in (text .. "\n"):gmatch("(.-)\n") do emit(rec, "stdout", line) end
end

-- }========

--- Loads a Weftfile: runs it in a sandbox whose `task`, `default` and `var`
-- build the returned pipeline. Raises a usage error when the file is missing
-- or malformed.
-- @string path
-- @tab[opt] opts `vars` (NAME=VALUE from the command line, for `var`),
-- `name` (the file's name in messages, default `path`)
function M.load(path, opts)
  opts = opts or {}
  local shown = opts.name or path
  local f = io.open(path, "rb")
  if not f then usage_error("no pipeline file %s (use -f FILE)", shown) end
  local src = f:read("a")
  f:close()
  local P = M.new()
  P.file = path
  local env = setmetatable({}, { __index = _G })
  env.weft = task_weft()
  env.print = task_print
  env.task = function(name)
    local at = where(2)
    return function(spec) return P:task(name, spec, at) end
  end
  env.default = function(names)
    P.defaults = as_list(names)
    P.defaults_where = where(2)
  end
  env.var = function(name, default)   -- issue 13: NAME=VALUE, else $NAME, else default
    if type(name) ~= "string" or name == "" then
      usage_error("%s: var: the name must be a non-empty string", where(2))
    end
    local v = opts.vars and opts.vars[name]
    if v == nil then v = os.getenv(name) end
    if v == nil then v = default end
    return v
  end
  local chunk, err = load(src, "@" .. shown, "t", env)
  if not chunk then usage_error("%s", err) end
  -- inside a task, so that top-level code can use weft.fs.glob and friends
  local ok, e
  if weft.current() then ok, e = pcall(chunk)
  else ok, e = pcall(weft.run, function() return chunk() end) end
  if not ok then
    if M.is_usage_error(e) then error(e, 0) end
    usage_error("%s: %s", shown, tostring(e))
  end
  P:validate()
  return P
end

-- {======== running

local function new_record_state(rec)
  rec.status = "pending"
  rec.tail = {}
  rec.procs = {}
  rec.attempts = 0
  rec.start, rec.finish, rec.slot, rec.error = nil, nil, nil, nil
end

local function take_slot(run)
  local i = 1
  while run.slots[i] do i = i + 1 end
  run.slots[i] = true
  if i > run.nslots then run.nslots = i end
  return i
end

--- Runs one task record as a weft task, reporting its end on `done_q`.
local function start(run, rec, done_q)
  rec.status = "running"
  rec.start = weft.now()
  rec.slot = take_slot(run)
  run.nrunning = run.nrunning + 1
  run.last_started = rec
  run.running[rec] = true
  -- issue 13 hook: an up-to-date task is not started
  if run.incr then
    local cok, fresh = pcall(run.incr.check, run.incr, rec)
    if not cok or fresh then
      rec.status = cok and "up to date" or "failed"
      rec.error = not cok and fresh or nil
      rec.finish = rec.start
      done_q:put(rec)
      return
    end
  end
  if run.reporter then run.reporter:started(rec, run) end
  local t = weft.spawn(function()
    local ok, err
    repeat   -- issue 13: `weft run --watch` sets rec.restart when a source changed
      if rec.restart then rec.restart = nil; incremental.restarting(run.incr, rec) end
      ok, err = pcall(retry.run, rec, rec.fn or function() end, run.reporter)
    until not rec.restart
    if ok and run.incr then ok, err = pcall(run.incr.record, run.incr, rec) end   -- issue 13
    if rec.status ~= "running" then return end   -- drained meanwhile
    rec.finish = weft.now()
    if ok then
      rec.status = "done"
    elseif type(err) == "table" and err.kind == "Cancelled" then
      rec.status = "interrupted"
      rec.error = err
    else
      rec.status = "failed"
      rec.error = err
    end
    done_q:put(rec)
  end)
  t.name = rec.name
  owner[t] = rec
  rec.task = t
end

local function finished(run, rec)
  run.nrunning = run.nrunning - 1
  run.running[rec] = nil
  run.slots[rec.slot] = nil
  if run.reporter then run.reporter:finished(rec, run) end
end

-- Marks every task downstream of a failed one as skipped (keep-going mode).
local function skip_downstream(run, failed)
  for _, rec in ipairs(run.list) do
    if rec.status == "pending" then
      for _, d in ipairs(rec.deps) do
        local dep = run.pipeline.by_name[d]
        if dep == failed or dep.status == "skipped" then
          rec.status = "skipped"
          run.remaining = run.remaining - 1
          break
        end
      end
    end
  end
end

-- The Kahn loop: start ready tasks up to the limit, wait for one to end.
local drain

local function execute(run, done_q)
  local P = run.pipeline
  local waiting = {}
  for _, rec in ipairs(run.list) do waiting[rec] = #rec.deps end
  local ready = {}
  for _, rec in ipairs(run.list) do
    if waiting[rec] == 0 then ready[#ready + 1] = rec end
  end
  local dependents = {}
  for _, rec in ipairs(run.list) do
    for _, d in ipairs(rec.deps) do
      local dep = P.by_name[d]
      dependents[dep] = dependents[dep] or {}
      table.insert(dependents[dep], rec)
    end
  end
  local stopping = false
  while run.remaining > 0 do
    while not stopping and #ready > 0 and run.nrunning < run.jobs do
      local rec = table.remove(ready, 1)
      if rec.status == "pending" then start(run, rec, done_q) end
    end
    if run.nrunning == 0 then break end
    local rec = done_q:get()
    finished(run, rec)
    run.remaining = run.remaining - 1
    if rec.status == "done" or rec.status == "up to date" then
      for _, nxt in ipairs(dependents[rec] or {}) do
        waiting[nxt] = waiting[nxt] - 1
        if waiting[nxt] == 0 and nxt.status == "pending" then ready[#ready + 1] = nxt end
      end
    elseif run.keep_going then
      skip_downstream(run, rec)
    else
      stopping = true
      drain(run, "another task failed")
      break
    end
  end
end

-- Cancels what runs and waits for its cleanup (a task cancelled before it
-- started never reports on the queue, so wait on the tasks themselves).
function drain(run, why)
  local list = {}
  for r in pairs(run.running) do
    list[#list + 1] = r
    r.task:cancel(why)
  end
  table.sort(list, function(a, b) return a.index < b.index end)
  for _, r in ipairs(list) do
    pcall(r.task.await, r.task)
    if r.status == "running" then
      r.status = "interrupted"
      r.finish = weft.now()
    end
    finished(run, r)
  end
end

--- Runs the selected tasks. Must be called inside a task.
-- @tab opts `targets` (list; default: the pipeline's defaults), `jobs`
-- (default 1), `keep_going`, `timeout` (whole run, seconds), `reporter`.
-- @treturn table the run: `list` (records with status, start, finish,
-- attempts, tail, procs, slot), `started`, `finished`, `ok`, `interrupted`,
-- `timed_out`, `nslots`.
function Pipeline:run(opts)
  opts = opts or {}
  local targets = opts.targets
  if not targets or #targets == 0 then targets = self.defaults or {} end
  self:validate()
  local list = self:select(targets)
  for _, rec in ipairs(list) do new_record_state(rec) end
  local incr = incremental.open(self, list, {   -- issue 13: nil without file tasks
    always = opts.always, explain = opts.explain })
  local run = {
    incr = incr,
    pipeline = self, list = list, jobs = math.max(1, opts.jobs or 1),
    keep_going = opts.keep_going, reporter = opts.reporter,
    running = {}, nrunning = 0, remaining = #list, slots = {}, nslots = 0,
    started = weft.now(),
  }
  run.executors = executor.open(opts.executor, run)   -- slurm (#19)
  local prev_run = current_run
  current_run = run
  if run.reporter then run.reporter:begin(run) end
  local me, watchdog = weft.current(), nil
  if opts.timeout then
    watchdog = weft.spawn(function()
      weft.sleep(opts.timeout)
      run.timed_out = true
      me:cancel("pipeline timeout")
    end)
  end
  local ok, err = pcall(execute, run, weft.queue())
  if not ok then
    run.interrupted = true
    drain(run, "interrupted")
  end
  if incr then incr:close() end
  if watchdog then watchdog:cancel() end
  for _, rec in ipairs(list) do
    if rec.status == "pending" then rec.status = "skipped" end   -- it never started
  end
  run.finished = weft.now()
  run.notes = executor.notes(run.executors)   -- slurm (#19): summary lines
  run.ok = not run.interrupted
  for _, rec in ipairs(list) do
    if rec.status ~= "done" and rec.status ~= "up to date" then run.ok = false end
  end
  if run.reporter then run.reporter:finish(run) end
  current_run = prev_run
  if not ok and not run.timed_out and not (type(err) == "table" and err.kind == "Cancelled") then
    error(err, 0)
  end
  run.error = not ok and err or nil
  return run
end

-- }========

--- Runs a pipeline built in plain Lua: `weft.pipeline.run(P, opts)` is
-- `P:run(opts)` inside `weft.run` when called outside a task.
function M.run(P, opts)
  if getmetatable(P) ~= Pipeline then
    local mt = getmetatable(P)
    local got = type(mt) == "table" and type(mt.__name) == "string" and mt.__name or type(P)
    error(("bad argument #1 to 'run' (pipeline expected, got %s)"):format(got), 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #2 to 'run' (table expected, got %s)"):format(type(opts)), 2)
  end
  if weft.current() then return P:run(opts) end
  return weft.run(function() return P:run(opts) end)
end

return M
