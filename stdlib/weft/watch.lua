--- `weft run --watch`: run, wait for a change to a source of the selected
-- tasks (or to the Weftfile), run again what is out of date; Ctrl-C ends it.
--
-- One libuv fs_event per directory that holds a source (for a glob, its
-- fixed prefix and every directory below it, found by walking), armed for
-- the whole watch, so a change made while a run is in progress is queued and
-- never missed. Changes are gathered for DEBOUNCE seconds after the first
-- one. A running task that read a changed file is cancelled (its processes
-- are killed as on Ctrl-C) and its body runs again at once; any other
-- change starts a new run when this one ends (what is up to date is not
-- redone). A change to the Weftfile reloads it and starts over; one that no
-- longer loads is reported and the last good one is kept. Files the
-- pipeline generates are not reacted to.
--
-- Interface (weft.cli): `watch.run(P, opts)` inside a task, where
-- opts = { targets, run = function(P) -> run (runs and reports once),
-- reload = function() -> P (raises when the file is broken), err = file }.
-- @module weft.watch
local weft = require "weft"
local incremental = require "weft.incremental"

local M = {}

M.DEBOUNCE = 0.1

local uv = require "weft.lazy_uv"   -- luv opened on first use

local function dirname(p) return p:match("^(.*)/[^/]*$") or "." end

