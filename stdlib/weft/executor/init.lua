--- The executor seam: where a pipeline task's processes run.
--
-- Every `weft.exec`/`weft.sh` inside a pipeline task goes through an
-- executor chosen per task: the task's `executor` option, else the run's
-- (`weft run --executor NAME`, default "local"). Two exist:
-- weft.executor.local (a child process of weft) and weft.executor.slurm (a
-- batch job on a Slurm cluster).
--
-- An executor is an object made by `module.new(config)` (config: `jobs`,
-- `run_id`, the executor's own flags) with one required method:
--
--   result = ex:exec(argv, opts, ctx)
--     argv  {"prog", "arg", ...}; weft.sh passes {"sh", "-c", cmdline}.
--     opts  weft.exec's options: cwd, env (merged into the current
--           environment; false removes a variable), stdin (a string),
--           timeout (s), check (default true), grace, stdout/stderr
--           ("capture" | "inherit" | "null"), on_stdout/on_stderr(line)
--           called in order per stream for each complete line while the
--           process runs (a last unterminated line at the end; a
--           call may carry several lines joined by newlines), batch,
--           max_capture (weft.exec's).
-- An executor whose exec hands opts to weft.exec unchanged sets
-- `runs_weft_exec = true`: weft run then adds `_sink`, a C writer of the
-- output, and its callbacks see only each batch's last lines.
--     ctx   task (name), attempt (1-based), resources (resolved for this
--           attempt: cpus, mem, time, partition, account, gpus, sbatch),
--           proc (the trace record of this process: an executor may set
--           `job`, `state`, `run_start`, `run_end` on it), say(line) (a
--           note shown among the task's output).
--     Returns {code=, signal=, stdout=, stderr=} as weft.exec does, or
--     raises ProcessError (code, signal, argv, stdout, stderr; timeout =
--     true on a timeout; an executor may add fields such as `state`).
--     Cancelling the calling task ends the process and waits until it has
--     ended before `Cancelled` is raised: nothing is left running.
--
-- and two optional ones: `ex:describe(argv, ctx)` (the command line a dry
-- run prints) and `ex:notes()` (lines for the end-of-run summary).
--
-- Task resources are values or functions of the attempt number (retry with
-- more memory: `mem = function(n) return 2 * n .. "G" end`); `local` ignores
-- them.
-- @module weft.executor
local M = {}

M.names = { ["local"] = "weft.executor.local", slurm = "weft.executor.slurm" }

--- Resource options a task may give, with the types a value may have.
M.resource_types = {
  cpus = { number = true }, mem = { number = true, string = true },
  time = { number = true, string = true }, partition = { string = true },
  account = { string = true }, gpus = { number = true, string = true },
  sbatch = { string = true, table = true },
}

-- resource_types' names, sorted: what task_options looks up in a spec
local resource_names = {}
for key in pairs(M.resource_types) do resource_names[#resource_names + 1] = key end
table.sort(resource_names)

local function known_names()
  local names = {}
  for n in pairs(M.names) do names[#names + 1] = n end
  table.sort(names)
  return table.concat(names, ", ")
end

local function expected(types)
  local t = {}
  for _, name in ipairs({ "number", "string", "table" }) do
    if types[name] then t[#t + 1] = name == "table" and "a list" or "a " .. name end
  end
  return table.concat(t, " or ") .. " or a function of the attempt"
end

-- The task fields this seam adds to weft.taskspec (the strict check of
-- `task` declarations). Where a task runs is no part of what it makes, so
-- none of them is in the incremental definition key.
do
  local fields = require("weft.taskspec").FIELDS
  fields.executor = { key = false, check = function(v)
    return M.names[v] ~= nil, "one of " .. known_names()
  end }
  for key, types in pairs(M.resource_types) do
    fields[key] = { key = false, check = function(v)
      return type(v) == "function" or types[type(v)] == true, expected(types)
    end }
  end
end

--- Reads a task spec's `executor` and resource options.
-- @tab spec the table given to `task`
-- @return executor name or nil, resources table or nil, error message or nil
function M.task_options(spec)
  local name = spec.executor
  if name ~= nil and not M.names[name] then
    return nil, nil, ("field 'executor' must be one of %s, got %s"):format(known_names(),
      tostring(name))
  end
  local res
  local resource_types = M.resource_types
  for i = 1, #resource_names do   -- lookups, not a walk of the spec (issue 13)
    local key = resource_names[i]
    local v = spec[key]
    if v ~= nil then
      local types = resource_types[key]
      if type(v) ~= "function" and not types[type(v)] then
        return nil, nil, ("field '%s' must be %s, got %s"):format(key, expected(types), type(v))
      end
      res = res or {}
      res[key] = v
    end
  end
  return name, res, nil
end

--- The resources for one attempt: functions called with the attempt number.
-- @tab res raw resources (or nil)
-- @int attempt
function M.resolve(res, attempt)
  local out = {}
  for key, v in pairs(res or {}) do
    if type(v) == "function" then v = v(attempt) end
    local types = M.resource_types[key]
    if v ~= nil and not types[type(v)] then
      error(("resource %s for attempt %d: got a %s"):format(key, attempt, type(v)), 0)
    end
    out[key] = v
  end
  return out
end

--- The executors of one run: `opts` is `{name=, ...flags}` from the CLI
-- (or nil for local). Instances are made on first use.
-- @tab[opt] opts
-- @tab run the run record (for `jobs`)
function M.open(opts, run)
  opts = opts or {}
  if opts.name and not M.names[opts.name] then
    error(("unknown executor %s (known: %s)"):format(opts.name, known_names()), 0)
  end
  local set = { default = opts.name or "local", opts = opts, run = run, made = {} }
  run.notes = run.notes or {}
  return set
end

--- The executor named `name` in `set`, made on first use.
function M.get(set, name)
  local ex = set.made[name]
  if not ex then
    local config = {}
    for k, v in pairs(set.opts) do config[k] = v end
    config.jobs = set.run and set.run.jobs or 1
    config.run_id = set.run and set.run.id
    config.file = set.run and set.run.pipeline and set.run.pipeline.file
    ex = require(M.names[name]).new(config)
    set.made[name] = ex
    set.order = set.order or {}
    set.order[#set.order + 1] = ex
  end
  return ex
end

--- Which executor runs `rec`'s processes in `set`.
function M.choose(set, rec)
  return M.get(set, rec and rec.executor or set.default)
end

--- Runs one process of task `rec` (or of no task) through its executor.
-- @tab set from `open`, or nil (local, no run)
-- @tab rec the task record or nil
-- @tab argv
-- @tab opts weft.exec's options (output callbacks already attached)
-- @tab proc the trace record of this process
-- @func say shows a note among the task's output
function M.exec(set, rec, argv, opts, proc, say)
  if not set then return require("weft").exec(argv, opts) end
  local ex = M.choose(set, rec)
  local attempt = rec and rec.attempts or 1
  local ctx = { task = rec and rec.name or "?", attempt = attempt, proc = proc, say = say,
    resources = M.resolve(rec and rec.resources, attempt) }
  return ex:exec(argv, opts, ctx)
end

--- The summary lines of every executor used in `set`.
function M.notes(set)
  local out = {}
  for _, ex in ipairs(set and set.order or {}) do
    if ex.notes then
      for _, line in ipairs(ex:notes()) do out[#out + 1] = line end
    end
  end
  return out
end

--- Lines a dry run prints: for each selected task the command its
-- processes would be started with (when the executor can say).
-- @tab opts executor flags as `open` takes
-- @tab list selected task records
-- @string[opt] file the pipeline file (named in each job's comment)
function M.dry_run(opts, list, file)
  local set = M.open(opts, { jobs = 1, id = "DRYRUN", pipeline = { file = file } })
  local lines = {}
  for _, rec in ipairs(list) do
    local ex = M.choose(set, rec)
    if rec.fn and ex.describe then
      local res = M.resolve(rec.resources, 1)
      lines[#lines + 1] = ("%s: %s"):format(rec.name,
        ex:describe(nil, { task = rec.name, attempt = 1, resources = res }))
    end
  end
  return lines
end

--- Parses one `weft run` flag that belongs to executors into `o.executor`.
-- @tab o the options being parsed
-- @string a the flag
-- @func value returns the flag's value (consuming it)
-- @func number_arg(flag, text) checks a positive number
-- @func usage_error
-- @treturn bool whether `a` was an executor flag
function M.cli_flag(o, a, value, number_arg, usage_error)
  local function set(k, v)
    o.executor = o.executor or {}
    o.executor[k] = v
  end
  if a == "--executor" then
    local name = value(a)
    if not M.names[name] then
      usage_error("--executor expects one of %s, got %s", known_names(), name)
    end
    set("name", name)
  elseif a == "--slurm-rate" then set("rate", number_arg(a, value(a)))
  elseif a == "--slurm-poll" then set("poll", number_arg(a, value(a)))
  elseif a == "--slurm-poll-max" then set("poll_max", number_arg(a, value(a)))
  else
    return false
  end
  return true
end

return M
