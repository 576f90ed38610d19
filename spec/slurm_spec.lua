-- `weft run --executor slurm` (issue #19) against a real one-node Slurm that
-- scripts/slurm-local.sh starts (munged, slurmctld, slurmd; its own directory
-- and ports) before these specs and stops after them. Needs root and the Debian packages slurm-wlm and munge;
-- otherwise the Slurm part is pending with the reason. Every run is a real
-- `build/weft run` in a fresh directory with its own Weftfile; Slurm's own
-- squeue is asked what is left.
--
-- Bad inputs tried: an unknown executor in a task and on the command line,
-- a resource of the wrong type, a partition sbatch rejects, an env name a
-- job script cannot set.
local weft = require "weft"

local BIN = os.getenv("WEFT_BIN") or "build/weft"
local ROOT = io.popen("pwd"):read("l")
BIN = BIN:sub(1, 1) == "/" and BIN or ROOT .. "/" .. BIN

local slurp = require("support.cli").read_file

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

local function sleep(s) os.execute("sleep " .. s) end

local function lines_of(s)
  local t = {}
  for l in (s or ""):gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

-- A fresh directory holding `weftfile` as Weftfile.lua.
local function project(weftfile)
  local dir = weft.run(function() return weft.fs.tempdir("weft-slurm-spec-") end)
  local f = assert(io.open(dir .. "/Weftfile.lua", "wb"))
  f:write(weftfile)
  f:close()
  return dir
end

local function remove(dir) os.execute("rm -rf '" .. dir .. "'") end

-- Runs `weft run ARGS` in `dir` to its end: code, stdout, stderr.
local function run(dir, args)
  local out, err = dir .. "/.stdout", dir .. "/.stderr"
  local _, _, code = os.execute(("cd %s && env CI=true %s run %s >%s 2>%s"):format(dir, BIN,
    args, out, err))
  return code, slurp(out), slurp(err)
end

-- Starts `weft run ARGS` in `dir` in the background: a handle with pid,
-- stdout(), stderr(), wait_output(pattern, s), signal(name), wait(s).
local function start(dir, args)
  local h = { out = dir .. "/.stdout", err = dir .. "/.stderr", code = dir .. "/.code" }
  local inner = ("cd %s && echo $$ >.pid && exec env CI=true %s run %s >%s 2>%s"):format(dir,
    BIN, args, h.out, h.err)
  os.execute(("(sh -c '%s'; echo $? >%s) &"):format((inner:gsub("'", "'\\''")), h.code))
  for _ = 1, 100 do
    h.pid = tonumber((slurp(dir .. "/.pid") or ""):match("%d+"))
    if h.pid then break end
    sleep(0.05)
  end
  function h.stdout() return slurp(h.out) or "" end
  function h.stderr() return slurp(h.err) or "" end
  function h.wait_output(pattern, secs)
    for _ = 1, secs * 10 do
      if h.stdout():find(pattern) then return true end
      sleep(0.1)
    end
    return false
  end
  function h.signal(name) os.execute(("kill -%s %d"):format(name, h.pid)) end
  function h.exit_code()
    local c = slurp(h.code)
    return c and tonumber(c:match("%d+"))
  end
  function h.wait(secs)
    for _ = 1, secs * 10 do
      if h.exit_code() then return h.exit_code() end
      sleep(0.1)
    end
    os.execute(("kill -KILL %d 2>/dev/null"):format(h.pid))
    return nil
  end
  return h
end

-- The run directory .weft/slurm/<run id> of the (only) run in `dir`.
local function run_dir(dir)
  local name = sh("ls " .. dir .. "/.weft/slurm 2>/dev/null"):match("[^\n]+")
  return name and (dir .. "/.weft/slurm/" .. name), name
end

-- Slurm commands weft issued in `dir`'s run: list of {t=, cmd=, line=}.
local function commands(dir)
  local rd = run_dir(dir)
  local t = {}
  for _, l in ipairs(lines_of(rd and slurp(rd .. "/commands.log"))) do
    local at, cmd = l:match("^([%d.]+) (%S+)")
    t[#t + 1] = { t = tonumber(at), cmd = cmd, line = l }
  end
  return t
end

local function only(list, cmd)
  local t = {}
  for _, c in ipairs(list) do
    if c.cmd == cmd then t[#t + 1] = c end
  end
  return t
end

-- Jobs of run `id` that squeue still lists as pending, running or completing.
local function left_in_squeue(id)
  local out = sh("squeue --noheader --format=%j")
  local n = 0
  for _, l in ipairs(lines_of(out)) do
    if l:find(id, 1, true) then n = n + 1 end
  end
  return n
end

-- The same, once jobs whose scripts have ended (their exit marker written,
-- weft done with them) have left Slurm's COMPLETING state: up to `secs`.
local function left_after_settling(id, secs)
  local n
  for _ = 1, (secs or 10) * 10 do
    n = left_in_squeue(id)
    if n == 0 then break end
    sleep(0.1)
  end
  return n
end

-- Jobs of run `id` that squeue lists as pending or running and whose script
-- has not written its exit marker yet (files TASK.ATTEMPT.N.exit in `rd`).
local function held_in_squeue(id, rd)
  local marked = {}
  for _, name in ipairs(lines_of(sh("ls " .. rd .. " 2>/dev/null"))) do
    local task = name:match("^(.-)%.%d+%.%d+%.exit$")
    if task then marked[task] = true end
  end
  local n = 0
  for _, l in ipairs(lines_of(sh("squeue --noheader --states=PD,R --format=%j"))) do
    local task, run = l:match("^(.*)%.(weft%-[%w-]+)$")
    if run == id and not marked[task] then n = n + 1 end
  end
  return n
end

local function installed()
  local _, code = sh("command -v slurmctld && command -v munged && command -v sbatch")
  return code == 0
end

local function is_root()
  return (sh("id -u")):match("^0") ~= nil
end

describe("weft run --executor (no cluster needed)", function()
  it("prints the sbatch command lines on a dry run", function()
    local dir = project([[
      task "align" { cpus = 4, mem = function(n) return 2048 * n end, time = 600,
        partition = "debug", account = "lab", gpus = 1, sbatch = { "--qos=low" },
        function() weft.sh "bwa mem ref.fa reads.fq" end }
      task "index" { executor = "local", function() weft.sh "true" end }
      default { "align", "index" }
    ]])
    local code, out = run(dir, "--dry-run --executor slurm")
    remove(dir)
    assert.equal(0, code)
    assert.matches("wave 1: align index", out, 1, true)
    local line = out:match("align: (sbatch [^\n]+)")
    assert.is_truthy(line, out)
    for _, want in ipairs({ "--parsable", "--job-name=align.DRYRUN", "--cpus-per-task=4",
      "--mem=2048M", "--time=0:10:00", "--partition=debug", "--account=lab", "--gpus=1",
      "--qos=low", "'--comment=weft task align attempt 1 (Weftfile.lua)'" }) do
      assert.matches(want, line, 1, true)
    end
    assert.matches("index: (runs on this machine)", out, 1, true)
  end)

  it("reads squeue's lines of every state weft maps (captured from slurm-local.sh's cluster)", function()
    local slurm = require "weft.executor.slurm"
    -- `squeue --noheader --states=all --Format=JobID:|,State:|,exit_code:|,StartTime:|,`
    -- `EndTime:|,Reason:|,RestartCnt:|` on Slurm 22.05.8, 2026-12-04: a running job, one
    -- requeued by `scontrol requeue` (pending, restart 1), a --no-requeue job on a node set
    -- down, one preempted by the "urgent" partition, one whose node configuration failed
    -- (libslurm's slurm_requeue with JOB_RECONFIG_FAIL), one completed
    local rows = slurm.parse_squeue(table.concat({
      "1|RUNNING|0|2026-12-04T11:57:02|NONE|None|0|",
      "1|PENDING|0|2026-12-04T11:59:05|NONE|BeginTime|1|",
      "2|NODE_FAIL|15|2026-12-04T11:57:12|2026-12-04T11:57:13|NodeDown|0|",
      "2|PREEMPTED|15|2026-12-04T11:59:55|2026-12-04T12:00:03|None|0|",
      "5|BOOT_FAIL|1|2026-12-04T12:03:41|2026-12-04T12:03:47|JobLaunchFailure|0|",
      "3|COMPLETED|0|2026-12-04T11:59:53|2026-12-04T11:59:54|None|0|",
      "not a squeue line",
    }, "\n") .. "\n")
    assert.equal(6, #rows)
    assert.same({ id = 1, state = "PENDING", status = 0, start = "2026-12-04T11:59:05",
      finish = "NONE", reason = "BeginTime", restarts = 1 }, rows[2])
    local kinds = {}
    for i, r in ipairs(rows) do kinds[i] = r.state .. "=" .. slurm.classify(r.state) end
    assert.same({ "RUNNING=wait", "PENDING=wait", "NODE_FAIL=final", "PREEMPTED=final",
      "BOOT_FAIL=final", "COMPLETED=final" }, kinds)
    assert.equal("requeue", slurm.classify("REQUEUED"))
    assert.equal("requeue", slurm.classify("REQUEUE_HOLD"))
    assert.equal("wait", slurm.classify("COMPLETING"))
  end)

  it("reads a job killed for memory as OUT_OF_MEMORY whether its shell died of SIGKILL or exited 137", function()
    -- Slurm's OverMemoryKill sends SIGKILL to every process of the step in no set order:
    -- the batch shell dies of it (wait status 9) or reaps its killed command first and
    -- exits 137 (wait status 137 << 8); both times Slurm says FAILED. Seen on a fresh
    -- Debian 12 chroot, 2026-12-04: "oom | ERR state=FAILED code=137".
    local slurm = require "weft.executor.slurm"
    local function outcome(wait_status, stderr)
      return weft.run(function()
        local ex = slurm.new({ run_id = "spec" })
        local job = { id = 4, state = "FAILED", wait_status = wait_status, opts = {},
          argv = { "sh", "-c", "hog" }, streams = { { mode = "capture", chunks = {} },
            { mode = "capture", chunks = { stderr } } } }
        local ok, err = pcall(ex.outcome, ex, job)
        assert.is_false(ok)
        return err
      end)
    end
    local limit = "slurmstepd-vm: error: Exceeded job memory limit\n"
    for _, status in ipairs({ 9, 137 << 8 }) do
      local err = outcome(status, limit)
      assert.equal("ProcessError", err.kind)
      assert.equal("OUT_OF_MEMORY", err.state)
      assert.equal(137, err.code)
      assert.matches("'hog' ran out of memory (slurm job 4 OUT_OF_MEMORY)", err.message, 1, true)
    end
    -- exit 137 without Slurm's words is the command's own failure
    local err = outcome(137 << 8, "")
    assert.equal("FAILED", err.state)
    assert.matches("'hog' exited with code 137 (slurm job 4 FAILED)", err.message, 1, true)
  end)

  it("rejects an unknown executor and a resource of the wrong type with file:line", function()
    local dir = project([[
      task "a" { executor = "cluster", function() end }
    ]])
    local code, _, err = run(dir, "a")
    assert.equal(2, code)
    assert.matches("Weftfile.lua:1: task \"a\": field 'executor' must be one of local, slurm, "
      .. "got \"cluster\"", err, 1, true)
    remove(dir)
    dir = project([[
      task "a" { cpus = { 4 }, function() end }
    ]])
    code, _, err = run(dir, "a")
    assert.equal(2, code)
    assert.matches("Weftfile.lua:1: task \"a\": field 'cpus' must be a number or a function "
      .. "of the attempt, got table", err, 1, true)
    code, _, err = run(dir, "--executor nope a")
    assert.equal(2, code)
    assert.matches("--executor expects one of local, slurm, got nope", err, 1, true)
    code, _, err = run(dir, "--slurm-rate 0 a")
    assert.equal(2, code)
    assert.matches("--slurm-rate expects a positive number", err, 1, true)
    remove(dir)
  end)
end)

if not is_root() or not installed() then
  describe("weft run --executor slurm", function()
    pending(not is_root() and "needs root to start slurmd (scripts/slurm-local.sh)"
      or "needs slurm-wlm and munge (scripts/deps.sh installs them)")
  end)
  return
end

-- Starts a cluster of this spec run's own (a fresh directory, two free
-- ports), so that two test runs at once on one machine (each in its PID
-- namespace, where pids repeat), or a cluster someone keeps up, do not meet.
-- Sets SLURM_CONF for weft and the Slurm commands of the spec.
local function start_cluster()
  local dir, ports = weft.run(function()
    local d = weft.fs.tempdir("weft-slurm-cluster-")
    local servers = { weft.net.listen("127.0.0.1", 0, function() end),
      weft.net.listen("127.0.0.1", 0, function() end) }
    local p = { servers[1].port, servers[2].port }
    for _, srv in ipairs(servers) do srv:close() end
    return d, p
  end)
  weft.uv.os_setenv("WEFT_SLURM_DIR", dir)
  weft.uv.os_setenv("WEFT_SLURM_PORT", tostring(ports[1]))
  weft.uv.os_setenv("WEFT_SLURMD_PORT", tostring(ports[2]))
  local out, code = sh(ROOT .. "/scripts/slurm-local.sh start")
  assert(code == 0, "scripts/slurm-local.sh start failed:\n" .. out)
  local conf = assert(out:match("SLURM_CONF=(%S+)"), out)
  weft.uv.os_setenv("SLURM_CONF", conf)
end

local function stop_cluster()
  sh(ROOT .. "/scripts/slurm-local.sh stop")
  for _, name in ipairs({ "SLURM_CONF", "WEFT_SLURM_DIR", "WEFT_SLURM_PORT", "WEFT_SLURMD_PORT" }) do
    weft.uv.os_unsetenv(name)
  end
end

describe("weft run --executor slurm on a real one-node Slurm", function()
  local started_here
  local slow, slow_dir   -- the run with Slurm's time limit takes a minute: it runs meanwhile

  setup(function()
    started_here = true
    start_cluster()
    slow_dir = project([[
      local function show(e) print(("ERR state=%s code=%s timeout=%s job=%s"):format(
        e.state, e.code, e.timeout, e.job)) end
      local function try(f) local ok, e = pcall(f) if not ok then show(e) error(e, 0) end end
      local hog = "python3 -c 'x = bytearray(300 * 1024 * 1024); import time; time.sleep(3)'"
      task "slurm_limit" { time = 1, function() try(function() weft.sh "echo up; sleep 600" end) end }
      task "weft_limit" { timeout = 3, function() weft.sh "echo up; sleep 600" end }
      task "exec_limit" { function() try(function() weft.sh("sleep 600", { timeout = 3 }) end) end }
      task "oom" { mem = 50, function() try(function() weft.sh(hog) end) end }
      task "more_mem" { retries = 1, backoff = 0.1, mem = function(n) return n == 1 and 50 or 600 end,
        function(ctx) weft.sh(hog) print("fits on attempt " .. ctx.attempt) end }
      default { "slurm_limit", "weft_limit", "exec_limit", "oom", "more_mem" }
    ]])
    slow = start(slow_dir, "--executor slurm -k -j 10")
  end)

  teardown(function()
    if slow and slow.pid then
      os.execute(("kill -INT %d 2>/dev/null"):format(slow.pid))
      slow.wait(30)
    end
    if slow_dir then remove(slow_dir) end
    if started_here then stop_cluster() end
  end)

  it("runs a task's processes as batch jobs, streams their output and keeps the files", function()
    local dir = project([[
      task "hello" { cpus = 2, mem = 100, function()
        weft.sh "echo job $SLURM_JOB_ID cpus $SLURM_CPUS_PER_TASK mem $SLURM_MEM_PER_NODE; echo to-stderr >&2"
        local r = weft.exec({ "sh", "-c", "cat; echo \"$FOO\"; pwd" },
          { stdin = "from stdin\n", env = { FOO = "it's here" }, cwd = "sub" })
        print("captured " .. #r.stdout .. " bytes, code " .. r.code)
      end }
      task "cheap" { executor = "local", function() weft.sh "echo local ${SLURM_JOB_ID:-none}" end }
      default { "hello", "cheap" }
    ]])
    os.execute("mkdir " .. dir .. "/sub")
    local code, out, err = run(dir, "--executor slurm --trace t.json --report r.html")
    assert.equal(0, code, err)
    assert.matches("hello | job %d+ cpus 2 mem 100\n", out)
    assert.matches("hello !| to-stderr\n", out, 1, true)   -- stderr lines are marked (issue 15)
    assert.matches("hello | from stdin\nhello | it's here\nhello | " .. dir .. "/sub\n", out, 1, true)
    assert.matches("hello | captured %d+ bytes, code 0", out)
    assert.matches("cheap | local none", out, 1, true)
    assert.matches("slurm: 2 jobs, 2 sbatch, %d+ squeue, 0 scancel; output in ", err)
    local rd, id = run_dir(dir)
    assert.matches("^weft%-%d+%-%d+%-%d+%-%x+$", id)
    assert.matches("to-stderr", slurp(rd .. "/hello.1.1.err"), 1, true)
    local sbatch = only(commands(dir), "sbatch")
    assert.equal(2, #sbatch)
    assert.matches("--job-name=hello." .. id, sbatch[1].line, 1, true)
    assert.matches("'--comment=weft task hello attempt 1 (Weftfile.lua)'", sbatch[1].line, 1, true)
    assert.matches("--cpus-per-task=2 --mem=100M", sbatch[1].line, 1, true)
    -- the trace and the report tell queue wait from run time
    local trace = slurp(dir .. "/t.json")
    assert.matches('"cat":"queue"', trace, 1, true)
    assert.matches('"name":"queue wait %(slurm job %d+%)"', trace)
    assert.matches("<th>queue wait</th>", slurp(dir .. "/r.html"), 1, true)
    assert.matches("queue wait [%d.]+s %(slurm job %d+%)", slurp(dir .. "/r.html"))
    -- each job wrote its exit marker as its last step: weft saw both end without squeue
    assert.matches("^0 %d+%.%d+ %d+%.%d+ 0\n$", slurp(rd .. "/hello.1.1.exit"))
    assert.equal(0, left_after_settling(id))
    remove(dir)
  end)

  it("splits queue wait from run time by the job's own start and end (its exit marker)", function()
    local dir = project([[
      task "held" { sbatch = "--begin=now+4", function() weft.sh "sleep 1" end }
    ]])
    local code, _, err = run(dir, "--executor slurm --trace t.json held")
    assert.equal(0, code, err)
    local queue, proc
    for _, ev in ipairs(weft.json.decode(slurp(dir .. "/t.json")).traceEvents) do
      if ev.cat == "queue" then queue = ev end
      if ev.cat == "process" then proc = ev end
    end
    assert.is_truthy(queue and proc)
    -- held 4 s by --begin (then started at a scheduler pass: 3 s or more), then sleep 1 in the job
    assert.is_true(queue.dur >= 2.9e6 and queue.dur < 120e6, "queue wait " .. queue.dur)
    assert.is_true(proc.dur >= 0.95e6 and proc.dur < 1.9e6, "run time " .. proc.dur)
    assert.near(queue.ts + queue.dur, proc.ts, 1e3)
    assert.equal("COMPLETED", proc.args.state)
    remove(dir)
  end)

  it("fails a task whose job exits non-zero with a ProcessError naming the state and code", function()
    local dir = project([[
      task "bad" { function()
        local ok, e = pcall(weft.sh, "echo before; exit 3")
        print(("kind=%s state=%s code=%s job=%s"):format(e.kind, e.state, e.code, e.job))
        error(e, 0)
      end }
      task "soft" { function() print("code " .. weft.sh("exit 5", { check = false }).code) end }
      default { "bad", "soft" }
    ]])
    local code, out, err = run(dir, "--executor slurm -k")
    assert.equal(1, code)
    assert.matches("bad  | before\n", out, 1, true)
    assert.matches("bad  | kind=ProcessError state=FAILED code=3 job=%d+", out)
    assert.matches("soft | code 5", out, 1, true)
    assert.matches("FAILED bad: ProcessError: '/bin/sh' exited with code 3 %(slurm job %d+ FAILED%)", err)
    remove(dir)
  end)

  it("reports a job sbatch rejects and an env name a job script cannot set", function()
    local dir = project([[
      task "nowhere" { partition = "nosuch", function() weft.sh "true" end }
      task "badenv" { function() weft.sh("true", { env = { ["A-B"] = "1" } }) end }
      default { "nowhere", "badenv" }
    ]])
    local code, _, err = run(dir, "--executor slurm -k")
    assert.equal(1, code)
    assert.matches("FAILED nowhere: ProcessError: sbatch failed (exit 1): sbatch: error: "
      .. "invalid partition specified: nosuch", err, 1, true)
    assert.matches("FAILED badenv: env: \"A-B\" is not a variable name", err, 1, true)
    remove(dir)
  end)

  it("follows a running job's output, in order, before the job ends", function()
    local dir = project([[
      task "stream" { function()
        weft.sh "for i in 1 2 3 4 5; do echo line $i; echo err $i >&2; sleep 1; done"
      end }
    ]])
    local h = start(dir, "--executor slurm stream")
    assert.is_true(h.wait_output("stream | line 2", 30), h.stderr())
    local _, id = run_dir(dir)
    assert.equal(1, left_in_squeue(id))   -- still running while its output shows
    assert.is_nil(h.stdout():find("line 5", 1, true))
    assert.equal(0, h.wait(60))
    local out = h.stdout()
    local last = 0
    for i = 1, 5 do
      local at = out:find("stream | line " .. i .. "\n", 1, true)
      assert.is_truthy(at, out)
      assert.is_true(at > last)
      last = at
      assert.matches("stream !| err " .. i .. "\n", out, 1, true)
    end
    remove(dir)
  end)

  it("with -k, runs what does not depend on a failure; without, cancels the rest in Slurm", function()
    local weftfile = [[
      task "bad" { function() weft.sh "exit 3" end }
      task "after" { deps = "bad", function() weft.sh "echo never" end }
      task "other" { function() weft.sh(os.getenv("OTHER") or "sleep 3; echo other done") end }
      default { "after", "other" }
    ]]
    local dir = project(weftfile)
    local code, out, err = run(dir, "--executor slurm -k -j 4")
    assert.equal(1, code)
    assert.matches("other | other done", out, 1, true)
    assert.matches("after%s+skipped", err)
    assert.equal(0, #only(commands(dir), "scancel"))
    remove(dir)

    dir = project((weftfile:gsub('os.getenv%("OTHER"%) or "sleep 3; echo other done"', '"sleep 300"')))
    code, _, err = run(dir, "--executor slurm -j 4")
    assert.equal(1, code)
    assert.matches("other%s+interrupted", err)
    local cancels = only(commands(dir), "scancel")
    assert.equal(1, #cancels)
    local _, id = run_dir(dir)
    assert.equal(0, left_in_squeue(id))
    remove(dir)
  end)

  it("on Ctrl-C cancels 20 queued and running jobs with one scancel and leaves none", function()
    local dir = project([[
      for i = 1, 20 do task("s" .. i) { function() weft.sh "echo up; sleep 300" end } end
      local all = {}
      for i = 1, 20 do all[i] = "s" .. i end
      default(all)
    ]])
    local h = start(dir, "--executor slurm -j 20 --slurm-rate 50")
    local id
    for _ = 1, 300 do
      _, id = run_dir(dir)
      if id and left_in_squeue(id) == 20 and h.stdout():find("up") then break end
      sleep(0.1)
    end
    assert.equal(20, left_in_squeue(id))
    local states = sh("squeue --noheader --format=%j:%T | grep " .. id)
    assert.matches(":RUNNING", states, 1, true)
    assert.matches(":PENDING", states, 1, true)   -- the node offers fewer CPUs than 20
    h.signal("INT")
    assert.equal(130, h.wait(60))
    assert.equal(0, left_in_squeue(id))
    local cancels = only(commands(dir), "scancel")
    assert.equal(1, #cancels)
    local n = 0
    for _ in cancels[1].line:gmatch(" %d+") do n = n + 1 end
    assert.equal(20, n)
    assert.matches("interrupted; tasks cut short: s1, s2", h.stderr(), 1, true)
    remove(dir)
  end)

  it("on SIGTERM cancels its jobs and exits 143", function()
    local dir = project([[
      task "a" { function() weft.sh "echo up; sleep 300" end }
      task "b" { function() weft.sh "sleep 300" end }
      default { "a", "b" }
    ]])
    local h = start(dir, "--executor slurm -j 2")
    assert.is_true(h.wait_output("a | up", 30), h.stderr())
    h.signal("TERM")
    assert.equal(143, h.wait(60))
    local _, id = run_dir(dir)
    assert.equal(0, left_in_squeue(id))
    remove(dir)
  end)

  it("runs 200 tiny tasks at -j50 within the submission rate, polling once per interval", function()
    local dir = project([[
      local all = {}
      for i = 1, 200 do
        all[i] = "t" .. i
        task(all[i]) { function() weft.sh "true" end }
      end
      default(all)
    ]])
    local h = start(dir, "--executor slurm -j 50 --slurm-rate 20 --trace t.json")
    local id, most = nil, 0
    for _ = 1, 1200 do
      if h.exit_code() then break end
      id = id or select(2, run_dir(dir))
      if id then most = math.max(most, held_in_squeue(id, run_dir(dir))) end
      sleep(0.1)
    end
    local code = h.wait(1)
    assert.equal(0, code, h.stderr())
    -- what squeue showed of the run at any one time (sampled), less the jobs whose script
    -- has ended (exit marker written: weft gave their slot to the next), never passes -j
    assert.is_true(most <= 50, "jobs queued or running at once (squeue): " .. most)
    -- nor do the jobs weft held, from submission to Slurm's end, in its trace; and they did
    -- overlap (the sampling above can miss a fast run on a loaded machine)
    local edges = {}
    for _, ev in ipairs(weft.json.decode(slurp(dir .. "/t.json")).traceEvents) do
      if ev.cat == "queue" then edges[#edges + 1] = { ev.ts, 1 } end
      if ev.cat == "process" and ev.args and ev.args.job then
        edges[#edges + 1] = { ev.ts + ev.dur, -1 }
      end
    end
    table.sort(edges, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end)
    local held, peak = 0, 0
    for _, e in ipairs(edges) do
      held = held + e[2]
      peak = math.max(peak, held)
    end
    assert.equal(400, #edges)
    assert.is_true(peak > 1 and peak <= 50, "jobs held at once (trace): " .. peak)
    local cmds = commands(dir)
    local sbatch, squeue = only(cmds, "sbatch"), only(cmds, "squeue")
    assert.equal(200, #sbatch)
    for i = 21, #sbatch do   -- at most 20 submissions in any second
      assert.is_true(sbatch[i].t - sbatch[i - 20].t >= 0.995,
        ("sbatch %d and %d %.3fs apart"):format(i - 20, i, sbatch[i].t - sbatch[i - 20].t))
    end
    for i = 2, #squeue do   -- one squeue (for all jobs) per interval of at least 2 s
      assert.is_true(squeue[i].t - squeue[i - 1].t >= 1.99,
        ("squeue %d and %d %.3fs apart"):format(i - 1, i, squeue[i].t - squeue[i - 1].t))
    end
    local wall = cmds[#cmds].t
    assert.is_true(#squeue <= wall / 2 + 1, ("%d squeue in %.1fs"):format(#squeue, wall))
    -- the issue's target: at most 1/50 of a poll per task (each job's exit marker tells
    -- weft it ended; squeue is for jobs killed whole, requeued or stuck)
    assert.is_true(#squeue <= 200 / 50, ("%d squeue for 200 tasks in %.1fs"):format(#squeue, wall))
    assert.equal(0, #only(cmds, "scancel"))
    assert.matches("slurm: 200 jobs, 200 sbatch, " .. #squeue .. " squeue, 0 scancel", h.stderr(),
      1, true)
    remove(dir)
  end)

  describe("limits (one run of five tasks, started in setup)", function()
    local code, out, err
    local function finished()
      if not code then
        code = slow.wait(240)
        out, err = slow.stdout(), slow.stderr()
      end
      return code
    end

    it("fails a job past its Slurm --time as TIMEOUT", function()
      assert.equal(1, finished(), err)
      assert.matches("slurm_limit | ERR state=TIMEOUT code=124 timeout=true job=%d+", out)
      assert.matches("FAILED slurm_limit: ProcessError: '/bin/sh' hit its Slurm time limit "
        .. "%(slurm job %d+ TIMEOUT%)", err)
      local line
      for _, c in ipairs(only(commands(slow_dir), "sbatch")) do
        if c.line:find("--job-name=slurm_limit.", 1, true) then line = c.line end
      end
      assert.matches("--time=0:00:01", line, 1, true)
    end)

    it("cancels the job of a task past weft's own timeout, and of exec's timeout", function()
      assert.equal(1, finished(), err)
      assert.matches("FAILED weft_limit: Timeout: timed out after 3", err, 1, true)
      assert.matches("exec_limit%s+| ERR state=CANCELLED code=124 timeout=true job=%d+", out)
      assert.matches("FAILED exec_limit: ProcessError: '/bin/sh' timed out %(slurm job %d+ "
        .. "cancelled after 3s%)", err)
      assert.is_true(#only(commands(slow_dir), "scancel") >= 1)
    end)

    it("fails a job past its memory as OUT_OF_MEMORY", function()
      assert.equal(1, finished(), err)
      assert.matches("oom%s+| ERR state=OUT_OF_MEMORY code=137 timeout=nil job=%d+", out)
      assert.matches("FAILED oom: ProcessError: '/bin/sh' ran out of memory %(slurm job %d+ "
        .. "OUT_OF_MEMORY%)", err)
    end)

    it("retries with more memory and succeeds", function()
      assert.equal(1, finished(), err)
      assert.matches("more_mem%s+| fits on attempt 2", out)
      assert.matches("more_mem%s+done%s+[%d.]+s%s+%(2 attempts%)", err)
      local mems = {}
      for _, c in ipairs(only(commands(slow_dir), "sbatch")) do
        if c.line:find("--job-name=more_mem.", 1, true) then mems[#mems + 1] = c.line:match("%-%-mem=(%S+)") end
      end
      assert.same({ "50M", "600M" }, mems)
      local _, id = run_dir(slow_dir)
      assert.equal(0, left_in_squeue(id))
    end)
  end)
end)

-- Requeues, lost nodes and preemption, produced for real: `scontrol requeue`,
-- `scontrol update nodename=... state=down`, and a job in the higher-tier
-- partition "urgent" of scripts/slurm-local.sh (preempt/partition_prio,
-- PreemptMode=REQUEUE). These disturb every job on the node, so they have a
-- cluster of their own, started after the run of the block above ended.
describe("weft run --executor slurm when Slurm requeues or loses a job", function()
  local node = (sh("hostname -s")):match("%S+")

  setup(start_cluster)
  teardown(function()
    sh(("scontrol update nodename=%s state=resume"):format(node))
    stop_cluster()
  end)

  -- The id of the job of `task` in run `id` (the newest, if several).
  local function job_of(id, task)
    local found
    for _, l in ipairs(lines_of(sh("squeue --noheader --states=all --format=%i:%j"))) do
      local jid, name = l:match("^(%d+):(.*)$")
      if name == task .. "." .. id then found = math.max(found or 0, tonumber(jid)) end
    end
    return found
  end

  -- A requeued job waits for its begin time (two minutes later): let it run now.
  local function release(jid)
    for _ = 1, 100 do
      if sh("squeue --noheader --format=%T --jobs=" .. jid):match("PENDING") then break end
      sleep(0.1)
    end
    sh(("scontrol update jobid=%d starttime=now"):format(jid))
  end

  local function node_back()
    sh(("scontrol update nodename=%s state=resume"):format(node))
    for _ = 1, 300 do
      if sh("sinfo -h -o %T"):match("^idle") or sh("sinfo -h -o %T"):match("^mixed") then return true end
      sleep(0.1)
    end
    return false
  end

  it("keeps waiting for a job `scontrol requeue` puts back in the queue, says so, then finishes", function()
    local dir = project([[
      task "again" { function()
        weft.sh("echo run ${SLURM_RESTART_COUNT:-0}; "
          .. "[ ${SLURM_RESTART_COUNT:-0} -gt 0 ] || sleep 300; echo finished")
      end }
    ]])
    local h = start(dir, "--executor slurm --trace t.json again")
    assert.is_true(h.wait_output("again | run 0", 30), h.stderr())
    local _, id = run_dir(dir)
    local jid = job_of(id, "again")
    sh("scontrol requeue " .. jid)
    assert.is_true(h.wait_output("again !| slurm job " .. jid .. " was requeued by Slurm "
      .. "%(restart 1, now PENDING[^)]*%); weft keeps waiting", 60), h.stdout())
    release(jid)
    assert.equal(0, h.wait(60), h.stderr())
    local out = h.stdout()
    assert.matches("again | run 1\nagain | finished\n", out, 1, true)
    assert.matches("^0 [%d.]+ [%d.]+ 1\n$", slurp(run_dir(dir) .. "/again.1.1.exit"))
    -- the trace's run slice is the second run, from the job's own marker
    for _, ev in ipairs(weft.json.decode(slurp(dir .. "/t.json")).traceEvents) do
      if ev.cat == "process" then
        assert.equal("COMPLETED", ev.args.state)
        assert.is_true(ev.dur < 3e6, "run " .. ev.dur)
      end
    end
    assert.equal(0, left_after_settling(id))
    remove(dir)
  end)

  it("fails a job on a node that goes down as NODE_FAIL, and waits for a requeued one", function()
    local dir = project([[
      local function show(e) print(("ERR state=%s code=%s job=%s"):format(e.state, e.code, e.job)) end
      task "lost" { sbatch = "--no-requeue", function()
        local ok, e = pcall(weft.sh, "echo up; sleep 300")
        show(e)
        error(e, 0)
      end }
      task "again" { function()
        weft.sh("echo run ${SLURM_RESTART_COUNT:-0}; "
          .. "[ ${SLURM_RESTART_COUNT:-0} -gt 0 ] || sleep 300; echo finished")
      end }
      default { "lost", "again" }
    ]])
    local h = start(dir, "--executor slurm -k")
    local ok, err = pcall(function()
      assert.is_true(h.wait_output("lost%s+| up", 30) and h.wait_output("again | run 0", 30),
        h.stderr())
      local _, id = run_dir(dir)
      local jid = job_of(id, "again")
      sh(("scontrol update nodename=%s state=down reason=weft-spec"):format(node))
      assert.is_true(h.wait_output("lost%s+| ERR state=NODE_FAIL code=%d+ job=%d+", 60), h.stdout())
      assert.is_true(h.wait_output("again !| slurm job " .. jid .. " was requeued by Slurm", 60),
        h.stdout())
      assert.is_true(node_back())
      release(jid)
      assert.equal(1, h.wait(60), h.stderr())
      assert.matches("again | run 1\nagain | finished\n", h.stdout(), 1, true)
      assert.matches("FAILED lost: ProcessError: '/bin/sh' lost its node %(slurm job %d+ "
        .. "NODE_FAIL%)", h.stderr())
      assert.matches("again%s+done", h.stderr())
      assert.equal(0, left_after_settling(id))
    end)
    node_back()
    if h.pid then os.execute(("kill -INT %d 2>/dev/null"):format(h.pid)) h.wait(30) end
    remove(dir)
    assert(ok, err)
  end)

  it("fails a preempted job that cannot be requeued as PREEMPTED, and waits for a requeued one",
    function()
    local half = math.max(1, (tonumber(sh("sinfo -h -o %c"):match("%d+")) or 2) // 2)
    local dir = project(([[
      local function show(e) print(("ERR state=%%s code=%%s job=%%s"):format(e.state, e.code, e.job)) end
      task "victim" { cpus = %d, sbatch = "--no-requeue", function()
        local ok, e = pcall(weft.sh, "echo up; sleep 300")
        show(e)
        error(e, 0)
      end }
      task "bumped" { cpus = %d, function()
        weft.sh("echo run ${SLURM_RESTART_COUNT:-0}; "
          .. "[ ${SLURM_RESTART_COUNT:-0} -gt 0 ] || sleep 300; echo finished")
      end }
      default { "victim", "bumped" }
    ]]):format(half, half))
    local h = start(dir, "--executor slurm -k")
    assert.is_true(h.wait_output("victim | up", 30) and h.wait_output("bumped | run 0", 30),
      h.stderr())
    local _, id = run_dir(dir)
    local jid = job_of(id, "bumped")
    -- a job of the higher tier that needs the whole node
    local urgent = sh(("sbatch --parsable --partition=urgent --cpus-per-task=%d --output=/dev/null "
      .. "--wrap 'sleep 1'"):format(half * 2)):match("%d+")
    assert.is_truthy(urgent)
    assert.is_true(h.wait_output("victim | ERR state=PREEMPTED code=143 job=%d+", 60), h.stdout())
    assert.is_true(h.wait_output("bumped !| slurm job " .. jid .. " was requeued by Slurm", 60),
      h.stdout())
    release(jid)
    assert.equal(1, h.wait(60), h.stderr())
    assert.matches("bumped | run 1\nbumped | finished\n", h.stdout(), 1, true)
    assert.matches("FAILED victim: ProcessError: '/bin/sh' was preempted and not requeued "
      .. "%(slurm job %d+ PREEMPTED%)", h.stderr())
    assert.equal(0, left_after_settling(id))
    remove(dir)
  end)

  -- Slurm sets BOOT_FAIL when a job's node configuration fails and the job cannot be
  -- requeued; a site's boot or node-features handler reports that failure through
  -- libslurm's slurm_requeue(job, JOB_RECONFIG_FAIL), which scontrol does not offer. The
  -- spec calls it the same way (python3's ctypes on Debian's libslurmfull.so).
  local LIBSLURM = "/usr/lib/x86_64-linux-gnu/slurm-wlm/libslurmfull.so"
  local REPORT_BOOT_FAILURE = [[python3 -c "
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1], mode=ctypes.RTLD_GLOBAL)
lib.slurm_init(None)
lib.slurm_requeue(ctypes.c_uint32(int(sys.argv[2])), ctypes.c_uint32(1 << 17))
"]]

  it("fails a job whose node could not be configured for it as BOOT_FAIL", function()
    if not io.open(LIBSLURM) then
      pending("needs " .. LIBSLURM .. " (Debian's slurm-wlm) to report a boot failure")
      return
    end
    local dir = project([[
      task "boot" { sbatch = "--no-requeue", function() weft.sh "echo up; sleep 300" end }
    ]])
    local h = start(dir, "--executor slurm boot")
    assert.is_true(h.wait_output("boot | up", 30), h.stderr())
    local _, id = run_dir(dir)
    sh(("%s %s %d"):format(REPORT_BOOT_FAILURE, LIBSLURM, job_of(id, "boot")))
    assert.equal(1, h.wait(60), h.stderr())
    assert.matches("FAILED boot: ProcessError: '/bin/sh' could not boot its node %(slurm job %d+ "
      .. "BOOT_FAIL%)", h.stderr())
    assert.equal(0, left_after_settling(id))
    remove(dir)
  end)
end)
