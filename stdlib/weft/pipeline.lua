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
-- The graph is driven by weft.run_graph (one scheduler for weft): each
-- selected task is a node, named by its position in the run's list, whose
-- work runs the task in the node's own weft task; a task body's ctx:add
-- becomes run:add on that graph, so a run can grow while it goes on.
--
-- Usage errors (unknown dependency, duplicate task, cycle, unknown target)
-- are raised as tables `{usage = true, message = ...}` naming the task and the
-- file:line of its declaration.
-- @module weft.pipeline
local weft = require "weft"
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

local sys_where = weft._sys.where   -- "file:line" of the first Lua frame from a level up

-- "file:line" of the caller `level` levels up (1: the function calling
-- where), passing over C functions (called through pcall and friends).
local function where(level)
  local at = sys_where(level + 1)   -- (not a tail call: this frame is level 1)
  return at
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
    -- issue 13: the fields a run sets (new_record_state, begin_task, ...),
    -- named here so that the constructor sizes the table once for all of them
    executor = nil, resources = nil, status = nil, tail = nil, err_tail = nil, procs = nil,
    groups = nil, attempts = nil, label = nil, start = nil, finish = nil, slot = nil, task = nil,
    settled = nil, incr = nil,
  }
  local ex_err   -- slurm (#19): the task's executor and resources
  rec.executor, rec.resources, ex_err = executor.task_options(spec)
  if ex_err then usage_error("%s: task %q: %s", at, name, ex_err) end
  self.tasks[#self.tasks + 1] = rec
  self.by_name[name] = rec
  self.validated = false
  return rec
end

--- Sets the default targets (a name or a list of names).
function Pipeline:default(names)
  self.defaults = as_list(names)
  self.defaults_where = where(2)
end

--- Checks dependencies and cycles; raises a usage error naming the task and
-- its declaration line. Checked once until a task is declared or removed
-- (`weft run` loads, then runs, the same tasks).
function Pipeline:validate()
  if self.validated then return end
  local generated_by = {}
  for _, rec in ipairs(self.tasks) do
    for _, d in ipairs(rec.deps) do
      if not self.by_name[d] then
        local names = {}
        for i, r in ipairs(self.tasks) do names[i] = r.name end
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
  self.validated = true
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

-- A task's output label (weft._label, set in C at spawn and inherited by
-- every child: weft.spawn, gather, group, run_graph nodes) names the record
-- it prints for. Labels are unique per process, so nested runs never mix.
local by_label = setmetatable({}, { __mode = "v" })   -- label -> record
local next_label = 0
local current_run                                     -- the run in progress

local function label_record(rec)
  next_label = next_label + 1
  by_label[next_label] = rec
  rec.label = next_label
end

local function current_record()
  local rec = by_label[weft._label() or 0]
  if rec then return rec end
  if current_run and current_run.nrunning == 1 then   -- only one candidate
    return (next(current_run.running))
  end
  return nil
end

local TAIL = 20   -- output lines a record keeps (see M.tail)

-- Keeps the last TAIL lines of `text` (lines joined by newlines) in a ring.
local function remember(ring, text)
  local n = ring.n or 0
  for _, line in ipairs({ weft._last_lines(text, TAIL) }) do
    n = n + 1
    ring[(n - 1) % TAIL + 1] = line
  end
  ring.n = n
end

--- The last output lines of a task record, oldest first.
-- @tab rec
-- @int[opt] max at most this many
-- @string[opt] stream "stderr" for its stderr lines only
function M.tail(rec, max, stream)
  local tail = (stream == "stderr" and rec.err_tail or rec.tail) or {}
  local n = tail.n or #tail
  local first = math.max(1, n - math.min(max or TAIL, TAIL) + 1)
  local out = {}
  for i = first, n do out[#out + 1] = tail[(i - 1) % TAIL + 1] end
  return out
end

-- `text`: one line, or several joined by newlines (a process's output as
-- one batch, see with_streaming)
local function emit(rec, stream, text)
  local run = current_run
  if rec then
    remember(rec.tail, text)
    if stream == "stderr" then remember(rec.err_tail, text) end
  end
  if run and run.reporter then
    run.reporter:line(rec, stream, text)
  else
    io.stdout:write(text, "\n")
  end
end

-- A streamed process keeps at most this much of each stream in its result
-- (unless the call says max_capture): weft run shows the rest as it comes.
M.MAX_CAPTURE = 16 << 20

-- A line sink (host/outlines.c) writes a batch right after this: only its
-- last lines are here.
local function emit_sunk(rec, stream, tail)
  if rec then
    remember(rec.tail, tail)
    if stream == "stderr" then remember(rec.err_tail, tail) end
  end
  current_run.reporter:sunk(rec, stream, tail)
end

-- `direct`: the process runs through weft.exec itself (an executor with
-- `runs_weft_exec`), so a line sink can write its output
local function with_streaming(argv, opts, rec, direct)
  local o = {}
  local src = opts or argv
  for k, v in pairs(src) do
    if type(k) ~= "number" or opts then o[k] = v end
  end
  local user_out, user_err = o.on_stdout, o.on_stderr
  -- without a callback of the caller's, lines come in batches: one call
  -- per read instead of per line (the prefixing is done in C)
  -- and, where the reporter can, are written from C (a line sink)
  o.batch = not (user_out or user_err)
  local reporter = current_run and current_run.reporter
  if direct and o.batch and reporter and reporter.sink then o._sink = reporter:sink(rec) end
  local put = o._sink and emit_sunk or emit
  if o.max_capture == nil then o.max_capture = M.MAX_CAPTURE end
  if o.stdout ~= "inherit" and o.stdout ~= "null" then
    o.on_stdout = function(line)
      put(rec, "stdout", line)
      if user_out then user_out(line) end
    end
  end
  if o.stderr ~= "inherit" and o.stderr ~= "null" then
    o.on_stderr = function(line)
      put(rec, "stderr", line)
      if user_err then user_err(line) end
    end
  end
  if rec and not o.detach then   -- whose process group to check when the task ends
    local user_spawn = o.on_spawn
    o.on_spawn = function(pid)
      rec.groups[#rec.groups + 1] = { pgid = pid, grace = o.grace }
      if user_spawn then user_spawn(pid) end
    end
  end
  return o
end

-- {======== background leftovers: processes a task started that outlive it

local uv = require "weft.lazy_uv"   -- luv opened on first use

-- "pid command" for each process in process group `pgid` (from /proc).
local function group_members(pgid)
  local found = {}
  local dir = uv.fs_scandir("/proc")
  while dir do
    local name = uv.fs_scandir_next(dir)
    if not name then break end
    if name:match("^%d+$") then
      local f = io.open("/proc/" .. name .. "/stat")
      local stat = f and f:read("a")
      if f then f:close() end
      local pgrp = stat and stat:match("%) %S+ %d+ (%d+)")
      if tonumber(pgrp) == pgid then
        f = io.open("/proc/" .. name .. "/cmdline")
        local cmd = f and f:read("a") or ""
        if f then f:close() end
        cmd = cmd:gsub("%z+$", ""):gsub("%z", " ")
        if cmd == "" then cmd = stat:match("%((.-)%)") or "?" end
        found[#found + 1] = name .. " " .. (#cmd > 60 and cmd:sub(1, 57) .. "..." or cmd)
      end
    end
  end
  return found
end

local function group_alive(pgid)
  return uv.kill(-pgid, 0) == 0
end

-- When a task ends, processes still running in the process group of one
-- of its processes (`cmd &`) are terminated: TERM, then KILL after the
-- grace period (the process's `grace`, default 5 s), with a warning naming
-- them. A process started with `detach = true` is left alone.
local function end_leftovers(run, rec)
  for _, g in ipairs(rec.groups or {}) do
    if group_alive(g.pgid) then
      local members = group_members(g.pgid)
      rec.leftovers = rec.leftovers or {}
      for _, m in ipairs(members) do rec.leftovers[#rec.leftovers + 1] = m end
      local msg = ("warning: task %s left %d process%s running in the background (TERM sent): %s")
        :format(rec.name, #members, #members == 1 and "" or "es", table.concat(members, ", "))
      if run.reporter and run.reporter.progress then run.reporter:progress(msg)
      else io.stderr:write(msg, "\n") end
      uv.kill(-g.pgid, "sigterm")
      local deadline = weft.now() + (g.grace or 5)
      while group_alive(g.pgid) and weft.now() < deadline do
        if not pcall(weft.sleep, 0.05) then break end   -- cancelled: KILL now
      end
      if group_alive(g.pgid) then uv.kill(-g.pgid, "sigkill") end
    end
  end
  if rec.groups then rec.groups = {} end
end

-- }========

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
    local set = current_run and current_run.executors
    local direct = set and executor.choose(set, rec).runs_weft_exec
    return traced(rec, shown, function(p)
      return executor.exec(set, rec, argv,
        with_streaming(given, opts, rec, direct), p, function(line) emit(rec, "stderr", line) end)
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
  return proxy
end

local function task_print(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  local text = table.concat(parts, "\t")
  emit(current_record(), "stdout", text)   -- each of its lines
end

-- `io.write` in a Weftfile: text is held per task until a newline ends a
-- line, so a line written in pieces comes out as one prefixed line (what
-- is left when the task ends is written then).
local partial = setmetatable({}, { __mode = "k" })   -- record (or false) -> text

local function flush_partial(rec)
  local key = rec or false
  local text = partial[key]
  if text and text ~= "" then emit(rec, "stdout", text) end
  partial[key] = nil
end

local function task_io_write(...)
  local rec = current_record()
  local key = rec or false
  local parts = { partial[key] or "" }
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) ~= "string" and type(v) ~= "number" then
      error(("bad argument #%d to 'write' (string expected, got %s)"):format(i, type(v)), 2)
    end
    parts[#parts + 1] = v
  end
  local text = table.concat(parts)
  local last = text:match(".*()\n")   -- the last newline: every line before it goes out
  if last then emit(rec, "stdout", text:sub(1, last - 1)) end
  partial[key] = text:sub((last or 0) + 1)
end

-- io.stdout as a Weftfile sees it: `write` goes through the prefixer as
-- io.write does; every other method is the real file's.
local task_stdout = setmetatable({}, {
  __index = function(_, k)
    local v = io.stdout[k]
    if type(v) ~= "function" then return v end
    return function(self, ...) return v(io.stdout, ...) end
  end,
  __tostring = function() return tostring(io.stdout) end,
})
function task_stdout.write(self, ...)
  task_io_write(...)
  return self
end

local function task_io_write_file(...)
  task_io_write(...)
  return task_stdout
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
  P.shown_file = shown   -- as the user named it (tasks run in the file's directory)
  local env = setmetatable({}, { __index = _G })
  env.weft = task_weft()
  env.print = task_print
  env.io = setmetatable({ write = task_io_write_file, stdout = task_stdout }, { __index = io })
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
  -- issue 13: the bytecode kept in .weft/ when the text is the same
  local chunk, err = require("weft.chunkcache").load(P, src, "@" .. shown, env)
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

-- (A task's output tails, processes and process groups are made when it
-- starts: a task found up to date never needs them, issue 13.)
local function new_record_state(rec)
  rec.status = "pending"
  rec.tail, rec.err_tail = nil, nil
  rec.procs, rec.groups, rec.leftovers = nil, nil, nil
  rec.attempts, rec.spans = 0, nil
  rec.start, rec.finish, rec.slot, rec.error = nil, nil, nil, nil
  rec.settled, rec.precheck = nil, nil
  label_record(rec)
end

local function take_slot(run)
  local i = 1
  while run.slots[i] do i = i + 1 end
  run.slots[i] = true
  if i > run.nslots then run.nslots = i end
  return i
end

local function is_cancel(err)
  return type(err) == "table" and err.kind == "Cancelled"
end

-- The run is stopping: say so once, with how many tasks it waits for.
local function stopping(run, n)
  if run.stopping then return end
  run.stopping = true
  if n > 0 and run.reporter and run.reporter.stopping then run.reporter:stopping(n) end
end

local function begin_task(run, rec)
  rec.status = "running"
  rec.start = weft.now()
  rec.slot = take_slot(run)
  rec.task = weft.current()
  run.nrunning = run.nrunning + 1
  run.running[rec] = true
end

-- `fresh`: the task was up to date (issue 13) and did not run.
local function end_task(run, rec, ok, err, fresh)
  rec.finish = fresh and rec.start or weft.now()
  if ok then
    rec.status = fresh and "up to date" or "done"
  else
    rec.status = is_cancel(err) and "interrupted" or "failed"
    rec.error = err
  end
  run.nrunning = run.nrunning - 1
  run.running[rec] = nil
  run.slots[rec.slot] = nil
  flush_partial(rec)
  if run.reporter then run.reporter:finished(rec, run) end
end

-- {======== ctx:add: tasks added while the run goes on

local function position_of(run, name)
  local rec = run.pipeline.by_name[name]
  return rec and run.position[rec]
end

-- Takes back a task declared by ctx:add that could not join the run.
local function undeclare(P, rec)
  P.validated = false
  P.by_name[rec.name] = nil
  for i = #P.tasks, 1, -1 do
    if P.tasks[i] == rec then table.remove(P.tasks, i) break end
  end
end

-- The graph positions of the tasks named `deps` that are still to run (a
-- task settle_fresh settled is no node of the graph: nothing to wait for).
local function unsettled_preds(run, deps)
  local preds = {}
  for _, d in ipairs(deps) do
    local pos = position_of(run, d)
    if not run.list[pos].settled then preds[#preds + 1] = pos end
  end
  return preds
end

-- ctx:add(name, spec) from the body of `adder`: declares the task (a name
-- already used is an error naming both call sites), checks that its deps
-- are tasks of this run, and adds it to the graph; the tasks that depend
-- on the adder wait for it. Errors fail the adder, not the run.
local function add_task(run, adder, name, spec, at)
  if run.stopping or run.ended then
    error(("%s: ctx:add(%q): the run was cancelled"):format(at, tostring(name)), 0)
  end
  local P = run.pipeline
  local ok, rec = pcall(P.task, P, name, spec, at)
  if not ok then error(M.is_usage_error(rec) and rec.message or rec, 0) end
  for _, d in ipairs(rec.deps) do
    if not position_of(run, d) then
      undeclare(P, rec)
      error(("%s: task %q (added by %q) depends on %q, which is not a task of this run")
        :format(at, rec.name, adder.name, tostring(d)), 0)
    end
  end
  local preds = unsettled_preds(run, rec.deps)
  new_record_state(rec)
  rec.added_by = adder.name
  local pos = #run.list + 1
  local gok, gerr = pcall(run.graph.add, run.graph, pos, preds, run.position[adder])
  if not gok then
    undeclare(P, rec)
    error(("%s: ctx:add(%q): %s"):format(at, rec.name,
      (type(gerr) == "table" and gerr.message or tostring(gerr)):gsub("^run:add: ", "")), 0)
  end
  run.list[pos], run.position[rec] = rec, pos
  for _, r in ipairs(run.list) do   -- what waits for the adder waits for it too
    for _, d in ipairs(r.deps) do
      if d == adder.name then
        r.waits_for = r.waits_for or {}
        r.waits_for[#r.waits_for + 1] = rec.name
      end
    end
  end
  if run.reporter and run.reporter.added then run.reporter:added(rec, run) end
  return rec
end

-- }========

-- The work of node `pos` of the run's graph: the task itself, in the node's
-- own weft task. A failure is raised for run_graph, which then cancels the
-- other tasks (or, with keep_going, skips what depends on this one).
local function run_node(run, pos)
  local rec = run.list[pos]
  weft._label(rec.label)
  begin_task(run, rec)
  local ok, err, fresh = true, nil, false
  if run.incr then   -- issue 13: an up-to-date task is not started
    if rec.precheck then   -- checked by settle_fresh, found to run
      ok, fresh = rec.precheck[1], rec.precheck[2]
      rec.precheck = nil
    else
      ok, fresh = pcall(run.incr.check, run.incr, rec)
    end
    if not ok then err, fresh = fresh, false end
  end
  if ok and not fresh then
    rec.tail, rec.err_tail, rec.procs, rec.groups = {}, {}, {}, {}
    if run.reporter then run.reporter:started(rec, run) end
    local ctx_methods = {
      add = function(_, name, spec) return add_task(run, rec, name, spec, where(2)) end,
    }
    repeat   -- issue 13: `weft run --watch` sets rec.restart when a source changed
      if rec.restart then rec.restart = nil; incremental.restarting(run.incr, rec) end
      -- weft.retry loaded when a task first runs: a no-op run never does (issue 13)
      ok, err = pcall(require("weft.retry").run, rec, rec.fn or function() end, run.reporter,
        ctx_methods)
    until not rec.restart
    if ok and run.incr then ok, err = pcall(run.incr.record, run.incr, rec) end   -- issue 13
  end
  end_leftovers(run, rec)
  end_task(run, rec, ok, err, fresh)
  if not ok then
    if not run.keep_going and not is_cancel(err) then stopping(run, run.nrunning) end
    error(err, 0)
  end
end

-- issue 13: the up-to-date checks of a no-op, without a task per check.
-- In list order, each task whose deps are all up to date is checked here,
-- in the run's own task, and settled as run_node would settle it; the first
-- one that must run (or whose check failed) keeps its result for run_node
-- and ends the pass. Returns true when every task was settled.
local function settle_fresh(run)
  if not run.incr then return false end
  local list = run.list
  for i = 1, #list do
    local rec = list[i]
    for _, d in ipairs(rec.deps) do
      local dep = run.pipeline.by_name[d]
      if not (dep and dep.settled) then return false end
    end
    local ok, fresh = pcall(run.incr.check, run.incr, rec)
    if not (ok and fresh) then
      rec.precheck = { ok, fresh }   -- pcall's results, as run_node reads them
      return false
    end
    begin_task(run, rec)
    end_task(run, rec, true, nil, true)
    rec.settled = true
  end
  return true
end

-- One scheduler: the selected tasks are weft.run_graph's nodes, named by
-- their position in run.list, so the graph table reads in declaration
-- order and the same Weftfile starts its tasks in the same order.
local function execute(run)
  if settle_fresh(run) then return end
  local graph = {}   -- what settle_fresh settled is done: not a node
  for pos, rec in ipairs(run.list) do
    if not rec.settled then graph[pos] = unsettled_preds(run, rec.deps) end
  end
  weft.run_graph(graph, function(pos, _, graph_run)
    run.graph = graph_run
    return run_node(run, pos)
  end, { limit = run.jobs, keep_going = run.keep_going })
end

-- A task that waits for the run to be cancelled (Ctrl-C, SIGTERM): the
-- caller of run_graph only resumes once every task has stopped, and the
-- reporter should say "stopping" while they do.
local function stop_watch(run)
  local t = weft.spawn(function()
    local ok = pcall(function() weft.event():wait() end)
    if not ok and not run.ended then stopping(run, run.nrunning) end
  end)
  t.name = "weft-run-stop-watch"
  return t
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
    pipeline = self, list = list, jobs = math.max(1, opts.jobs or 1), targets = targets,
    keep_going = opts.keep_going, reporter = opts.reporter, position = {},
    running = {}, nrunning = 0, slots = {}, nslots = 0,
    started = weft.now(),
  }
  for pos, rec in ipairs(list) do run.position[rec] = pos end
  run.executors = executor.open(opts.executor, run)   -- slurm (#19)
  local prev_run = current_run
  current_run = run
  if run.reporter then run.reporter:begin(run) end
  local me, watchdog = weft.current(), nil
  if opts.timeout then
    watchdog = weft.spawn(function()
      weft.sleep(opts.timeout)
      run.timed_out = true
      stopping(run, run.nrunning)
      me:cancel("pipeline timeout")
    end)
  end
  local watch = stop_watch(run)
  local ok, err = pcall(execute, run)
  run.ended = true
  if not ok and type(err) == "table" and err.kind == "GraphError" then
    ok, err = true, nil   -- tasks failed: their records say how
  elseif not ok then
    run.interrupted = true
  end
  if incr then incr:close() end
  for _, t in ipairs({ watch, watchdog }) do
    t:cancel()
    pcall(t.await, t)
  end
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