local function glob_prefix(p)
  local fixed = {}
  for seg in p:gmatch("[^/]+") do
    if seg:find("[%*%?%[]") then break end
    fixed[#fixed + 1] = seg
  end
  local dir = table.concat(fixed, "/")
  if p:sub(1, 1) == "/" then dir = "/" .. dir end
  return dir == "" and "." or dir
end

local function walk(dir, out)
  out[dir] = true
  local req = uv.fs_scandir(dir)
  if not req then return end
  while true do
    local name, kind = uv.fs_scandir_next(req)
    if not name then break end
    if kind == "directory" and name:sub(1, 1) ~= "." then walk(dir .. "/" .. name, out) end
  end
end

local as_list = incremental.as_list

--- What a change must touch to matter: exact paths, glob patterns, the
-- directories to watch, and the generated files to ignore.
function M.interest(P, list, incr)
  local paths, patterns, dirs, generated = {}, {}, {}, {}
  paths[incremental.normalize(P.file)] = "weftfile"
  dirs[dirname(incremental.normalize(P.file))] = true
  for _, rec in ipairs(P.tasks) do
    for _, g in ipairs(incremental.literal_generates(rec)) do generated[g] = true end
  end
  for _, rec in ipairs(list) do
    for _, s in ipairs(as_list(rec.sources)) do
      s = incremental.normalize(s)
      if s:find("[%*%?%[]") then
        patterns[#patterns + 1] = s
        walk(glob_prefix(s), dirs)
      else
        paths[s] = paths[s] or {}
        dirs[dirname(s)] = true
      end
    end
    for _, p in ipairs(incr and incr:inputs_of(rec) or {}) do
      if type(paths[p]) ~= "string" then paths[p] = true end
      dirs[dirname(p)] = true
    end
  end
  return { paths = paths, patterns = patterns, dirs = dirs, generated = generated }
end

-- Does the changed path matter? "weftfile", "source" or nil.
local function classify(interest, path)
  path = incremental.normalize(path)
  local v = interest.paths[path]
  if v == "weftfile" then return "weftfile" end
  if interest.generated[path] then return nil end
  if v then return "source" end
  for _, pattern in ipairs(interest.patterns) do   -- a new file a glob now matches
    for _, p in ipairs(incremental.glob(pattern)) do
      if p == path then return "source" end
    end
  end
  return nil
end

local Watch = {}
Watch.__index = Watch

function Watch:arm(dirs)
  for dir in pairs(dirs) do
    if not self.handles[dir] then
      local ev = uv.new_fs_event()
      local ok = ev:start(dir, {}, function(err, name)
        if err or not name then return end
        self.q:put_nowait({ change = dir == "." and name or (dir .. "/" .. name) })
      end)
      if ok then self.handles[dir] = ev else ev:close() end
    end
  end
end

function Watch:close()
  for dir, ev in pairs(self.handles) do
    ev:close()
    self.handles[dir] = nil
  end
end

-- Gathers the changes that arrive within DEBOUNCE of `first`; a "done"
-- seen meanwhile is remembered.
function Watch:gather(first)
  local changed = { [first] = true }
  weft.sleep(M.DEBOUNCE)
  while true do
    local item = self.q:get_nowait()
    if not item then break end
    if item.done then self.done = item.done else changed[item.change] = true end
  end
  return changed
end

function Watch:start_run()
  local P, q = self.P, self.q
  self.done = nil
  self.running = weft.spawn(function()
    local ok, run = pcall(self.opts.run, P)
    q:put_nowait({ done = { ok = ok, run = run } })
  end)
  self.running.name = "weft-watch-run"
end

-- Restarts the running tasks that read a changed file (their processes
-- are killed as on Ctrl-C, then the body runs again, see weft.pipeline);
-- true when some changed file is not read by a running task.
local function restart_readers(P, changed, err)
  local read_by_running = {}
  for _, rec in ipairs(P.tasks) do
    if rec.status == "running" and rec.task then
      local hit
      for _, e in ipairs(rec.incr and rec.incr.inputs or {}) do
        if changed[e[1]] then hit = e[1]; read_by_running[e[1]] = true end
      end
      if hit then
        err:write(("weft run --watch: %s changed: restarting %s\n"):format(hit, rec.name))
        rec.restart = true
        rec.task:cancel("a source changed")
      end
    end
  end
  for path in pairs(changed) do
    if not read_by_running[path] then return true end
  end
  return false
end

function Watch:reload()
  local ok, P = pcall(self.opts.reload)
  if ok then
    self.P = P
    return true
  end
  self.err:write("weft run --watch: ", tostring(type(P) == "table" and P.message or P),
    "\nweft run --watch: keeping the last good pipeline\n")
  self.err:flush()
  return false
end

function Watch:finished(done)
  self.running = nil
  local run = done.run
  if not done.ok and not (type(run) == "table" and run.kind == "Cancelled") then
    self.err:write("weft run --watch: ", tostring(type(run) == "table" and run.message or run), "\n")
  end
  local list = self.P:select(self.opts.targets)
  self.interest = M.interest(self.P, list, type(run) == "table" and run.incr or nil)
  self:arm(self.interest.dirs)
  local n = 0
  for _ in pairs(self.handles) do n = n + 1 end
  self.err:write(("weft run --watch: watching %d director%s; Ctrl-C to stop\n"):format(n,
    n == 1 and "y" or "ies"))
  self.err:flush()
end

function Watch:loop()
  self:finished({ ok = true })   -- arm before the first run: nothing is missed
  self:start_run()
  local rerun = false
  while true do
    local item = self.q:get()
    if item.done then
      self:finished(item.done)
      if rerun then rerun = false; self:start_run() end
    else
      local changed = self:gather(item.change)
      local weftfile, sources = false, {}
      for path in pairs(changed) do
        local kind = classify(self.interest, path)
        if kind == "weftfile" then weftfile = true
        elseif kind == "source" then sources[incremental.normalize(path)] = true end
      end
      if weftfile and self:reload() then sources["(weftfile)"] = true end
      if next(sources) then
        if not self.running then
          if self.done then self:finished(self.done); self.done = nil end
          self:start_run()
        elseif sources["(weftfile)"] then   -- new definitions: start over
          self.running:cancel("the Weftfile changed")
          rerun = true
        elseif restart_readers(self.P, sources, self.err) then
          rerun = true
        end
      end
      if self.done then   -- the run ended while changes were gathered
        local d = self.done
        self.done = nil
        self:finished(d)
        if rerun then rerun = false; self:start_run() end
      end
    end
  end
end

--- Watches and reruns until cancelled (Ctrl-C); see the module comment.
function M.run(P, opts)
  local self = setmetatable({ P = P, opts = opts, q = weft.queue(), handles = {},
    err = opts.err or io.stderr }, Watch)
  local ok, err = pcall(self.loop, self)
  if self.running then
    self.running:cancel("watch ended")
    pcall(self.running.await, self.running)
  end
  self:close()
  if not ok then error(err, 0) end
end

return M
