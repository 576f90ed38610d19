-- weft.process (API.md "Processes"): a running process whose pipes are
-- weft streams: sort and bc driven through pipes, partial and cancelled
-- reads, wait, kill, close and <close>, cancellation of wait reaping the
-- process group, stdio modes, cwd/env, bad arguments.
local weft = require "weft"

local proc = require "support.proc"
local alive, listed = proc.alive, proc.listed

describe("weft.process", function()
  it("drives sort through its pipes", function()
    local out = weft.run(function()
      local p <close> = weft.process({ "sort" })
      p.stdin:write("pear\n", "apple\n", "fig\n")
      p.stdin:shutdown()
      local all = p.stdout:read_all()
      assert.same({ code = 0 }, p:wait())
      return all
    end)
    assert.equal("apple\nfig\npear\n", out)
  end)

  it("talks to bc line by line while it runs", function()
    local answers = weft.run(function()
      local p <close> = weft.process({ "bc", "-q" })
      local got = {}
      for _, expr in ipairs({ "2+3", "6*7", "2^10" }) do
        p.stdin:write(expr, "\n")
        got[#got + 1] = p.stdout:read_line()
      end
      p.stdin:write("quit\n")
      assert.equal(0, p:wait().code)
      return got
    end)
    assert.same({ "5", "42", "1024" }, answers)
  end)

  it("returns partial reads of at most n bytes", function()
    local parts = weft.run(function()
      local p <close> = weft.process({ "printf", "abcdef" })
      assert.equal(0, p:wait().code)
      return { p.stdout:read(2), p.stdout:read(3), p.stdout:read(10), p.stdout:read() }
    end)
    assert.same({ "ab", "cde", "f" }, parts)
  end)

  it("has a pid and a stream per pipe", function()
    weft.run(function()
      local p <close> = weft.process({ "true" }, { stderr = "null" })
      assert.is_true(math.type(p.pid) == "integer" and p.pid > 0)
      assert.matches("^weft.stream", tostring(p.stdin))
      assert.matches("^weft.stream", tostring(p.stdout))
      assert.is_nil(p.stderr)
      p:wait()
    end)
  end)

  it("reads stderr as its own stream", function()
    local r = weft.run(function()
      local p <close> = weft.process({ "sh", "-c", "echo out; echo err >&2" })
      return { p.stdout:read_all(), p.stderr:read_all() }
    end)
    assert.same({ "out\n", "err\n" }, r)
  end)

  it("reports exit codes as weft.exec does", function()
    local r = weft.run(function()
      local p <close> = weft.process({ "sh", "-c", "exit 3" })
      return p:wait()
    end)
    assert.same({ code = 3 }, r)
  end)

  it("returns the same result from a second wait", function()
    weft.run(function()
      local p <close> = weft.process({ "sh", "-c", "exit 2" })
      assert.same({ code = 2 }, p:wait())
      assert.same({ code = 2 }, p:wait())
    end)
  end)

  it("lets several tasks wait for the same process", function()
    local codes = weft.run(function()
      local p <close> = weft.process({ "sleep", "0.05" })
      return weft.gather({
        weft.spawn(function() return p:wait().code end),
        weft.spawn(function() return p:wait().code end) })
    end)
    assert.same({ 0, 0 }, codes)
  end)

  it("keeps the bytes a cancelled read had not taken, and the process running", function()
    weft.run(function()
      local p <close> = weft.process({ "sh", "-c", "sleep 0.2; echo late; read x; echo $x" })
      local ok, err = pcall(weft.timeout, 0.05, function() return p.stdout:read_line() end)
      assert.is_false(ok)
      assert.equal("Timeout", err.kind)
      assert.is_true(alive(p.pid))
      assert.equal("late", p.stdout:read_line())
      p.stdin:write("again\n")
      assert.equal("again", p.stdout:read_line())
      assert.equal(0, p:wait().code)
    end)
  end)

  it("kills the process group with a signal", function()
    local r = weft.run(function()
      local p <close> = weft.process({ "sleep", "10" })
      assert.is_true(p:kill("SIGKILL"))
      return p:wait()
    end)
    assert.same({ code = 137, signal = 9 }, r)
  end)

  it("sends SIGTERM by default and returns false once the process has exited", function()
    weft.run(function()
      local p <close> = weft.process({ "sleep", "10" })
      assert.is_true(p:kill())
      assert.same({ code = 143, signal = 15 }, p:wait())
      assert.is_false(p:kill())
    end)
  end)

  it("accepts signal numbers and names without SIG", function()
    weft.run(function()
      local p <close> = weft.process({ "sleep", "10" })
      assert.is_true(p:kill("INT"))
      assert.equal(2, p:wait().signal)
      local q <close> = weft.process({ "sleep", "10" })
      assert.is_true(q:kill(9))
      assert.equal(9, q:wait().signal)
    end)
  end)

  it("terminates a running process on close and reaps it", function()
    local pid = weft.run(function()
      local p = weft.process({ "sleep", "10" })
      local t0 = weft.now()
      p:close()
      assert.is_true(weft.now() - t0 < 2)
      assert.same({ code = 143, signal = 15 }, p:wait())
      return p.pid
    end)
    assert.is_false(listed(pid))
  end)

  it("terminates it when a <close> variable goes out of scope", function()
    local pid = weft.run(function()
      local pid
      do
        local p <close> = weft.process({ "sleep", "10" })
        pid = p.pid
      end
      return pid
    end)
    assert.is_false(listed(pid))
  end)

  it("KILLs after the grace period a process that ignores TERM", function()
    local r = weft.run(function()
      local p = weft.process({ "sh", "-c", "trap '' TERM; echo ready; sleep 10" }, { grace = 0.1 })
      assert.equal("ready", p.stdout:read_line())
      p:close()
      return p:wait()
    end)
    assert.same({ code = 137, signal = 9 }, r)
  end)

  it("terminates and reaps the group when a task waiting on wait() is cancelled", function()
    local pids = weft.run(function()
      local p = weft.process({ "sh", "-c", "sleep 10 & echo $!; wait" })
      local child = tonumber(p.stdout:read_line())
      local t = weft.spawn(function() return p:wait() end)
      weft.sleep(0.05)
      t:cancel()
      local ok, err = pcall(t.await, t)
      assert.is_false(ok)
      assert.equal("Cancelled", err.kind)
      -- reaped before Cancelled was raised: no zombie
      assert.is_false(listed(p.pid))
      p:close()
      return { p.pid, child }
    end)
    assert.is_false(listed(pids[1]))
    for _ = 1, 100 do
      if not alive(pids[2]) then break end
      os.execute("sleep 0.01")
    end
    assert.is_false(alive(pids[2]))
  end)

  it("keeps a run alive while the process runs", function()
    local code = weft.run(function()
      local p <close> = weft.process({ "sleep", "0.1" }, { stdin = "null", stdout = "null" })
      return p:wait().code
    end)
    assert.equal(0, code)
  end)

  it("honours cwd and env", function()
    local out = weft.run(function()
      local p <close> = weft.process({ "sh", "-c", "pwd; echo $WEFT_X" },
        { cwd = "/tmp", env = { WEFT_X = "hello" } })
      return p.stdout:read_all()
    end)
    assert.equal("/tmp\nhello\n", out)
  end)

  it("feeds /dev/null to a \"null\" stdin", function()
    local out = weft.run(function()
      local p <close> = weft.process({ "cat" }, { stdin = "null" })
      assert.is_nil(p.stdin)
      return p.stdout:read_all()
    end)
    assert.equal("", out)
  end)

  it("raises ProcessError for a missing program", function()
    local ok, err = pcall(weft.run, function()
      return weft.process({ "/nonexistent/weft-no-such-program" })
    end)
    assert.is_false(ok)
    assert.equal("ProcessError", err.kind)
    assert.equal(127, err.code)
    assert.equal("ENOENT", err.errno)
  end)

  it("rejects bad arguments", function()
    assert.has_error(function() weft.process("sort") end,
      "bad argument #1 to 'process' (table expected, got string)")
    assert.has_error(function() weft.process({}) end,
      "bad argument #1 to 'process' (argv must hold the program name)")
    assert.has_error(function() weft.process({ "sort" }, { stdout = "capture" }) end,
      "bad option 'stdout' (\"pipe\", \"inherit\" or \"null\" expected, got \"capture\")")
    assert.has_error(function() weft.process({ "sort" }, { cwd = 3 }) end,
      "bad option 'cwd' (string expected, got number)")
    assert.has_error(function() weft.process({ "sort" }, { env = "x" }) end,
      "bad option 'env' (table expected, got string)")
  end)

  it("rejects an unknown signal name", function()
    weft.run(function()
      local p <close> = weft.process({ "sleep", "10" }, { stdout = "null" })
      assert.has_error(function() p:kill("SIGNOPE") end,
        "bad argument #1 to 'kill' (unknown signal 'SIGNOPE')")
    end)
  end)

  it("raises outside a task when waiting", function()
    local p = weft.process({ "sleep", "10" })
    assert.has_error(function() p:wait() end,
      "process:wait: not inside a task (start one with weft.run or weft.spawn)")
    p:close()   -- outside a task: terminates without waiting
    weft.run(function() assert.equal(15, p:wait().signal) end)
  end)
end)
