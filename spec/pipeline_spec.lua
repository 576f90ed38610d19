-- Pipelines (API.md "Pipelines"): `weft run` on the fixtures in
-- spec/fixtures/pipelines, run as a child process, and weft.pipeline from
-- plain Lua.
local weft = require "weft"
local pipeline = require "weft.pipeline"

local BIN = os.getenv("WEFT_BIN") or "build/weft"
local FIX = "spec/fixtures/pipelines/"

local function slurp(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- Runs `weft run ARGS` with env assignments; returns code, stdout, stderr.
local function weft_run(args, env)
  local out, err = os.tmpname(), os.tmpname()
  local cmd = ("env CI=true %s %s run %s > %s 2> %s"):format(env or "", BIN, args, out, err)
  local _, _, code = os.execute(cmd)
  local o, e = slurp(out), slurp(err)
  os.remove(out)
  os.remove(err)
  return code, o, e
end

local proc = require "support.proc"
local alive, gone = proc.alive, proc.gone

local function wait_file(path, secs)
  for _ = 1, secs * 100 do
    local s = slurp(path)
    if s and s ~= "" then return s end
    os.execute("sleep 0.01")
  end
end

describe("weft run", function()
  local log = os.tmpname()
  after_each(function() os.remove(log) end)

  it("runs dependencies before the tasks that need them", function()
    local code = weft_run("-f " .. FIX .. "basic.lua -j 3", "LOG=" .. log)
    assert.equal(0, code)
    local lines = {}
    for l in slurp(log):gmatch("[^\n]+") do lines[#lines + 1] = l end
    local pos = {}
    for i, l in ipairs(lines) do pos[l] = i end
    for _, n in ipairs({ "a", "b", "c" }) do
      assert.is_true(pos["end " .. n] < pos["start d"], n .. " ended after d started")
    end
  end)

  it("runs at most -j tasks at once", function()
    local code, out = weft_run("-f " .. FIX .. "basic.lua -j 2", "LOG=" .. log)
    assert.equal(0, code)
    assert.matches("report | peak 2\n", out, 1, true)
    code, out = weft_run("-f " .. FIX .. "basic.lua -j1", "LOG=" .. log)
    assert.matches("report | peak 1\n", out, 1, true)
  end)

  it("prefixes task output (print and processes) with the aligned task name", function()
    local _, out = weft_run("-f " .. FIX .. "basic.lua", "LOG=" .. log)
    assert.matches("report | from a process\n", out, 1, true)
    assert.matches("report !| to stderr\n", out, 1, true)
  end)

  it("prints a summary with statuses, times and the critical path", function()
    local _, _, err = weft_run("-f " .. FIX .. "basic.lua", "LOG=" .. log)
    assert.matches("summary:", err, 1, true)
    assert.matches("\n  d +done +%d+%.%d+s", err)
    assert.matches("critical path [%d.]+s: %a %-> d %-> report", err)
    assert.matches("total [%d.]+s wall, [%d.]+s of task time", err)
  end)

  it("stops at the first failure, exits 1, and shows the failed task's output", function()
    local code, out, err = weft_run("-f " .. FIX .. "fail.lua -j 2")
    assert.equal(1, code)
    assert.not_matches("must not run", out)
    assert.matches("FAILED bad: ProcessError", err, 1, true)
    assert.matches("  bad | about to fail", err, 1, true)
    assert.matches("\n  after_bad +skipped", err)
  end)

  it("keeps going past failures with -k, skipping only what depends on them", function()
    local code, out, err = weft_run("-f " .. FIX .. "fail.lua -j 2 -k")
    assert.equal(1, code)
    assert.matches("good ran", out, 1, true)
    assert.not_matches("must not run", out)
    assert.matches("\n  good +done", err)
    assert.matches("\n  after_bad +skipped", err)
  end)

  it("runs nothing on --dry-run and prints the waves", function()
    local code, out = weft_run("-f " .. FIX .. "basic.lua --dry-run", "LOG=" .. log)
    assert.equal(0, code)
    assert.equal("wave 1: a b c\nwave 2: d\nwave 3: report\n", out)
    assert.equal("", slurp(log) or "")
  end)

  it("lists the tasks with their descriptions", function()
    local code, out = weft_run("-f " .. FIX .. "basic.lua --list", "LOG=" .. log)
    assert.equal(0, code)
    assert.matches("a       first\n", out, 1, true)
    assert.matches("d       after a, b and c\n", out, 1, true)
    assert.matches("report  %s*%(default%)", out)
  end)

  it("prints the graph as DOT", function()
    local code, out = weft_run("-f " .. FIX .. "basic.lua --graph dot d", "LOG=" .. log)
    assert.equal(0, code)
    assert.matches("^digraph weft {\n", out)
    assert.matches('"a" -> "d";', out, 1, true)
    assert.not_matches("report", out)
    assert.matches("}\n$", out)
  end)

  it("prints the graph as Mermaid", function()
    local _, out = weft_run("-f " .. FIX .. "basic.lua --graph mermaid", "LOG=" .. log)
    assert.matches("^graph LR\n", out)
    assert.matches('t4%["d"%]', out)
    assert.matches("t1 --> t4", out, 1, true)
  end)

  it("writes a trace that parses, with a slice per task", function()
    local trace = os.tmpname()
    local code = weft_run("-f " .. FIX .. "basic.lua --trace " .. trace, "LOG=" .. log)
    assert.equal(0, code)
    local json = require "cjson"
    local doc = json.decode(slurp(trace))
    os.remove(trace)
    local tasks = {}
    for _, ev in ipairs(doc.traceEvents) do
      if ev.ph == "X" and ev.cat == "task" then tasks[ev.name] = ev end
    end
    for _, n in ipairs({ "a", "b", "c", "d", "report" }) do
      assert.is_table(tasks[n], "no slice for " .. n)
      assert.is_true(tasks[n].dur > 0)
    end
  end)

  it("writes a self-contained HTML report with a Gantt chart", function()
    local report = os.tmpname()
    weft_run("-f " .. FIX .. "basic.lua --report " .. report, "LOG=" .. log)
    local html = slurp(report)
    os.remove(report)
    assert.matches("^<!DOCTYPE html>", html)
    assert.matches("<svg", html, 1, true)
    assert.not_matches("<script src", html, 1, true)
    assert.matches("report", html, 1, true)
  end)

  it("retries a failing task with backoff", function()
    local counter = os.tmpname()
    local code, out, err = weft_run("-f " .. FIX .. "retry.lua flaky", "COUNTER=" .. counter)
    os.remove(counter)
    assert.equal(0, code)
    assert.matches("succeeded on attempt 3", out, 1, true)
    assert.matches("flaky +done .*%(3 attempts%)", err)
  end)

  it("fails when retries run out", function()
    local counter = os.tmpname()
    local code, _, err = weft_run("-f " .. FIX .. "retry.lua hopeless", "COUNTER=" .. counter)
    os.remove(counter)
    assert.equal(1, code)
    assert.matches("hopeless +failed .*%(2 attempts%)", err)
  end)

  it("kills a task's processes when its timeout expires", function()
    local pidfile = os.tmpname()
    local t0 = os.time()
    local code, _, err = weft_run("-f " .. FIX .. "timeout.lua", "PIDFILE=" .. pidfile)
    assert.equal(1, code)
    assert.is_true(os.time() - t0 < 10)
    assert.matches("FAILED slow: Timeout", err, 1, true)
    local pid = tonumber(slurp(pidfile))
    os.remove(pidfile)
    assert.is_true(gone(pid), "grandchild survived the timeout")
  end)

  it("stops the whole run at --timeout", function()
    local pidfile = os.tmpname()
    local code, _, err = weft_run("-f " .. FIX .. "interrupt.lua --timeout 0.5", "PIDFILE=" .. pidfile)
    assert.equal(1, code)
    assert.matches("pipeline timed out", err, 1, true)
    assert.is_true(gone(tonumber(slurp(pidfile))))
    os.remove(pidfile)
  end)

  it("on SIGINT terminates every process group, prints the summary and exits 130", function()
    local pidfile, wpid, codefile = os.tmpname(), os.tmpname(), os.tmpname()
    local out, err = os.tmpname(), os.tmpname()
    os.remove(pidfile)
    os.execute(("(env CI=true PIDFILE=%s %s run -f %sinterrupt.lua > %s 2> %s & echo $! > %s; "
      .. "wait $!; echo $? > %s) &"):format(pidfile, BIN, FIX, out, err, wpid, codefile))
    local grandchild = tonumber(wait_file(pidfile, 10))
    local weft_pid = tonumber(wait_file(wpid, 10))
    assert.is_number(grandchild)
    os.execute("sleep 0.1; kill -INT " .. weft_pid)
    local code = tonumber(wait_file(codefile, 10))
    local stderr = slurp(err)
    for _, p in ipairs({ pidfile, wpid, codefile, out, err }) do os.remove(p) end
    assert.equal(130, code)
    assert.matches("summary:", stderr, 1, true)
    assert.matches("\n  parked +interrupted", stderr)
    assert.matches("\n  quick +done", stderr)
    assert.matches("tasks cut short: parked", stderr, 1, true)
    assert.is_true(gone(grandchild), "grandchild survived Ctrl-C")
  end)

  describe("usage errors exit 2", function()
    it("names the task and line of an unknown dependency", function()
      local code, _, err = weft_run("-f " .. FIX .. "unknown_dep.lua b")
      assert.equal(2, code)
      assert.matches('unknown_dep.lua:2: task "b" depends on unknown task "nope"', err, 1, true)
    end)

    it("names a cycle and where it was declared", function()
      local code, _, err = weft_run("-f " .. FIX .. "cycle.lua")
      assert.equal(2, code)
      assert.matches("cycle.lua:%d: task \"%a\" is part of a dependency cycle: %a %-> %a %-> %a %-> %a", err)
    end)

    it("names a duplicate task and both lines", function()
      local code, _, err = weft_run("-f " .. FIX .. "duplicate.lua")
      assert.equal(2, code)
      assert.matches('duplicate.lua:2: task "a" is declared twice (first at', err, 1, true)
      assert.matches("duplicate.lua:1", err, 1, true)
    end)

    it("lists the tasks when there is no target and no default", function()
      local code, _, err = weft_run("-f " .. FIX .. "nodefault.lua")
      assert.equal(2, code)
      assert.matches("no target given", err, 1, true)
      assert.matches("one  the first", err, 1, true)
    end)

    it("rejects a missing file, an unknown target and an unknown option", function()
      assert.equal(2, (weft_run("-f " .. FIX .. "no-such-file.lua")))
      assert.equal(2, (weft_run("-f " .. FIX .. "nodefault.lua three")))
      local code, _, err = weft_run("-f " .. FIX .. "nodefault.lua --bogus")
      assert.equal(2, code)
      assert.matches("unknown option --bogus", err, 1, true)
      assert.equal(2, (weft_run("-f " .. FIX .. "nodefault.lua --graph png")))
    end)

    it("documents every option in --help", function()
      local code, out = weft_run("--help")
      assert.equal(0, code)
      for _, opt in ipairs({ "-f", "-j", "-k", "--dry-run", "--list", "--graph", "--trace",
                             "--report", "--timeout" }) do
        assert.matches(opt, out, 1, true)
      end
    end)
  end)

  it("draws a live status line in a real terminal (tmux)", function()
    if not os.execute("command -v tmux > /dev/null") then
      pending("tmux is not installed")
      return
    end
    local sock = "weft-spec-" .. os.time() .. "-" .. math.random(1e6)
    os.execute(("tmux -L %s new-session -d -x 120 -y 20 'env -u CI %s run -f %sslow.lua -j 2; sleep 5'")
      :format(sock, BIN, FIX))
    local screen
    for _ = 1, 150 do
      os.execute("sleep 0.02")
      local p = io.popen(("tmux -L %s capture-pane -p 2>/dev/null"):format(sock))
      screen = p:read("a")
      p:close()
      if screen:match("%[0/3%] 2 running  %d+%.%d%ds") then break end
    end
    -- Ctrl-C and a moment for weft to exit, so it does not outlive the spec
    os.execute(("tmux -L %s send-keys C-c; sleep 0.5; tmux -L %s kill-server 2>/dev/null")
      :format(sock, sock))
    assert.matches("  build +%d+%.%d%ds *\n  lint +%d+%.%d%ds *\n%[0/3%] 2 running  %d+%.%d%ds", screen)
  end)
end)

describe("weft.pipeline from plain Lua", function()
  local function recorder()
    local lines = {}
    return {
      lines = lines,
      begin = function() end, started = function() end, finished = function() end,
      finish = function() end,
      line = function(_, rec, _, text) lines[#lines + 1] = (rec and rec.name or "?") .. ":" .. text end,
    }
  end

  it("builds and runs a pipeline without a Weftfile", function()
    local P, order = pipeline.new(), {}
    P:task("fetch", { function() order[#order + 1] = "fetch" end })
    P:task("use", { deps = { "fetch" }, function() order[#order + 1] = "use" end })
    local run = pipeline.run(P, { targets = { "use" }, jobs = 2, reporter = recorder() })
    assert.is_true(run.ok)
    assert.same({ "fetch", "use" }, order)
  end)

  it("raises a usage error for an unknown dependency", function()
    local P = pipeline.new()
    P:task("x", { deps = { "y" }, function() end })
    local ok, err = pcall(P.validate, P)
    assert.is_false(ok)
    assert.is_true(pipeline.is_usage_error(err))
    assert.matches('task "x" depends on unknown task "y"', err.message, 1, true)
  end)

  -- validate is checked once until the tasks change (weft run loads, then
  -- runs, the same pipeline): a task declared after a check is checked too
  it("checks again after a task is declared past a successful check", function()
    local P = pipeline.new()
    P:task("x", { function() end })
    P:validate()
    P:validate()
    P:task("late", { deps = { "missing" }, function() end })
    local ok, err = pcall(P.validate, P)
    assert.is_false(ok)
    assert.matches('task "late" depends on unknown task "missing"', err.message, 1, true)
    P:task("missing", { function() end })
    P:validate()
    P:task("loop", { deps = { "loop" }, function() end })
    ok, err = pcall(pipeline.run, P, { targets = { "x" }, reporter = recorder() })
    assert.is_false(ok)
    assert.matches("dependency cycle", tostring(err.message or err))
  end)

  it("reports a failure in the run record", function()
    local P = pipeline.new()
    P:task("boom", { function() error("boom") end })
    local run = pipeline.run(P, { targets = { "boom" }, reporter = recorder() })
    assert.is_false(run.ok)
    assert.equal("failed", run.list[1].status)
  end)
end)
