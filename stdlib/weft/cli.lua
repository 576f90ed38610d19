--- `weft run`: argument parsing and the run itself. host/main.c calls the
-- function this module returns with the arguments after `run` and exits
-- with its result: 0 success, 1 a task failed (or the run timed out), 2 a
-- usage error. After Ctrl-C/SIGTERM the run is cancelled, every process
-- group is terminated, the summary still prints, and main.c exits 130/143.
-- @module weft.cli
local weft = require "weft"
local pipeline = require "weft.pipeline"
local executor = require "weft.executor"   -- slurm (#19)

-- What --dry-run and --graph cannot show: tasks bodies add while running.
local DYNAMIC_NOTE = "weft run: this is the static graph; tasks added while running (ctx:add) may follow\n"

-- weft._sys, not weft.uv: a run that starts nothing never opens luv (issue 13)
local sys = weft._sys

local function cpu_count() return sys.cpu_count() end

local function number_arg(opt, v)
  local n = tonumber(v)
  if not n or n <= 0 then pipeline.usage_error("%s expects a positive number, got %s", opt, tostring(v)) end
  return n
end

local function positive_int(v, opt) return math.floor(number_arg(opt, v)) end
local function positive(v, opt) return number_arg(opt, v) end
local function one_of(choices)
  return function(v, opt)
    for _, c in ipairs(choices) do
      if v == c then return v end
    end
    pipeline.usage_error("%s expects %s, got %s", opt, table.concat(choices, " or "), v)
  end
end
local function executor_name(v, opt)
  if not executor.names[v] then
    local known = {}
    for name in pairs(executor.names) do known[#known + 1] = name end
    table.sort(known)
    pipeline.usage_error("%s expects one of %s, got %s", opt, table.concat(known, ", "), v)
  end
  return v
end
local function output_mode(v)
  local mode, raw = require("weft.reporter.output").parse(v)
  if not mode then pipeline.usage_error("%s", raw) end
  return { mode = mode, raw = raw }
end

-- Every option of `weft run`: the parser and --help both read this table.
local OPTIONS = {
  { short = "-f", long = "--file", key = "file", arg = "FILE",
    help = "pipeline file (default ./Weftfile.lua); tasks run in its directory" },
  { short = "-C", long = "--directory", key = "dir", arg = "DIR", help = "change to DIR first" },
  { short = "-B", long = "--always", key = "always",
    help = "run the selected tasks even if they are up to date" },
  { long = "--explain", key = "explain", help = "say why each task runs, before it runs" },
  { long = "--watch", key = "watch",
    help = "after the run, wait for a change to a source (or the Weftfile) and run again "
      .. "what is out of date" },
  { short = "-j", long = "--jobs", key = "jobs", arg = "N", convert = positive_int,
    help = "run at most N tasks at once (default: number of CPUs); also -jN" },
  { short = "-k", long = "--keep-going", key = "keep_going",
    help = "keep going past failures; only tasks downstream of a failed one are skipped" },
  { short = "-n", long = "--dry-run", key = "dry_run",
    help = "print the waves that would run, run nothing" },
  { short = "-l", long = "--list", key = "list",
    help = "print the tasks with their descriptions and deps, run nothing" },
  { long = "--graph", key = "graph", arg = "dot|mermaid", convert = one_of({ "dot", "mermaid" }),
    help = "print the selected graph as DOT or Mermaid, run nothing" },
  { long = "--trace", key = "trace", arg = "FILE.json",
    help = "write a Chrome trace-event file of the run (Perfetto)" },
  { long = "--report", key = "report", arg = "FILE.html",
    help = "write a self-contained HTML report with a Gantt chart" },
  { long = "--timeout", key = "timeout", arg = "S", convert = positive,
    help = "deadline for the whole run, in seconds" },
  { long = "--plain", key = "plain", help = "plain progress lines even on a terminal" },
  { long = "--output", key = "output", arg = "MODE", convert = output_mode,
    help = "prefixed (default): `task | line`, stderr lines as `task !| line`; "
      .. "grouped: each task's lines as one block when it ends; interleaved: lines bare. "
      .. "Add ,raw (or give raw) to keep control characters" },
  { long = "--summary", key = "summary", arg = "full|short", convert = one_of({ "full", "short" }),
    help = "the table of every task (full) or counts, the slowest 5 and the failures (short); "
      .. "default: the table for runs of at most 12 tasks" },
  -- slurm (#19): where task processes run; collected into o.executor by parse
  { long = "--executor", key = "executor_name", arg = "local|slurm", convert = executor_name,
    help = "where task processes run (default local); with slurm each one is a batch job "
      .. "(see docs/pipelines.md)" },
  { long = "--slurm-rate", key = "slurm_rate", arg = "N", convert = positive,
    help = "at most N sbatch submissions a second (default 10)" },
  { long = "--slurm-poll", key = "slurm_poll", arg = "S", convert = positive,
    help = "first squeue interval in seconds (default 2)" },
  { long = "--slurm-poll-max", key = "slurm_poll_max", arg = "S", convert = positive,
    help = "longest squeue interval in seconds (default 60)" },
  { short = "-h", long = "--help", key = "help", help = "show this help" },
  -- `weft why TASK` reaches weft.cli as `--why TASK` (host/main.c): not a
  -- flag of `weft run`, so --help does not show it
  { long = "--why", key = "why", hidden = true },
}

local function help_text()
  return table.concat({
    "usage: weft run [-f FILE] [-C DIR] [TARGET...] [NAME=VALUE...] [options]\n",
    "       weft why [-f FILE] [-C DIR] TASK [NAME=VALUE...]\n\n",
    "Runs the named targets of a pipeline file (else its `default` ones) and\n",
    "everything they depend on, as a graph. Task output goes to stdout, each line\n",
    "prefixed with the task's name; progress and the summary go to stderr.\n\n",
    "options:\n",
    "  NAME=VALUE           set the variable NAME for var() in the Weftfile\n",
    require("weft.options").help(OPTIONS), "\n",
    "Exit status: 0 all tasks succeeded, 1 a task failed or the run timed out,\n",
    "2 usage error (unknown option or target, missing file, bad Weftfile),\n",
    "129 hangup (terminal closed), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).\n",
    "Environment: NO_COLOR disables colours; CI=true or TERM=dumb forces plain\n",
    "output; GITHUB_ACTIONS=true wraps each task's output in ::group:: lines and\n",
    "GITLAB_CI in collapsed sections.\n",
  })
end

--- Parses the arguments of `weft run`; raises a usage error.
-- @tparam {string,...} args
-- @treturn table options
local function parse(args)
  local vars = {}
  local o = require("weft.options").parse(args, OPTIONS, pipeline.usage_error, function(res, w)
    local k, v = w:match("^([%a_][%w_]*)=(.*)$")   -- NAME=VALUE is never a target
    if k then vars[k] = v else table.insert(res[1], w) end
  end)
  o.targets, o[1], o.vars = o[1], nil, vars
  o.file = o.file or "Weftfile.lua"
  if o.output then o.output, o.raw = o.output.mode, o.output.raw end
  for key, field in pairs({ executor_name = "name", slurm_rate = "rate", slurm_poll = "poll",
                            slurm_poll_max = "poll_max" }) do   -- slurm (#19)
    if o[key] ~= nil then
      o.executor = o.executor or {}
      o.executor[field], o[key] = o[key], nil
    end
  end
  return o
end

local function is_tty(fd) return sys.isatty(fd) end

local function list_tasks(P, out)
  local width = 0
  for _, rec in ipairs(P.tasks) do width = math.max(width, #rec.name) end
  local defaults = {}
  for _, d in ipairs(P.defaults or {}) do defaults[d] = true end
  for _, rec in ipairs(P.tasks) do
    out:write(("%-" .. width .. "s  %s%s\n"):format(rec.name, rec.desc or "",
      defaults[rec.name] and "  (default)" or ""))
    if #rec.deps > 0 then
      out:write((" "):rep(width + 2), "after: ", table.concat(rec.deps, ", "), "\n")
    end
  end
end

local function want_color()
  return require("weft.reporter.plain").want_color(is_tty(1) or is_tty(2))
end

local function choose_reporter(o)
  local ci = os.getenv("CI")
  local tty = is_tty(2)
  local ropts = { color = want_color(), mode = o.output, raw = o.raw, ci = "env" }
  if tty and not o.plain and os.getenv("TERM") ~= "dumb"
      and not (ci and ci ~= "" and ci ~= "false" and ci ~= "0") then
    return require("weft.reporter.terminal").new(ropts)
  end
  return require("weft.reporter.plain").new(ropts)
end

local function dry_run(P, list)
  for i, wave in ipairs(P:waves(list)) do
    local names = {}
    for j, rec in ipairs(wave) do names[j] = rec.name end
    io.stdout:write(("wave %d: %s\n"):format(i, table.concat(names, " ")))
  end
end

local function run_once(P, o, targets)
  local reporter = choose_reporter(o)
  return P:run({ targets = targets, jobs = o.jobs or cpu_count(), keep_going = o.keep_going,
    timeout = o.timeout, reporter = reporter, always = o.always, explain = o.explain,
    executor = o.executor })   -- slurm (#19)
end

local function report(run, o)
  io.stderr:write(require("weft.summary").render(run, { color = want_color(),
    full = o.summary == "full", table_max = o.summary == "short" and 0 or nil }))
  io.stderr:flush()
  if o.trace then require("weft.trace").write(run, o.trace) end
  if o.report then require("weft.report").write(run, o.report) end
end

local function execute(P, o, targets)
  local ok, run = pcall(weft.run, run_once, P, o, targets)
  if not ok then
    if pipeline.is_usage_error(run) then error(run, 0) end
    io.stderr:write("weft run: ", tostring(run), "\n")
    return 1
  end
  report(run, o)
  return run.ok and 0 or 1
end

-- issue 13: --watch runs inside one task until Ctrl-C (main.c exits 130)
local function watch(P, o, targets, path)
  local ok, err = pcall(weft.run, require("weft.watch").run, P, {
    targets = targets,
    run = function(p)
      local run = run_once(p, o, targets)
      report(run, o)
      return run
    end,
    reload = function() return pipeline.load(path, { vars = o.vars, name = o.file }) end,
  })
  if ok or (type(err) == "table" and err.kind == "Cancelled") then return 130 end
  error(err, 0)
end

-- issue 13: -C, then the Weftfile's directory becomes the working directory
-- (output files named on the command line stay relative to where weft ran).
local function enter_directory(o)
  local function absolute(p)
    if not p or p:sub(1, 1) == "/" then return p end
    return sys.cwd() .. "/" .. p
  end
  o.trace, o.report = absolute(o.trace), absolute(o.report)
  if o.dir then
    local ok, err = sys.chdir(o.dir)
    if not ok then pipeline.usage_error("-C %s: %s", o.dir, tostring(err)) end
  end
  local dir, base = o.file:match("^(.*)/([^/]+)$")
  if dir then
    local f = io.open(o.file, "rb")
    if not f then pipeline.usage_error("no pipeline file %s (use -f FILE)", o.file) end
    f:close()
    assert(sys.chdir(dir == "" and "/" or dir))
    return base
  end
  return o.file
end

local function why(P, o)
  local name = o.targets[1]
  if not name or #o.targets > 1 then pipeline.usage_error("expects one task name") end
  P:select({ name })   -- an unknown name is a usage error with "did you mean"
  local reason = weft.run(function() return require("weft.incremental").why(P, name) end)
  if reason then
    io.stdout:write(("%s would run: %s\n"):format(name, reason))
  else
    io.stdout:write(("%s is up to date\n"):format(name))
  end
  return 0
end

local function main(args)
  local o = parse(args)
  if o.help then
    io.stdout:write(help_text())
    return 0
  end
  local path = enter_directory(o)
  local P = pipeline.load(path, { vars = o.vars, name = o.file })
  collectgarbage("incremental", 200)   -- Lua's default pause again: main.c's startup one ends
  P.run_dir = o.dir   -- for the rerun commands of failures
  if o.why then return why(P, o) end
  if o.list then
    list_tasks(P, io.stdout)
    return 0
  end
  local targets = #o.targets > 0 and o.targets or P.defaults
  if not targets or #targets == 0 then
    io.stderr:write("weft run: no target given and ", o.file, " has no default; tasks:\n")
    list_tasks(P, io.stderr)
    return 2
  end
  local list = P:select(targets)
  if o.graph then
    io.stdout:write(require("weft.export")[o.graph](list))
    io.stderr:write(DYNAMIC_NOTE)
    return 0
  end
  if o.dry_run then
    dry_run(P, list)
    io.stderr:write(DYNAMIC_NOTE)
    if o.executor then   -- slurm (#19): the command each task's processes would start with
      for _, line in ipairs(executor.dry_run(o.executor, list, o.file)) do io.stdout:write(line, "\n") end
    end
    return 0
  end
  if o.watch then return watch(P, o, targets, path) end
  return execute(P, o, targets)
end

--- Runs `weft run` with `args`; returns the exit status.
return function(args)
  local ok, status = pcall(main, args)
  if ok then return status end
  local me = args[1] == "--why" and "weft why: " or "weft run: "   -- main.c's `weft why`
  if pipeline.is_usage_error(status) then
    io.stderr:write(me, status.message, "\n")
    if status.message:match("^unknown option") then
      io.stderr:write("try 'weft run --help'\n")
    end
    return 2
  end
  io.stderr:write(me, tostring(status), "\n")
  return 1
end
