--- `weft run`: argument parsing and the run itself. host/main.c calls the
-- function this module returns with the arguments after `run` and exits
-- with its result: 0 success, 1 a task failed (or the run timed out), 2 a
-- usage error. After Ctrl-C/SIGTERM the run is cancelled, every process
-- group is terminated, the summary still prints, and main.c exits 130/143.
-- @module weft.cli
local weft = require "weft"
local pipeline = require "weft.pipeline"
local executor = require "weft.executor"   -- slurm (#19)

local HELP = [[
usage: weft run [-f FILE] [-C DIR] [TARGET...] [NAME=VALUE...] [options]
       weft why [-f FILE] [-C DIR] TASK [NAME=VALUE...]

Runs the named targets of a pipeline file (else its `default` ones) and
everything they depend on, as a graph. Task output goes to stdout, each line
prefixed with the task's name; progress and the summary go to stderr.

options:
  -f, --file FILE      pipeline file (default ./Weftfile.lua); tasks run in
                       its directory
  -C, --directory DIR  change to DIR first
  NAME=VALUE           set the variable NAME for var() in the Weftfile
  -B, --always         run the selected tasks even if they are up to date
  --explain            say why each task runs, before it runs
  --watch              after the run, wait for a change to a source (or the
                       Weftfile) and run again what is out of date
  -j, --jobs N         run at most N tasks at once (default: number of CPUs)
  -k, --keep-going     keep going past failures; only tasks downstream of a
                       failed one are skipped
  --dry-run            print the waves that would run, run nothing
  --list               print the tasks with their descriptions, run nothing
  --graph dot|mermaid  print the selected graph as DOT or Mermaid, run nothing
  --trace FILE.json    write a Chrome trace-event file of the run (Perfetto)
  --report FILE.html   write a self-contained HTML report with a Gantt chart
  --timeout S          deadline for the whole run, in seconds
  --plain              plain progress lines even on a terminal
  --executor local|slurm  where task processes run (default local); with
                       slurm each one is a batch job (see docs/pipelines.md)
  --slurm-rate N       at most N sbatch submissions a second (default 10)
  --slurm-poll S       first squeue interval in seconds (default 2)
  --slurm-poll-max S   longest squeue interval in seconds (default 60)
  -h, --help           show this help

Exit status: 0 all tasks succeeded, 1 a task failed or the run timed out,
2 usage error (unknown option or target, missing file, bad Weftfile),
129 hangup (terminal closed), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
Environment: NO_COLOR disables colours; CI=true forces plain output.
]]

local function cpu_count()
  local ok, uv = pcall(function() return weft.uv end)
  if ok and type(uv) == "table" and uv.available_parallelism then
    return uv.available_parallelism()
  end
  local n = 0
  local f = io.open("/proc/cpuinfo")
  if f then
    for line in f:lines() do
      if line:match("^processor%s*:") then n = n + 1 end
    end
    f:close()
  end
  return math.max(n, 1)
end

local function number_arg(opt, v)
  local n = tonumber(v)
  if not n or n <= 0 then pipeline.usage_error("%s expects a positive number, got %s", opt, tostring(v)) end
  return n
end

--- Parses the arguments of `weft run`; raises a usage error.
-- @tparam {string,...} args
-- @treturn table options
local function parse(args)
  local o = { file = "Weftfile.lua", targets = {}, vars = {} }
  local i = 1
  local function value(opt)
    i = i + 1
    if args[i] == nil then pipeline.usage_error("option %s needs a value", opt) end
    return args[i]
  end
  while i <= #args do
    local a = args[i]
    if a == "-f" or a == "--file" then o.file = value(a)
    elseif a == "-C" or a == "--directory" then o.dir = value(a)
    elseif a == "-B" or a == "--always" then o.always = true
    elseif a == "--explain" then o.explain = true
    elseif a == "--watch" then o.watch = true
    elseif a == "--why" then o.why = true
    elseif a:match("^[%a_][%w_]*=") then
      local k, v = a:match("^([^=]+)=(.*)$")
      o.vars[k] = v
    elseif a == "-j" or a == "--jobs" then o.jobs = math.floor(number_arg(a, value(a)))
    elseif a:match("^%-j%d+$") then o.jobs = math.floor(number_arg("-j", a:sub(3)))
    elseif a == "-k" or a == "--keep-going" then o.keep_going = true
    elseif a == "--dry-run" or a == "-n" then o.dry_run = true
    elseif a == "--list" or a == "-l" then o.list = true
    elseif a == "--graph" then
      o.graph = value(a)
      if o.graph ~= "dot" and o.graph ~= "mermaid" then
        pipeline.usage_error("--graph expects dot or mermaid, got %s", o.graph)
      end
    elseif a == "--trace" then o.trace = value(a)
    elseif a == "--report" then o.report = value(a)
    elseif a == "--timeout" then o.timeout = number_arg(a, value(a))
    elseif a == "--plain" then o.plain = true
    elseif a == "-h" or a == "--help" then o.help = true
    elseif executor.cli_flag(o, a, value, number_arg, pipeline.usage_error) then   -- slurm (#19)
    elseif a == "--" then
      for j = i + 1, #args do
        local k, v = args[j]:match("^([%a_][%w_]*)=(.*)$")
        if k then o.vars[k] = v else o.targets[#o.targets + 1] = args[j] end
      end
      break
    elseif a:sub(1, 1) == "-" then pipeline.usage_error("unknown option %s", a)
    else o.targets[#o.targets + 1] = a
    end
    i = i + 1
  end
  return o
end

local function is_tty(fd)
  local ok, uv = pcall(function() return weft.uv end)
  if ok and type(uv) == "table" and uv.guess_handle then
    return uv.guess_handle(fd) == "tty"
  end
  return os.execute(("test -t %d"):format(fd)) == true
end

local function list_tasks(P, out)
  local width = 0
  for _, rec in ipairs(P.tasks) do width = math.max(width, #rec.name) end
  local defaults = {}
  for _, d in ipairs(P.defaults or {}) do defaults[d] = true end
  for _, rec in ipairs(P.tasks) do
    out:write(("%-" .. width .. "s  %s%s\n"):format(rec.name, rec.desc or "",
      defaults[rec.name] and "  (default)" or ""))
  end
end

local function choose_reporter(o)
  local ci = os.getenv("CI")
  local tty = is_tty(2)
  local color = require("weft.reporter.plain").want_color(is_tty(1) or tty)
  if tty and not o.plain and not (ci and ci ~= "" and ci ~= "false" and ci ~= "0") then
    return require("weft.reporter.terminal").new({ color = color }), color
  end
  return require("weft.reporter.plain").new({ color = color }), color
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
  local _, color = choose_reporter(o)
  io.stderr:write(require("weft.summary").render(run, { color = color }))
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
  local uv = weft.uv
  local function absolute(p)
    if not p or p:sub(1, 1) == "/" then return p end
    return uv.cwd() .. "/" .. p
  end
  o.trace, o.report = absolute(o.trace), absolute(o.report)
  if o.dir then
    local ok, err = uv.chdir(o.dir)
    if not ok then pipeline.usage_error("-C %s: %s", o.dir, tostring(err)) end
  end
  local dir, base = o.file:match("^(.*)/([^/]+)$")
  if dir then
    local f = io.open(o.file, "rb")
    if not f then pipeline.usage_error("no pipeline file %s (use -f FILE)", o.file) end
    f:close()
    assert(uv.chdir(dir == "" and "/" or dir))
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
    io.stdout:write(HELP)
    return 0
  end
  local path = enter_directory(o)
  local P = pipeline.load(path, { vars = o.vars, name = o.file })
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
    return 0
  end
  if o.dry_run then
    dry_run(P, list)
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
