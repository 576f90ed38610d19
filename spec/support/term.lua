--- A real terminal for specs: build/weft in a detached tmux session on a
-- tmux server of its own (its own socket), driven by keys and read back
-- from the screen. Used by the REPL specs.
local cli = require "support.cli"

local M = {}

function M.have_tmux()
  return os.execute("command -v tmux >/dev/null 2>&1") == true
end

local Term = {}
Term.__index = Term

--- Starts `weft ARGS` (a string of shell words, "" for the REPL) in a tmux
-- session, after the VAR=value words in `env`, and waits for its prompt.
-- The weft pid is `t.pid`; its exit status goes in a file (`t:exit_code()`).
-- `opts.ignore_hup`: the shell around weft (the session leader) ignores
-- SIGHUP, so that when the session is killed weft only sees its terminal
-- hang up (EIO), never a SIGHUP, and the shell lives to record the status.
function M.start(env, opts)
  opts = opts or {}
  local t = setmetatable({ sock = "weftspec" .. tostring(os.time()) .. math.random(1e6),
    done = os.tmpname(), pidfile = os.tmpname() }, Term)
  os.remove(t.done)
  os.remove(t.pidfile)
  local inner = ("echo $$ > %s; exec %s %s"):format(t.pidfile, cli.quote(cli.bin), opts.args or "")
  -- the pane stays a while after weft exits, to be read (not when the
  -- shell ignores SIGHUP: it would outlive a hang-up)
  local cmd = ("%s%s sh -c %s; echo $? > %s%s"):format(opts.ignore_hup and "trap '' HUP; " or "",
    env or "", cli.quote(inner), t.done, opts.ignore_hup and "" or "; sleep 60")
  assert(os.execute(("tmux -L %s new-session -d -s w -x %d -y %d %s"):format(t.sock,
    opts.width or 100, opts.height or 30, cli.quote(cmd))))
  for _ = 1, 100 do
    local s = cli.read_file(t.pidfile)
    if s and s:match("%d+") then t.pid = tonumber(s:match("%d+")) break end
    cli.sleep(0.05)
  end
  assert(t:wait_for(opts.ready or "> ?$"), "no prompt:\n" .. t:screen())
  return t
end

function Term:keys(...)
  local parts = {}
  for i, k in ipairs({ ... }) do parts[i] = cli.quote(k) end
  os.execute(("tmux -L %s send-keys -t w %s"):format(self.sock, table.concat(parts, " ")))
end

function Term:type(text)   -- literally, no key names
  os.execute(("tmux -L %s send-keys -t w -l %s"):format(self.sock, cli.quote(text)))
end

function Term:screen()
  local p = io.popen(("tmux -L %s capture-pane -p -t w 2>/dev/null"):format(self.sock))
  local s = p:read("a")
  p:close()
  return (s:gsub("\n+$", ""))
end

--- Waits until the screen matches; returns true, or false after 'seconds'.
function Term:wait_for(pattern, seconds)
  for _ = 1, (seconds or 5) * 20 do
    if self:screen():find(pattern) then return true end
    cli.sleep(0.05)
  end
  return false
end

--- weft's exit status, or nil if it has not exited within 'seconds'.
function Term:exit_code(seconds)
  for _ = 1, (seconds or 5) * 20 do
    local s = cli.read_file(self.done)
    if s and s:match("%d+") then return tonumber(s:match("%d+")) end
    cli.sleep(0.05)
  end
end

--- Resizes the terminal (the window of the session).
function Term:resize(width, height)
  os.execute(("tmux -L %s resize-window -t w -x %d -y %d"):format(self.sock, width, height))
end

--- Kills the session: its terminal hangs up, as when a terminal window is closed.
function Term:hang_up()
  os.execute(("tmux -L %s kill-session -t w 2>/dev/null"):format(self.sock))
end

--- Whether weft's process is gone, waiting up to 'seconds'.
function Term:gone(seconds)
  for _ = 1, (seconds or 5) * 20 do
    if not cli.alive(self.pid) then return true end
    cli.sleep(0.05)
  end
  return false
end

--- Kills the tmux server and, if it is still there, weft (by its pid).
function Term:close()
  os.execute(("tmux -L %s kill-server 2>/dev/null"):format(self.sock))
  if self.pid and cli.alive(self.pid) then
    os.execute(("kill -KILL %d 2>/dev/null"):format(self.pid))
  end
  os.remove(self.done)
  os.remove(self.pidfile)
end

return M
