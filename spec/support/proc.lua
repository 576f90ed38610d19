--- Looking at processes from specs through /proc.
local M = {}

--- Is pid a live process? A zombie waiting for init to reap it is not.
function M.alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  local stat = f:read("a")
  f:close()
  return stat:match("^%d+ %b() (%a)") ~= "Z"
end

--- Does /proc still list pid at all (zombies included)?
function M.listed(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if f then f:close() end
  return f ~= nil
end

--- Waits (up to 2 s) for pid to be gone; returns true when it is.
function M.gone(pid)
  for _ = 1, 200 do
    if not M.alive(pid) then return true end
    os.execute("sleep 0.01")
  end
  return false
end

return M
