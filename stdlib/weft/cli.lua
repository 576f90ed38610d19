--- `weft run`: argument parsing and the run itself. host/main.c calls the
-- function this module returns with the arguments after `run` and exits
-- with its result: 0 success, 1 a task failed (or the run timed out), 2 a
-- usage error. After Ctrl-C/SIGTERM the run is cancelled, every process
-- group is terminated, the summary still prints, and main.c exits 130/143.
-- @module weft.cli
local weft = require "weft"
local pipeline = require "weft.pipeline"

local HELP = [[
usage: weft run [-f FILE] [TARGET...] [options]

Runs the named targets of a pipeline file (else its `default` ones) and
everything they depend on, as a graph. Task output goes to stdout, each line
prefixed with the task's name; progress and the summary go to stderr.

options:
  -f, --file FILE      pipeline file (default ./Weftfile.lua)
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
  --summary full|short the table of every task (full) or counts, slowest 5
                       and failures only (short); default: the table for
                       runs of at most 12 tasks
  --output MODE        prefixed (default): `task | line`, stderr lines as
                       `task !| line`; grouped: each task's lines as one
                       block when it ends; interleaved: lines bare. Add
                       ,raw (or give raw) to keep control characters
  -h, --help           show this help

Exit status: 0 all tasks succeeded, 1 a task failed or the run timed out,
2 usage error (unknown option or target, missing file, bad Weftfile),
130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
Environment: NO_COLOR disables colours; CI=true or TERM=dumb forces plain
output; GITHUB_ACTIONS=true wraps each task's output in ::group:: lines and
GITLAB_CI in collapsed sections.
]]

-- What --dry-run and --graph cannot show: tasks bodies add while running.
local DYNAMIC_NOTE = "weft run: this is the static graph; tasks added while running (ctx:add) may follow\n"

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
  local o = { file = "Weftfile.lua", targets = {} }
  local i = 1
  local function value(opt)
    i = i + 1
    if args[i] == nil then pipeline.usage_error("option %s needs a value", opt) end
    return args[i]
  end
  while i <= #args do
    local a = args[i]
    if a == "-f" or a == "--file" then o.file = value(a)
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
    elseif a == "--summary" then
      o.summary = value(a)
      if o.summary ~= "full" and o.summary ~= "short" then
        pipeline.usage_error("--summary expects full or short, got %s", o.summary)
      end
    elseif a == "--output" then
      local mode, raw = require("weft.reporter.output").parse(value(a))
      if not mode then pipeline.usage_error("%s", raw) end
      o.output, o.raw = mode, raw
    elseif a == "-h" or a == "--help" then o.help = true
    elseif a == "--" then
      for j = i + 1, #args do o.targets[#o.targets + 1] = args[j] end
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
    if #rec.deps > 0 then
      out:write((" "):rep(width + 2), "after: ", table.concat(rec.deps, ", "), "\n")
    end
  end
end

local function choose_reporter(o)
  local ci = os.getenv("CI")
  local tty = is_tty(2)
  local color = require("weft.reporter.plain").want_color(is_tty(1) or tty)
  local ropts = { color = color, mode = o.output, raw = o.raw,
    ci = require("weft.reporter.output").ci_markers() }
  if tty and not o.plain and os.getenv("TERM") ~= "dumb"
      and not (ci and ci ~= "" and ci ~= "false" and ci ~= "0") then
    return require("weft.reporter.terminal").new(ropts), color
  end
  return require("weft.reporter.plain").new(ropts), color
end

local function dry_run(P, list)
  for i, wave in ipairs(P:waves(list)) do
    local names = {}
    for j, rec in ipairs(wave) do names[j] = rec.name end
    io.stdout:write(("wave %d: %s\n"):format(i, table.concat(names, " ")))
  end
end

local function execute(P, o, targets)
  local reporter, color = choose_reporter(o)
  local ok, run = pcall(weft.run, function()
    return P:run({ targets = targets, jobs = o.jobs or cpu_count(), keep_going = o.keep_going,
      timeout = o.timeout, reporter = reporter })
  end)
  if not ok then
    io.stderr:write("weft run: ", tostring(run), "\n")
    return 1
  end
  io.stderr:write(require("weft.summary").render(run, { color = color,
    full = o.summary == "full", table_max = o.summary == "short" and 0 or nil }))
  io.stderr:flush()
  if o.trace then require("weft.trace").write(run, o.trace) end
  if o.report then require("weft.report").write(run, o.report) end
  return run.ok and 0 or 1
end

local function main(args)
  local o = parse(args)
  if o.help then
    io.stdout:write(HELP)
    return 0
  end
  local P = pipeline.load(o.file)
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
    return 0
  end
  return execute(P, o, targets)
end

--- Runs `weft run` with `args`; returns the exit status.
return function(args)
  local ok, status = pcall(main, args)
  if ok then return status end
  if pipeline.is_usage_error(status) then
    io.stderr:write("weft run: ", status.message, "\n")
    if status.message:match("^unknown option") then
      io.stderr:write("try 'weft run --help'\n")
    end
    return 2
  end
  io.stderr:write("weft run: ", tostring(status), "\n")
  return 1
end
