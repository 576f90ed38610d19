-- Runs a command (the spec run) as the first process of its own PID
-- namespace, then lists every process the run left behind. scripts/test.sh
-- starts it under `unshare --pid --fork --mount-proc`, so whatever a spec
-- started and did not stop (a server, a sleep, a daemon) is still here,
-- reparented to this process, whatever session or group it put itself in;
-- when this process exits the kernel kills the rest of the namespace.
-- Usage: lua5.4 scripts/reaper.lua CMD ARGS...   Exits 3 when something
-- outlived the run (after printing it), else with the command's status.
local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local parts = {}
for i, a in ipairs(arg) do parts[i] = quote(a) end
local ok, how, code = os.execute(table.concat(parts, " "))
local status = ok and 0 or (how == "exit" and code or 128 + code)

local function read(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- Live processes other than this one (zombies are done: nobody reaps them
-- here). The `ls` that lists /proc is gone by the time its entries are read.
local function survivors()
  local p = io.popen("ls /proc")
  local pids = {}
  for name in p:lines() do
    if name:match("^%d+$") and name ~= "1" then pids[#pids + 1] = name end
  end
  p:close()
  local left = {}
  for _, pid in ipairs(pids) do
    local stat = read("/proc/" .. pid .. "/stat")
    local state, ppid = (stat or ""):match("^%d+ %b() (%a) (%d+)")
    if state and state ~= "Z" then
      local cmd = (read("/proc/" .. pid .. "/cmdline") or ""):gsub("%z", " ")
      local wchan = read("/proc/" .. pid .. "/wchan") or "?"
      left[#left + 1] = ("%s (parent %s, %s in %s) %s"):format(pid, ppid, state, wchan, cmd)
    end
  end
  return left
end

-- Give what ends on its own (weft's guard process sees its parent go) a
-- moment before calling it a survivor.
local left
for _ = 1, 30 do
  left = survivors()
  if #left == 0 then break end
  os.execute("sleep 0.1")
end
if #left > 0 then
  io.stderr:write(("scripts/test.sh: %d process(es) outlived the specs:\n  %s\n")
    :format(#left, table.concat(left, "\n  ")))
  os.exit(3)
end
os.exit(status)
