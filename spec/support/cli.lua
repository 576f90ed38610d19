--- Running build/weft as a child process from specs: capture its stdout,
-- stderr and exit code, or start it in the background and signal it.
local M = {}

M.bin = os.getenv("WEFT_BIN") or "build/weft"

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.quote = shell_quote

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
M.read_file = read_file

local function tmpname()
  local p = os.tmpname()
  return p
end

--- Runs `weft ARGS...` (a list) to completion. `opts.stdin` is fed to it,
-- `opts.env` is a string of VAR=value prefixes.
-- @return {code=, stdout=, stderr=}
function M.run(args, opts)
  opts = opts or {}
  local out, err, inp = tmpname(), tmpname(), tmpname()
  local f = assert(io.open(inp, "wb"))
  f:write(opts.stdin or "")
  f:close()
  local parts = {}
  for i, a in ipairs(args) do parts[i] = shell_quote(a) end
  local cmd = ("%s %s %s <%s >%s 2>%s"):format(opts.env or "", shell_quote(M.bin),
    table.concat(parts, " "), inp, out, err)
  local _, _, code = os.execute(cmd)
  local r = { code = code, stdout = read_file(out), stderr = read_file(err) }
  os.remove(out)
  os.remove(err)
  os.remove(inp)
  return r
end

--- Runs `weft run WORDS` (a string split at spaces) as CI would, with
-- plain progress and no CI group markers; `env` adds VAR=value words.
function M.weft_run(words, env)
  local a = { "run" }
  for w in words:gmatch("%S+") do a[#a + 1] = w end
  return M.run(a, { env = "env -u GITHUB_ACTIONS -u GITLAB_CI CI=true " .. (env or "") })
end

local function sleep(s)
  os.execute("sleep " .. s)
end
M.sleep = sleep

local started = {}   -- handles of M.start whose process may still run

--- Stops (TERM, then KILL after a second) every process M.start started
-- that still runs; spec/helper.lua calls it after each test, so a failed
-- assertion between start and wait leaves nothing behind.
function M.stop_all()
  for h in pairs(started) do
    started[h] = nil
    if h.pid and M.alive(h.pid) then
      h.signal("TERM")
      for _ = 1, 20 do
        if not M.alive(h.pid) then break end
        sleep(0.05)
      end
      h.signal("KILL")
    end
    h.cleanup()
  end
end

--- Starts `weft ARGS...` in the background. Returns a handle with
-- `pid`, `wait_output(pattern, seconds)`, `signal(name)`, `wait(seconds)`.
function M.start(args)
  local h = { out = tmpname(), err = tmpname(), pidfile = tmpname(), codefile = tmpname() }
  os.remove(h.codefile)
  local parts = {}
  for i, a in ipairs(args) do parts[i] = shell_quote(a) end
  local inner = ("echo $$ > %s; exec %s %s </dev/null >%s 2>%s"):format(h.pidfile,
    shell_quote(M.bin), table.concat(parts, " "), h.out, h.err)
  os.execute(("(sh -c %s; echo $? > %s) &"):format(shell_quote(inner), h.codefile))
  for _ = 1, 200 do
    local pid = read_file(h.pidfile)
    if pid and pid:match("%d+") then h.pid = tonumber(pid:match("%d+")) break end
    sleep(0.02)
  end
  function h.stdout() return read_file(h.out) or "" end
  function h.stderr() return read_file(h.err) or "" end
  function h.wait_output(pattern, seconds)
    for _ = 1, (seconds or 10) * 20 do
      if h.stdout():find(pattern) then return true end
      sleep(0.05)
    end
    return false
  end
  function h.signal(name)
    os.execute(("kill -%s %d 2>/dev/null"):format(name, h.pid))
  end
  started[h] = true
  --- Waits for the exit; returns the exit code (nil on timeout, after killing it).
  function h.wait(seconds)
    for _ = 1, (seconds or 10) * 20 do
      local code = read_file(h.codefile)
      if code and code:match("%d+") then
        h.code = tonumber(code:match("%d+"))
        return h.code
      end
      sleep(0.05)
    end
    os.execute(("kill -KILL %d 2>/dev/null"):format(h.pid))
    return nil
  end
  function h.cleanup()
    for _, p in ipairs({ h.out, h.err, h.pidfile, h.codefile }) do os.remove(p) end
  end
  return h
end

--- Is a process with this pid alive?
function M.alive(pid)
  return os.execute(("kill -0 %d 2>/dev/null"):format(pid)) == true
end

return M
