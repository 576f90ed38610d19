-- The live area of `weft run` on a real terminal (tmux): one line per
-- running task with its time and last output line, the status line with the
-- run's elapsed time, "stopping" after Ctrl-C, and a resize during the run.
local cli = require "support.cli"

local FIX = "spec/fixtures/run/"
local has_tmux = os.execute("command -v tmux > /dev/null")

local function tmux(sock, args)
  local p = io.popen(("tmux -L %s %s 2>/dev/null"):format(sock, args))
  local s = p:read("a")
  p:close()
  return s
end

-- Starts `weft run ARGS` in a detached tmux session; returns its socket.
local function start(args, env, rows)
  local sock = ("weft-run-%d-%d"):format(os.time(), math.random(1e6))
  local cmd = ("env -u CI -u GITHUB_ACTIONS %s %s run %s; echo EXIT=$?; sleep 30"):format(env or "",
    cli.bin, args)
  os.execute(("tmux -L %s new-session -d -x 120 -y %d %s"):format(sock, rows or 30, cli.quote(cmd)))
  return sock
end

local function wait_screen(sock, pattern, secs)
  local screen
  for _ = 1, (secs or 10) * 20 do
    screen = tmux(sock, "capture-pane -p")
    if screen:match(pattern) then return screen, true end
    os.execute("sleep 0.05")
  end
  return screen, false
end

local function secs(t)
  local m, s = t:match("^(%d+)m([%d.]+)s$")
  if m then return tonumber(m) * 60 + tonumber(s) end
  return tonumber(t:match("^([%d.]+)s$"))
end

describe("weft run on a terminal (tmux)", function()
  local sock
  before_each(function()
    if not has_tmux then pending("tmux is not installed") end
  end)
  after_each(function()
    if sock then
      -- end weft itself first (it outlives a killed tmux by its grace period)
      tmux(sock, "send-keys C-c")
      wait_screen(sock, "EXIT=%d+", 10)
      os.execute(("tmux -L %s kill-server 2>/dev/null"):format(sock))
    end
    sock = nil
  end)

  it("shows each running task's time and last line above done/total and the run's time", function()
    sock = start("-f " .. FIX .. "live.lua -j 2")
    local screen, ok = wait_screen(sock, "lint +[%d.]+s  checking src.-\n%[1/4%] 2 running  [%d.]+s")
    assert.is_true(ok, screen)
    screen = wait_screen(sock, "build +0%.[5-9]%ds")
    assert.matches("  build +[%d.]+s  compiling foo%.c *\n  lint +[%d.]+s  checking src *\n"
      .. "%[1/4%] 2 running  [%d.]+s", screen)
    local age = secs(screen:match("build +([%d.]+s)"))
    local run_time = secs(screen:match("running  ([%d.]+s)"))
    assert.is_true(run_time >= age + 0.9, ("run %.2f s, task %.2f s"):format(run_time, age))
  end)

  it("says it is stopping after Ctrl-C, then prints the summary and exits 130", function()
    sock = start("-f " .. FIX .. "live.lua -j 2")
    -- both tasks have printed, so their shells have set the TERM trap
    local screen, ok = wait_screen(sock, "compiling foo%.c.*checking src.*2 running")
    assert.is_true(ok, screen)
    tmux(sock, "send-keys C-c")
    screen, ok = wait_screen(sock, "stopping: waiting for 2 tasks %(TERM sent%)  [%d.]+s", 3)
    assert.is_true(ok, screen)
    local t1 = secs(screen:match("TERM sent%)  ([%d.]+s)"))
    os.execute("sleep 0.3")
    local later = tmux(sock, "capture-pane -p")
    local t2 = secs(later:match("TERM sent%)  ([%d.]+s)") or "0s")
    assert.is_true(t2 > t1, "the area stopped updating while stopping:\n" .. later)
    screen, ok = wait_screen(sock, "EXIT=%d+", 10)
    assert.is_true(ok, screen)
    assert.matches("EXIT=130", screen, 1, true)
    assert.matches("interrupted", screen, 1, true)
  end)

  it("fits the area to the terminal after a resize", function()
    sock = start("-f " .. FIX .. "live.lua -j 2", "LONG=1")
    local screen, ok = wait_screen(sock, "  build +[%d.]+s  compiling foo%.c y+%.%.%.\n")
    assert.is_true(ok, screen)
    assert.matches("  build +[%d.]+s  compiling foo%.c y+%.%.%.\n", screen)   -- 120 columns
    tmux(sock, "resize-window -x 60")
    screen, ok = wait_screen(sock, "\n  build +[%d.]+s  compiling foo%.c y+%.%.%.\n  lint", 3)
    assert.is_true(ok, screen)
    local area = screen:match("\n(  build.-running  [%d.]+s)")
    assert.is_truthy(area, screen)
    local rows = 0
    for row in area:gmatch("[^\n]+") do
      rows = rows + 1
      assert.is_true(#row < 60, "row too long after resize: " .. row)
    end
    assert.equal(3, rows, area)   -- no wrapped line
    local _, statuses = screen:gsub("running  ", "")
    assert.equal(1, statuses, screen)   -- no leftover of the wide area
  end)

  it("colours task names on a terminal, and not with NO_COLOR", function()
    sock = start("-f " .. FIX .. "live.lua -j 2")
    local _, ok = wait_screen(sock, "build +| compiling foo%.c")
    assert.is_true(ok)
    local coloured = tmux(sock, "capture-pane -p -e")
    assert.matches("\27%[%d+mbuild", coloured)
    tmux(sock, "send-keys C-c")
    wait_screen(sock, "EXIT=%d+", 10)
    os.execute(("tmux -L %s kill-server 2>/dev/null"):format(sock))
    sock = start("-f " .. FIX .. "live.lua -j 2", "NO_COLOR=1")
    _, ok = wait_screen(sock, "build +| compiling foo%.c")
    assert.is_true(ok)
    local plain = tmux(sock, "capture-pane -p -e")
    assert.not_matches("\27%[[%d;]*m", plain)
    assert.matches("build  | compiling foo.c", plain, 1, true)
  end)

  it("takes at most a third of a short terminal's rows", function()
    sock = start("-f " .. FIX .. "four.lua -j 4", nil, 10)
    local screen, ok = wait_screen(sock, "%[0/4%] 4 running %(3 shown%)")
    assert.is_true(ok, screen)
    local _, tasks = screen:gsub("\n  t%d +[%d.]+s  working", "")
    assert.equal(3, tasks, screen)
  end)

  it("draws plain lines with TERM=dumb", function()
    sock = start("-f " .. FIX .. "live.lua -j 2", "TERM=dumb")
    local screen, ok = wait_screen(sock, "%] start build")
    assert.is_true(ok, screen)
    assert.not_matches("running  ", screen, 1, true)
    tmux(sock, "send-keys C-c")
    wait_screen(sock, "EXIT=", 10)
  end)
end)
