-- weft.exec / weft.sh (API.md "Processes"): capture, check, exit codes,
-- signals, env/cwd/stdin, line streaming, timeouts and cancellation that
-- kill the whole process group, missing programs, big outputs, limits.
local weft = require "weft"

local proc = require "support.proc"
local alive, gone = proc.alive, proc.gone

local function read_pid(path)
  local f = assert(io.open(path))
  local pid = f:read("l")
  f:close()
  os.remove(path)
  return assert(tonumber(pid), "no pid in " .. path)
end

describe("weft.exec", function()
  it("captures stdout and stderr", function()
    local r = weft.run(weft.exec, { "sh", "-c", "echo out; echo err >&2" })
    assert.same({ code = 0, stdout = "out\n", stderr = "err\n" }, r)
  end)

  it("returns an empty string for an empty captured stream", function()
    local r = weft.run(weft.exec, { "true" })
    assert.equal("", r.stdout)
    assert.equal("", r.stderr)
  end)

  it("takes options in the argv table", function()
    local r = weft.run(weft.exec, { "sh", "-c", "exit 3", check = false })
    assert.equal(3, r.code)
  end)

  it("raises ProcessError on a non-zero exit with check (the default)", function()
    local ok, err = pcall(weft.run, weft.exec, { "sh", "-c", "echo partial; exit 4" })
    assert.is_false(ok)
    assert.equal("ProcessError", err.kind)
    assert.equal(4, err.code)
    assert.equal("partial\n", err.stdout)
    assert.same({ "sh", "-c", "echo partial; exit 4" }, err.argv)
  end)

  it("reports death by a signal as 128 + signal", function()
    local r = weft.run(weft.sh, "kill -9 $$", { check = false })
    assert.equal(137, r.code)
    assert.equal(9, r.signal)
  end)

  it("raises for death by a signal with check", function()
    local ok, err = pcall(weft.run, weft.sh, "kill -15 $$")
    assert.is_false(ok)
    assert.equal(15, err.signal)
    assert.equal(143, err.code)
  end)

  it("passes env (merged with the environment), cwd and stdin", function()
    local r = weft.run(weft.exec, { "sh", "-c", 'echo "$WEFT_X:$HOME"; pwd; cat' },
      { env = { WEFT_X = "yes" }, cwd = "/", stdin = "from stdin" })
    assert.equal("yes:" .. os.getenv("HOME") .. "\n/\nfrom stdin", r.stdout)
  end)

  it("removes a variable given as false in env", function()
    local r = weft.run(weft.sh, 'echo "[$HOME]"', { env = { HOME = false } })
    assert.equal("[]\n", r.stdout)
  end)

  it("discards or inherits streams on request", function()
    local r = weft.run(weft.sh, "echo gone; echo gone >&2", { stdout = "null", stderr = "null" })
    assert.is_nil(r.stdout)
    assert.is_nil(r.stderr)
  end)

  it("streams lines to on_stdout/on_stderr in order while capturing", function()
    local out, err = {}, {}
    local r = weft.run(weft.sh, "for i in 1 2 3; do echo o$i; echo e$i >&2; sleep 0.02; done; printf last",
      { on_stdout = function(l) out[#out + 1] = l end,
        on_stderr = function(l) err[#err + 1] = l end })
    assert.same({ "o1", "o2", "o3", "last" }, out)
    assert.same({ "e1", "e2", "e3" }, err)
    assert.equal("o1\no2\no3\nlast", r.stdout)
  end)

  it("with batch, hands every complete line read so far to one call, joined by newlines", function()
    local calls = {}
    local r = weft.run(weft.sh, "printf 'a\\nb\\nc'; sleep 0.2; printf 'd\\ne\\n'",
      { batch = true, on_stdout = function(t) calls[#calls + 1] = t end })
    assert.same({ "a\nb", "cd\ne" }, calls)
    assert.equal("a\nb\ncd\ne\n", r.stdout)
  end)

  it("gives an empty stdin as /dev/null, with no pipe to write (weft run's default per task)", function()
    local r = weft.run(weft.exec, { "readlink", "/proc/self/fd/0" }, { stdin = "" })
    assert.equal("/dev/null\n", r.stdout)
    r = weft.run(weft.exec, { "cat" }, { stdin = "" })
    assert.equal("", r.stdout)
    r = weft.run(weft.exec, { "cat" }, { stdin = "x" })
    assert.equal("x", r.stdout)
  end)

  it("keeps at most max_capture bytes of a stream and says it cut them", function()
    local r = weft.run(weft.sh, "head -c 300000 /dev/zero; echo err >&2", { max_capture = 1000 })
    assert.equal(("\0"):rep(1000), r.stdout)
    assert.equal("err\n", r.stderr)
    assert.is_true(r.truncated)
    local seen = 0
    r = weft.run(weft.sh, "yes abc | head -c 400000",
      { max_capture = 10, on_stdout = function() seen = seen + 1 end })
    assert.equal("abc\nabc\nab", r.stdout)
    assert.is_true(r.truncated)
    assert.equal(100000, seen)
    r = weft.run(weft.sh, "echo whole", { max_capture = 10 })
    assert.equal("whole\n", r.stdout)
    assert.is_nil(r.truncated)
  end)

  it("rejects a bad max_capture or _sink", function()
    assert.error_matches(function() weft.run(weft.sh, "true", { max_capture = -1 }) end,
      "bad option 'max_capture'", 1, true)
    assert.error_matches(function() weft.run(weft.sh, "true", { max_capture = "x" }) end,
      "bad option 'max_capture'", 1, true)
    assert.error_matches(function() weft.run(weft.sh, "true", { batch = true, _sink = {} }) end,
      "bad option '_sink' (weft._line_sink expected, got table)", 1, true)
  end)

  it("delivers lines before the process ends", function()
    local first_at
    local t0 = weft.run(function()
      local start = weft.now()
      weft.sh("echo early; sleep 1.5", { on_stdout = function() first_at = weft.now() - start end })
      return weft.now() - start
    end)
    assert.is_true(first_at < 1.0 and t0 >= 1.5, ("first line at %.2f s, end at %.2f s"):format(first_at, t0))
  end)

  it("kills the process and raises the error of a failing line callback", function()
    local ok, err = pcall(weft.run, weft.sh, "echo x; sleep 100",
      { on_stdout = function() error("stop here") end })
    assert.is_false(ok)
    assert.matches("stop here", tostring(err))
  end)

  it("raises ProcessError naming a missing program", function()
    local ok, err = pcall(weft.run, weft.exec, { "weft-no-such-program", "x" })
    assert.is_false(ok)
    assert.equal("ProcessError", err.kind)
    assert.equal("ENOENT", err.errno)
    assert.matches("weft%-no%-such%-program", err.message)
  end)

  -- The pipes are weft streams: stdin beyond a pipe's buffer goes out with
  -- back-pressure, and lines without a capture are dropped once delivered
  -- (the stream's buffer is compacted between reads).
  it("writes a stdin bigger than a pipe buffer; a child that reads none is no error", function()
    local big = string.rep("0123456789abcdef", 256 * 1024)   -- 4 MB
    local r = weft.run(weft.exec, { "cat" }, { stdin = big })
    assert.equal(#big, #r.stdout)
    assert.is_true(r.stdout == big)
    assert.equal(0, weft.run(weft.exec, { "true" }, { stdin = big }).code)
    assert.equal("", weft.run(weft.exec, { "cat" }, { stdin = "" }).stdout)
  end)

  it("streams 200k lines without a capture, none lost or cut", function()
    local n, sum, bad = 0, 0, 0
    local r = weft.run(weft.sh, "seq 1 200000", { stdout = "null",
      on_stdout = function(l)
        n = n + 1
        local v = tonumber(l)
        if v ~= n then bad = bad + 1 end
        sum = sum + (v or 0)
      end })
    assert.is_nil(r.stdout)
    assert.equal(200000, n)
    assert.equal(0, bad)
    assert.equal(200000 * 200001 // 2, sum)
  end)

  it("captures 100 MB of output", function()
    local r = weft.run(weft.sh, "head -c 100000000 /dev/zero")
    assert.equal(100000000, #r.stdout)
  end)

  it("raises outside a task", function()
    assert.has_error(function() weft.exec { "true" } end,
      "weft.exec: not inside a task (start one with weft.run or weft.spawn)")
  end)

  it("checks its options", function()
    assert.has_error(function() weft.run(weft.exec, { "true" }, { stdout = "bogus" }) end,
      "bad option 'stdout' (\"capture\", \"inherit\" or \"null\" expected, got \"bogus\")")
    assert.has_error(function() weft.run(weft.exec, {}) end,
      "bad argument #1 to 'weft.exec' (argv must hold the program name)")
  end)
end)

describe("weft.sh", function()
  it("runs a command line through /bin/sh -c", function()
    local r = weft.run(weft.sh, "echo $((6 * 7))")
    assert.equal("42\n", r.stdout)
  end)
end)

describe("process groups", function()
  local pidfile = os.tmpname()
  local script = "sleep 100 & echo $! > " .. pidfile .. "; sleep 100"

  it("a timeout kills the whole group and raises timeout = true, code 124", function()
    local t0 = os.time()
    local ok, err = pcall(weft.run, weft.sh, script, { timeout = 0.3 })
    assert.is_false(ok)
    assert.equal("ProcessError", err.kind)
    assert.is_true(err.timeout)
    assert.equal(124, err.code)
    assert.equal(15, err.signal)
    assert.is_true(os.time() - t0 < 5)
    assert.is_true(gone(read_pid(pidfile)), "grandchild sleep survived")
  end)

  it("a timeout raises even with check = false", function()
    local ok, err = pcall(weft.run, weft.sh, "sleep 100", { timeout = 0.1, check = false })
    assert.is_false(ok)
    assert.is_true(err.timeout)
  end)

  it("cancellation kills the whole group before Cancelled is raised", function()
    local ok, err = pcall(weft.run, function()
      local t = weft.spawn(weft.sh, script)
      while not io.open(pidfile) do weft.sleep(0.01) end
      weft.sleep(0.05)
      t:cancel()
      return t:await()
    end)
    assert.is_false(ok)
    assert.equal("Cancelled", err.kind)
    assert.is_true(gone(read_pid(pidfile)), "grandchild sleep survived")
  end)

  it("sends KILL after the grace period when TERM is ignored", function()
    local t0 = weft.run(weft.now)
    local ok, err = pcall(weft.run, weft.sh, "trap '' TERM; sleep 100 & wait", { timeout = 0.1, grace = 0.3 })
    local took = weft.run(weft.now) - t0
    assert.is_false(ok)
    assert.equal(9, err.signal)
    assert.is_true(took >= 0.35 and took < 3, "took " .. took)
  end)

  it("runs processes concurrently under a semaphore limit", function()
    local running, peak = 0, 0
    local took = weft.run(function()
      local sem, t0 = weft.semaphore(2), weft.now()
      local tasks = {}
      for i = 1, 6 do
        tasks[i] = weft.spawn(function()
          sem:with(function()
            running = running + 1
            peak = math.max(peak, running)
            weft.sh "sleep 0.2"
            running = running - 1
          end)
        end)
      end
      for _, t in ipairs(tasks) do t:await() end
      return weft.now() - t0
    end)
    assert.equal(2, peak)
    assert.is_true(took >= 0.6 and took < 3, "took " .. took)
  end)
end)

-- Defect 6 of issue 14: a grandchild in its own session keeps the output
-- pipes open; a timeout or cancel must not wait for it once the child it
-- started is reaped. Tried: timeout, cancel, SIGTERM to the CLI.
describe("a detached grandchild", function()
  local pidfile = os.tmpname()
  local detach = "setsid sh -c 'echo $$ > " .. pidfile .. "; exec sleep 8'"

  local function kill_grandchild()
    local f = io.open(pidfile)
    local pid = f and tonumber(f:read("l"))
    if f then f:close() end
    os.remove(pidfile)
    if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
    return pid
  end

  after_each(kill_grandchild)

  it("does not hold up a timeout", function()
    local took, ok, err = weft.run(function()
      local t0 = weft.now()
      local ok, err = pcall(weft.sh, detach, { timeout = 0.3 })
      return weft.now() - t0, ok, err
    end)
    assert.is_false(ok)
    assert.is_true(err.timeout)
    assert.is_true(took < 2, "took " .. took)
  end)

  it("does not hold up a cancel", function()
    local took, err = weft.run(function()
      local t0 = weft.now()
      local t = weft.spawn(weft.sh, detach .. "; sleep 8")
      while not io.open(pidfile) do weft.sleep(0.01) end
      t:cancel()
      local _, e = pcall(t.await, t)
      return weft.now() - t0, e
    end)
    assert.equal("Cancelled", err.kind)
    assert.is_true(took < 2, "took " .. took)
  end)

  it("does not hold up the CLI ended by SIGTERM", function()
    local took, res = weft.run(function()
      local p = weft.process({ os.getenv("WEFT_BIN") or "build/weft", "-e",
        ("weft.sh(%q)"):format(detach .. "; sleep 8") }, { stdout = "null", stderr = "null" })
      while not io.open(pidfile) do weft.sleep(0.01) end
      local t0 = weft.now()
      weft.uv.kill(p.pid, "sigterm")
      local r = p:wait()
      return weft.now() - t0, r
    end)
    assert.equal(143, res.code)
    assert.is_true(took < 2, "took " .. took)
  end)
end)

-- Defect 10 of issue 14: what cannot start is a ProcessError before
-- anything runs, blaming the right thing. Tried: a file without the x bit
-- (by path and through PATH), a binary the kernel refuses, a directory, a
-- missing cwd and a cwd that is a file, through weft.exec and weft.process.
describe("spawn errors", function()
  local dir
  before_each(function()
    dir = weft.run(weft.fs.tempdir, "weft-spawn-spec-")
    local function put(name, data, mode)
      local f = assert(io.open(dir .. "/" .. name, "wb")); f:write(data); f:close()
      os.execute(("chmod %s %s/%s"):format(mode, dir, name))
    end
    put("noexec.sh", "#!/bin/sh\necho ran\n", "644")
    put("badelf", "\127ELF\2\1\1\0garbage\0\0\0", "755")
    put("badelf2", "\127ELFgarbage", "755")
    put("plain.sh", "echo plain-ran\n", "755")
  end)
  after_each(function() os.execute("rm -rf " .. dir) end)

  local function spawn_error(argv, opts)
    local ok, err = pcall(weft.run, weft.exec, argv, opts)
    assert.is_false(ok, "it ran")
    assert.equal("ProcessError", err.kind, tostring(err))
    local ok2, err2 = pcall(weft.run, function()
      local p = weft.process(argv, opts)
      return p:wait()
    end)
    assert.is_false(ok2, "weft.process gave a running handle")
    assert.equal(err.errno, err2.errno)
    return err
  end

  it("a file without execute permission is EACCES", function()
    local err = spawn_error({ dir .. "/noexec.sh" })
    assert.equal("EACCES", err.errno)
    err = spawn_error({ "noexec.sh" }, { env = { PATH = dir } })
    assert.equal("EACCES", err.errno)
  end)

  it("a binary the kernel cannot run is ENOEXEC, not a shell's 127", function()
    local err = spawn_error({ dir .. "/badelf" })
    assert.equal("ENOEXEC", err.errno)
    assert.matches("badelf", err.message)
    assert.equal("ENOEXEC", spawn_error({ dir .. "/badelf2" }).errno)
  end)

  it("a directory is EACCES", function()
    assert.equal("EACCES", spawn_error({ dir }).errno)
  end)

  it("a missing cwd is blamed, not the program", function()
    local err = spawn_error({ "ls" }, { cwd = dir .. "/missing" })
    assert.equal("ENOENT", err.errno)
    assert.matches("missing", err.message)
    assert.equal(dir .. "/missing", err.cwd)
    err = spawn_error({ "ls" }, { cwd = dir .. "/badelf" })
    assert.equal("ENOTDIR", err.errno)
    assert.equal(dir .. "/badelf", err.cwd)
  end)

  it("an executable script without #! still runs through /bin/sh", function()
    local r = weft.run(weft.exec, { dir .. "/plain.sh" })
    assert.equal("plain-ran\n", r.stdout)
  end)
end)

-- Issues 15 and 18: a failed command says why in its message, not only in
-- err.stderr. Tried: one line, many lines, a very long line, no stderr, a
-- timeout, stderr not captured.
describe("ProcessError messages", function()
  local function message(cmd, opts)
    local ok, err = pcall(weft.run, weft.sh, cmd, opts)
    assert.is_false(ok)
    return err.message, err
  end

  it("carry the exit code and the program's own message", function()
    local msg, err = message("ls /nonexistent-weft-dir")
    assert.matches("exited with code 2", msg, 1, true)
    assert.matches("/nonexistent-weft-dir", msg, 1, true)
    assert.matches("No such file", msg, 1, true)
    assert.matches("No such file", err.stderr, 1, true)
  end)

  it("keep only the last few lines, bounded in length", function()
    local msg, err = message("for i in $(seq 1 50); do echo line$i >&2; done; exit 1")
    assert.matches("line50", msg, 1, true)
    assert.not_matches("line40\n", msg, 1, true)
    assert.matches("line1\n", err.stderr, 1, true)
    msg = message("head -c 100000 /dev/zero | tr '\\0' x >&2; exit 1")
    assert.is_true(#msg < 1000, "message of " .. #msg .. " bytes")
  end)

  it("say nothing more when stderr is empty or not captured", function()
    local msg = message("exit 3")
    assert.matches("exited with code 3$", msg)
    msg = message("echo oops >&2; exit 3", { stderr = "null" })
    assert.matches("exited with code 3$", msg)
  end)

  it("on a timeout too", function()
    local msg = message("echo started-$((1+1)) >&2; sleep 10", { timeout = 0.3 })
    assert.matches("timed out", msg, 1, true)
    assert.matches("started-2", msg, 1, true)
  end)
end)
