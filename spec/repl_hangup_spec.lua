-- The REPL when its terminal goes away (docs/repl.md, after the table of keys): a SIGHUP,
-- or the terminal hanging up under it (tmux kill-session: reads give EIO,
-- and weft gets no SIGHUP when the shell around it ignores it), ends the
-- REPL with status 129 after cancelling its tasks, whether at the prompt or
-- while an entry runs; children it started are killed; a task that swallows
-- its cancellation cannot keep it alive. Also: stdin from /dev/null or from
-- a pipe that closes ends the REPL with 0 and kills its children.
local cli = require "support.cli"
local term = require "support.term"
local proc = require "support.proc"

-- weft has exited when these run: its children were killed by then
-- (a zombie left for the namespace's first process to reap does not count)
local gone, running = proc.gone, proc.alive

describe("weft REPL when its terminal goes away", function()
  if not term.have_tmux() then
    pending("tmux is not installed")
    return
  end
  local t, child

  after_each(function()
    if t then t:close() end
    if child and cli.alive(child) then os.execute("kill -KILL " .. child) end
    t, child = nil, nil
  end)

  -- Starts a child process from the REPL and returns its pid.
  local function start_child()
    t:type("p = weft.process{'sleep', '100'} print('child', p.pid)")
    t:keys("Enter")
    assert.is_true(t:wait_for("child%s+%d+\n> ?$"), t:screen())
    child = tonumber(t:screen():match("child%s+(%d+)"))
    assert.is_true(running(child))
  end

  it("SIGHUP while an entry runs: tasks cancelled, child killed, status 129", function()
    t = term.start()
    start_child()
    t:type("bg = weft.spawn(function() weft.sleep(100) end)")
    t:keys("Enter")
    t:type("weft.sleep(100)")
    t:keys("Enter")
    cli.sleep(0.3)
    os.execute("kill -HUP " .. t.pid)
    assert.equal(129, t:exit_code(10), t:screen())
    assert.is_true(gone(child), "child left running")
  end)

  it("SIGHUP at the prompt ends it with 129", function()
    t = term.start()
    os.execute("kill -HUP " .. t.pid)
    assert.equal(129, t:exit_code(10), t:screen())
  end)

  it("the terminal hanging up at the prompt ends it with 129, child killed", function()
    t = term.start(nil, { ignore_hup = true })
    start_child()
    t:hang_up()
    assert.is_true(t:gone(10), "weft still runs after its terminal hung up")
    assert.equal(129, t:exit_code())
    assert.is_true(gone(child), "child left running")
  end)

  it("the terminal hanging up while an entry runs ends it with 129, child killed", function()
    t = term.start(nil, { ignore_hup = true })
    start_child()
    t:type("weft.sleep(100)")
    t:keys("Enter")
    cli.sleep(0.3)
    t:hang_up()
    assert.is_true(t:gone(10), "weft still runs after its terminal hung up")
    assert.equal(129, t:exit_code())
    assert.is_true(gone(child), "child left running")
  end)

  it("a task that swallows its cancellation does not keep it alive after a hang-up", function()
    t = term.start(nil, { ignore_hup = true })
    start_child()
    t:type("weft.spawn(function() while true do pcall(weft.sleep, 1) end end)")
    t:keys("Enter")
    assert.is_true(t:wait_for("task.*\n> ?$"), t:screen())
    t:hang_up()
    assert.is_true(t:gone(15), "weft still runs after its terminal hung up")
    assert.equal(129, t:exit_code())
    assert.is_true(gone(child), "child left running")
  end)
end)

describe("weft REPL with stdin that ends", function()
  it("stdin /dev/null: ends at once with 0", function()
    local h = cli.start({ "-i" })   -- cli.start gives it </dev/null
    assert.equal(0, h.wait(10))
    assert.equal("", h.stderr())
  end)

  it("a pipe that closes: the entries run, then children are killed, status 0", function()
    local t0 = require("weft").now()
    local r = cli.run({ "-i" }, { stdin = "p = weft.process{'sleep', '100'} print(p.pid)\n"
      .. "weft.spawn(function() weft.sleep(100) end)\n" })
    assert.equal(0, r.code, r.stderr)
    local pid = tonumber(r.stdout:match("\n(%d+)\n"))
    assert.is_truthy(pid, r.stdout)
    assert.is_true(gone(pid), "child left running")
    assert.matches("cancelling", r.stderr)
    assert.is_true(require("weft").now() - t0 < 10, "it waited for the child")
  end)
end)
