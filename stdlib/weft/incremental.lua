--- Incremental pipelines: is a task up to date, why not, and recording it.
--
-- The interface the pipeline runner calls (weft.pipeline; keep these few):
--
--     local incr = incremental.open(P, list, opts)  -- at run start; nil when no
--                                         -- selected task has sources/generates/depfile
--     incr:check(rec) -> fresh, reason    -- before starting rec (its deps are done);
--                                         -- prints the reason when opts.explain
--     incr:record(rec)                    -- after rec's body succeeded; raises
--                                         -- "did not generate x" (the task fails)
--     incr:close()                        -- at run end (also on errors)
--     incremental.restarting(incr, rec)   -- before rerunning a task --watch cancelled
--                                         -- because its source changed (incr may be nil)
--     incremental.why(P, name, opts) -> reason | nil  (`weft why`, runs nothing)
--
-- opts: `always` (-B), `explain`, `warn` (function(msg), default stderr).
--
-- A task is up to date when it succeeded before and its definition key, the
-- content of every source (plus depfile entries), of every generated file and
-- the output signature of every dependency are what was recorded then.
-- Content is XXH3-128 (weft._hash), read only when (size, mtime_ns, inode)
-- differ from what was recorded with the hash or the hash was taken within
-- RACY_NS of the file's mtime (a write in the same clock tick would leave the
-- stat alone).
-- State: `.weft/state.db` (SQLite, WAL) beside the pipeline file, one row
-- per task holding, for each file it read or generated, the path, hash and
-- the stat the hash was taken at; one transaction per finished task;
-- `.weft/lock` serialises runs. A no-op run is one row lookup and one
-- weft._hash.verify (a stat per file, in C) per task, and writes nothing.
-- @module weft.incremental
local weft = require "weft"
local H = weft._hash
local DB = weft._statedb
local globpat = require "weft.globpat"

local M = {}

local VERSION = 4
local RACY_NS = 1000000000   -- above every filesystem's mtime granularity we meet

-- tasks.sources: the task's sources as expanded then, one per line;
-- inputs (sources, then depfile entries) and outputs: "path\thash\tsize\t
-- mtime_ns\tinode\tchecked_ns" lines (hash "-": missing), as weft._hash.verify
-- reads them; deps: "name\toutput signature" lines.
local SCHEMA = [[
CREATE TABLE IF NOT EXISTS tasks(key TEXT PRIMARY KEY, defhash TEXT, def TEXT,
  sources TEXT, inputs TEXT, outputs TEXT, deps TEXT, outsig TEXT);
]]

local function default_warn(msg)
  io.stderr:write("weft run: warning: ", msg, "\n")
  io.stderr:flush()
end

local function is_incremental(rec)
  return rec.sources ~= nil or rec.generates ~= nil or rec.depfile ~= nil
end
M.is_incremental = is_incremental

-- {======== paths and globs

local normalized = {}   -- path as written -> normal form (paths repeat across tasks and runs)
local globby = {}   -- path -> does it hold a wildcard?
local sys_path = weft._sys.path   -- p -> normal form, wildcard? (host/sys.c, one call for both)

local function learn_path(p)
  local n, g = sys_path(p)
  normalized[p], globby[p] = n, g
  return n, g
end

-- "a//b" and "./a/./b" -> "a/b": runs of '/' made one, a leading "./"
-- and "." segments before a '/' dropped.
local function normalize(p)
  return normalized[p] or (learn_path(p))
end
M.normalize = normalize

local function has_glob(p)
  local g = globby[p]
  if g == nil then
    local _
    _, g = learn_path(p)
  end
  return g
end

-- {======== a synchronous glob for sources and generates: a check runs
-- between tasks and must not wait for the thread pool. `*`, `?` and `[...]`
-- match within a segment, `**` any number of segments; names starting with a
-- dot match only a pattern that starts with one.

-- `scanned` keeps one glob's listings: `**` then a segment lists each
-- directory twice.
local function scan(dir, scanned)
  local list = scanned[dir]
  if list then return list end
  local names, kinds = weft._sys.scandir(dir == "" and "." or dir)
  list = {}
  for i, name in ipairs(names or list) do list[i] = { name, kinds[i] } end
  scanned[dir] = list
  return list
end

local function under(dir, name) return dir == "" and name or (dir == "/" and "/" .. name or dir .. "/" .. name) end

local function walk_glob(dir, segs, i, out, scanned)
  local seg = segs[i]
  if not seg then out[#out + 1] = dir; return end
  if seg == "**" then
    walk_glob(dir, segs, i + 1, out, scanned)
    for _, e in ipairs(scan(dir, scanned)) do
      if e[2] == "directory" and e[1]:sub(1, 1) ~= "." then
        walk_glob(under(dir, e[1]), segs, i, out, scanned)
      end
    end
    return
  end
  local matches = globpat.matcher(seg)
  if not matches then
    local p = under(dir, seg)
    if (i == #segs and H.stat(p)) or (i < #segs and H.stat(p) == "directory") then
      walk_glob(p, segs, i + 1, out, scanned)
    end
  else
    local dot = seg:sub(1, 1) == "."
    for _, e in ipairs(scan(dir, scanned)) do
      if matches(e[1]) and (dot or e[1]:sub(1, 1) ~= ".") then
        if i == #segs then out[#out + 1] = under(dir, e[1])
        elseif e[2] == "directory" then walk_glob(under(dir, e[1]), segs, i + 1, out, scanned) end
      end
    end
  end
end

--- The files matching `pattern`, sorted (see the section comment).
function M.glob(pattern)
  local segs = {}
  for seg in pattern:gmatch("[^/]+") do segs[#segs + 1] = seg end
  local out = {}
  walk_glob(pattern:sub(1, 1) == "/" and "/" or "", segs, 1, out, {})
  table.sort(out)
  local n = 1   -- "**/**" reaches a path along several walks: each once, as weft.fs.glob
  for i = 2, #out do
    if out[i] ~= out[n] then n = n + 1; out[n] = out[i] end
  end
  for i = #out, n + 1, -1 do out[i] = nil end
  return out
end

-- }========

--- `nil` -> {}, "x" -> {"x"}, a list as it is (task fields take either).
local function as_list(v)
  if v == nil then return {} end
  if type(v) == "string" then return { v } end
  return v
end
M.as_list = as_list

-- Expands a list of paths and globs; warns once per glob matching nothing.
local function expand(list, warn, what, name)
  local out, seen = {}, {}
  for _, p in ipairs(as_list(list)) do
    local matches = has_glob(p) and M.glob(p) or { p }
    if #matches == 0 and warn then
      warn(("task %q: %s glob %q matches nothing"):format(name, what, p))
    end
    for i = 1, #matches do   -- (not ipairs: a no-op run expands every task's list)
      local m = normalize(matches[i])
      if not seen[m] then seen[m] = true; out[#out + 1] = m end
    end
  end
  return out
end

--- The literal (non-glob) paths a task generates, for duplicate checks.
function M.literal_generates(rec)
  local out = {}
  for _, p in ipairs(as_list(rec.generates)) do
    if not has_glob(p) then out[#out + 1] = normalize(p) end
  end
  return out
end

-- }========

-- {======== the definition key: fields, body, captured values

local key_fields = setmetatable({}, { __mode = "k" })   -- fields table -> sorted names

local function key_field_names(fields)
  local names = key_fields[fields]
  if names then return names end
  names = {}
  for k, f in pairs(fields) do
    if f.key ~= false and k ~= "fn" then names[#names + 1] = k end
  end
  table.sort(names)
  key_fields[fields] = names
  return names
end

-- The text of a definition (what a reason names): weft.incremental_text,
-- loaded by the first task whose fast check fails; a no-op never needs it.
local text_mod
local function def_text()
  text_mod = text_mod or require("weft.incremental_text")
  return text_mod
end

--- The parts of a task's definition, in a fixed order: {name, value} pairs
-- (fields as `field NAME`, the body as `body`, each captured value by name).
-- See weft.incremental_text.
function M.definition(rec, fields)
  return def_text().definition(rec, key_field_names(fields))
end

-- }========

-- {======== recorded lists

-- Files: { path, hash, size, mtime_ns, inode, checked_ns } <-> a text line.
local function encode_files(list)
  local lines = {}
  for i, e in ipairs(list) do
    lines[i] = e[1] .. "\t" .. e[2] .. "\t" .. e[3] .. "\t" .. e[4] .. "\t" .. e[5] .. "\t" .. e[6]
  end
  return table.concat(lines, "\n")
end

local function decode_files(text)
  local list, int = {}, math.tointeger
  for path, h, size, mtime, ino, checked in (text or ""):gmatch(
      "([^\t\n]+)\t([^\t\n]*)\t(%-?%d+)\t(%-?%d+)\t(%-?%d+)\t(%-?%d+)") do
    list[#list + 1] = { path, h, int(size), int(mtime), int(ino), int(checked) }
  end
  return list
end

-- Dependencies: "name\tsignature" lines (dep_signatures_text) -> { name, signature }.
local function decode_pairs(text)
  local list = {}
  for name, v in (text or ""):gmatch("([^\t\n]+)\t([^\n]*)") do list[#list + 1] = { name, v } end
  return list
end

-- }========

-- {======== the state

local State = {}
State.__index = State

local function dirname(p)
  return p:match("^(.*)/[^/]*$") or "."
end

local function state_dir(P)
  if P.file and P.file ~= "(lua)" then return dirname(P.file) .. "/.weft" end
  return ".weft"
end

local function basename(p) return p:match("([^/]*)$") end

-- The statements a run uses, each prepared once, when first used: a no-op
-- run only reads (a prepare costs about as much as a row lookup).
local STATEMENTS = {
  get_task = "SELECT defhash, sources, inputs, outputs, deps, outsig FROM tasks WHERE key = ?",
  get_def = "SELECT def FROM tasks WHERE key = ?",
  all_tasks = "SELECT key, defhash, sources, inputs, outputs, deps, outsig FROM tasks"
    .. " WHERE key >= ? AND key < ?",
  put_task = "INSERT OR REPLACE INTO tasks(key, defhash, def, sources, inputs, outputs, deps,"
    .. " outsig) VALUES (?,?,?,?,?,?,?,?)",
  put_files = "UPDATE tasks SET inputs = ?, outputs = ? WHERE key = ?",
}

-- Raises the message of a failed statement call.
local function must(ok, ...)
  if ok == nil then error(..., 0) end
  return ok, ...
end

-- Opens (or recreates) the database; nil and a warning when it cannot.
-- The schema is written once: WAL mode is a property of the file, and a
-- file of this VERSION has the tables.
local function open_db(dir, warn)
  local path = dir .. "/state.db"
  -- each statement is finalized here: one left to the garbage collector
  -- keeps the database open (a zombie after close) until the Lua state is
  -- closed, and `weft run` may end without closing it (host/main.c)
  local function value(db, sql)
    local st = must(db:prepare(sql))
    local ok, v = pcall(function() local _, x = must(st:first()); return x end)
    st:finalize()
    if not ok then error(v, 0) end
    return v
  end
  local function try()
    local db, err = DB.open(path)
    if not db then return nil, err end
    local ok, e = pcall(function()
      must(db:exec("PRAGMA synchronous=NORMAL; PRAGMA journal_size_limit=0"))
      local v = value(db, "PRAGMA user_version")
      if v ~= VERSION then
        local n = value(db, "SELECT count(*) FROM sqlite_master")
        if n > 0 then
          warn(("%s was written by another version of weft (%s); starting afresh"):format(path,
            tostring(v)))
          must(db:exec("DROP TABLE IF EXISTS files; DROP TABLE IF EXISTS tasks;"))
        end
        must(db:exec("PRAGMA journal_mode=WAL; " .. SCHEMA
          .. ("PRAGMA user_version = %d;"):format(VERSION)))
      end
    end)
    if not ok then db:close(); return nil, e end
    return db
  end
  local db, err = try()
  if db then return db end
  if tostring(err):find("not a database") or tostring(err):find("malformed") then
    warn(("%s is damaged (%s); running everything and starting afresh"):format(path, err))
    for _, suffix in ipairs({ "", "-wal", "-shm" }) do os.remove(path .. suffix) end
    db, err = try()
    if db then return db, "damaged" end
  end
  warn(("cannot use %s (%s); running everything, recording nothing"):format(path, tostring(err)))
  return nil
end

-- Waits for the run lock, saying so once on stderr.
local function take_lock(dir, warn)
  local lk, err = DB.lock(dir .. "/lock")
  if not lk then
    warn(("cannot lock %s; runs in this directory are not serialised"):format(tostring(err)))
    return nil
  end
  if not lk:try() then
    io.stderr:write(("weft run: waiting for another weft run in %s (%s/lock)\n"):format(
      dirname(dir), dir))
    io.stderr:flush()
    repeat weft.sleep(0.05) until lk:try()
  end
  return lk
end

-- The lookups share one read transaction, ended before a write and at
-- close: a statement outside a transaction takes and drops the WAL's read
-- lock (several fcntl calls on the -shm file) each time.
local function begin_read(self)
  if not self.reading and self.db then self.reading = self.db:exec("BEGIN") ~= nil end
end

local function end_read(self)
  if self.reading then
    self.reading = false
    self.db:exec("COMMIT")
  end
end

local function row_record(defhash, sources, inputs, outputs, deps, outsig)
  return { defhash = defhash, sources = sources or "", inputs = inputs or "",
    outputs = outputs or "", deps = deps or "", outsig = outsig }
end

local statement

-- Reads the rows of every task of this pipeline file at once (its keys
-- share the prefix "NAME:"): when a run checks most of its tasks, one scan
-- costs a third of a lookup per task (issue 13). False when it cannot; the
-- lookups then go one by one.
local function load_all(self)
  local hi = self.prefix:sub(1, -2) .. string.char(self.prefix:byte(-1) + 1)
  local ok, rows = pcall(function() return statement(self, "all_tasks"):rows(self.prefix, hi) end)
  if not (ok and rows) then return false end
  local records = self.records
  for i = 1, #rows do
    local row = rows[i]
    if records[row[1]] == nil then
      records[row[1]] = row_record(row[2], row[3], row[4], row[5], row[6], row[7])
    end
  end
  return true
end

-- What the last run recorded for a task (looked up once per run), or nil.
local function recorded(self, name)
  local key = self.prefix .. name
  local r = self.records[key]
  if r == nil then
    r = false
    local readable = self.db and not self.disabled
    if readable and self.scan == "pending" then   -- one statement: no read transaction
      self.scan = load_all(self) and "done" or nil
      r = self.records[key]
      if r ~= nil then return r or nil end
      r = false
    end
    if readable and self.scan ~= "done" then
      begin_read(self)
      local pok, st = pcall(statement, self, "get_task")
      local ok, defhash, sources, inputs, outputs, deps, outsig
      if pok then
        ok, defhash, sources, inputs, outputs, deps, outsig = st:first(key)
      else
        ok, defhash = nil, st
      end
      if ok then
        r = row_record(defhash, sources, inputs, outputs, deps, outsig)
      elseif ok == nil then
        self.warn(("cannot read task %q from .weft/state.db (%s); it runs"):format(name,
          tostring(defhash)))
      end
    end
    self.records[key] = r
  end
  return r or nil
end

-- A source that is a directory is a usage error, raised before anything
-- runs. A task whose sources are those its row recorded as files is left to
-- its check (weft._hash.verify sees a directory): no stat per source here.
local function check_sources(self, list)
  for _, rec in ipairs(list) do
    local prev = rec.sources and not self.disabled and recorded(self, rec.name)
    local sources = as_list(rec.sources)
    if not (prev and prev.sources == table.concat(sources, "\n")) then
      for _, p in ipairs(sources) do
        if not has_glob(p) and H.stat(p) == "directory" then
          require("weft.pipeline").usage_error("%s: task %q: source %s is a directory, not a file",
            rec.where or "?", rec.name, p)
        end
      end
    end
  end
end

-- Prepares the first statement the run uses: the scan of every row or the
-- lookup of one (a database whose tasks table cannot be read is not used).
-- The others come from statement().
local function prepare(self)
  local name = self.scan and "all_tasks" or "get_task"
  self[name] = must(self.db:prepare(STATEMENTS[name]))
end

-- The prepared statement `name` of STATEMENTS; raises when it cannot be.
function statement(self, name)
  local st = self[name]
  if not st then
    st = must(self.db:prepare(STATEMENTS[name]))
    self[name] = st
  end
  return st
end

-- Takes the lock and opens the database; on any failure, warns and leaves
-- the state disabled (everything runs, nothing is recorded).
local function open_state(self, dir)
  local ok = weft._sys.mkdir(dir, 493) or H.stat(dir)
  if not ok then
    self.warn(("cannot create %s; running everything, recording nothing"):format(dir))
    self.disabled = true
    return
  end
  self.lock = take_lock(dir, self.warn)
  local db = open_db(dir, self.warn)
  if not db then
    self.disabled = true
    return
  end
  self.db = db
  local pok, err = pcall(prepare, self)
  if pok then require("weft.chunkcache").save(self.P) end   -- the compiled Weftfile
  if not pok then
    self.warn(("cannot read %s/state.db (%s); running everything, recording nothing"):format(dir,
      tostring(err)))
    self.disabled = true
  end
end

--- Opens the state of pipeline `P` for a run of `list`; nil when no task of
-- `list` is incremental. Must be called inside a task (it may wait for the
-- lock). `opts.readonly` (for `weft why`) takes no lock and writes nothing.
function M.open(P, list, opts)
  opts = opts or {}
  local any = false
  for _, rec in ipairs(list) do
    if is_incremental(rec) then any = true; break end
  end
  if not any then return nil end
  local self = setmetatable({
    P = P, opts = opts, warn = opts.warn or default_warn, cache = {}, records = {},
    stats = H.stat_cache(),
    refresh = {}, outsig = {}, prefix = basename(P.file or "(lua)") .. ":",
    fields = opts.fields or require("weft.taskspec").FIELDS,
  }, State)
  local dir = state_dir(P)
  if opts.readonly then
    local f = io.open(dir .. "/state.db", "rb")
    if not f then return self end
    f:close()
    local db = DB.open(dir .. "/state.db")
    if db and db:exec("SELECT 1 FROM tasks LIMIT 1") then
      self.db = db
      if not pcall(prepare, self) then self.db = nil end
    end
    if db and not self.db then db:close() end
    return self
  end
  -- most of the file's tasks: read all their rows at the first lookup
  local n = 0
  for i = 1, #list do
    if is_incremental(list[i]) then n = n + 1 end
  end
  -- ("pending": read every row at the first lookup; "done" once read; nil:
  -- one lookup per task, also when the scan could not be read)
  self.scan = n >= 8 and n * 2 >= #(P.tasks or list) and "pending" or nil
  open_state(self, dir)
  local ok, err = pcall(check_sources, self, list)
  if not ok then
    self:close()
    error(err, 0)
  end
  return self
end

--- The content hash of `path` through the cache: hex and the cache entry
-- { path, size, mtime_ns, inode, checked_ns, hash }, or nil and "missing" /
-- "directory" / an error message.
function State:hash(path)
  local kind, size, mtime, ino = H.stat(path)
  if not kind then return nil, "missing" end
  if kind == "directory" then return nil, "directory" end
  local c = self.cache[path]
  if c and c[2] == size and c[3] == mtime and c[4] == ino and c[5] - mtime > RACY_NS then
    return c[6], c
  end
  local now = H.now_ns()
  local h, err = H.file(path)
  if not h then return nil, err end
  c = { path, size, mtime, ino, now, h }
  self.cache[path] = c
  return h, c
end

-- A recorded file entry for `path` hashed as `h` (nil: missing) from `c`.
local function file_entry(path, h, c)
  if not h then return { path, "-", 0, 0, 0, 0 } end
  return { path, h, c[2], c[3], c[4], c[5] }
end

-- Hashes each path; { file entry... } and the first problem.
function State:hash_list(paths, name, what)
  local out = {}
  for i, p in ipairs(paths) do
    local h, why = self:hash(p)
    if not h and why ~= "missing" then
      error(setmetatable({ usage = true, message = ("task %q: %s %s is %s"):format(name, what, p,
        why == "directory" and "a directory, not a file" or ("unreadable: " .. why)) },
        { __tostring = function(e) return e.message end }), 0)
    end
    out[i] = file_entry(p, h, why)
  end
  return out
end

-- The recorded definition text of a task (only a reason needs it).
local function recorded_def(self, name)
  if not (self.db and not self.disabled) then return nil end
  local pok, st = pcall(statement, self, "get_def")
  if not pok then return nil end
  local ok, def = st:first(self.prefix .. name)
  return ok and def or nil
end

-- Lets the cache know what a row recorded: a file whose stat is still the
-- recorded one is not read again.
local function learn(self, files)
  for _, e in ipairs(files) do
    if #e[2] == 32 and not self.cache[e[1]] then
      self.cache[e[1]] = { e[1], e[3], e[4], e[5], e[6], e[2] }
    end
  end
end

local function depfile_entries(path, warn, name)
  local f = io.open(path, "rb")
  if not f then
    warn(("task %q: depfile %s is missing; no extra sources"):format(name, path))
    return {}
  end
  local text = f:read("a"):gsub("\\\r?\n", " ")
  f:close()
  local out = {}
  for line in text:gmatch("[^\r\n]+") do
    if line:find("%S") then
      local deps = line:match("^.-[^\\]:%s(.*)$") or line:match("^.-[^\\]:$") and ""
      if not deps then
        warn(("task %q: depfile %s is malformed (%q); no extra sources"):format(name, path,
          def_text().short(line)))
        return {}
      end
      deps = deps:gsub("\\ ", "\0"):gsub("%$%$", "$")
      for d in deps:gmatch("%S+") do out[#out + 1] = normalize((d:gsub("%z", " "))) end
    end
  end
  return out
end

-- The deps' output signatures in this run as recorded: "name\tsig" lines
-- (decode_pairs reads them back).
local function dep_signatures_text(self, rec)
  local lines = {}
  for _, d in ipairs(rec.deps or {}) do
    local sig = self.outsig[d]
    if sig then lines[#lines + 1] = d .. "\t" .. sig end
  end
  return table.concat(lines, "\n")
end

-- Why `rec` must run, given what was recorded; nil when up to date.
local function reason(self, rec, prev, def_parts, defhash, inputs)
  if not prev then return "never ran" end
  if prev.defhash ~= defhash then
    return def_text().definition_reason(recorded_def(self, rec.name), def_parts)
  end
  local outputs = decode_files(prev.outputs)
  for _, e in ipairs(outputs) do
    local h = self:hash(e[1])
    if not h then return e[1] .. " is missing" end
    if h ~= e[2] then return e[1] .. " was changed since it was generated" end
  end
  local recorded_inputs, now = {}, {}
  for _, e in ipairs(inputs) do now[e[1]] = e[2] end
  for _, e in ipairs(decode_files(prev.inputs)) do
    recorded_inputs[e[1]] = true
    local h = now[e[1]]
    if h == nil then h = self:hash(e[1]) elseif h == "-" then h = nil end
    if h ~= (e[2] ~= "-" and e[2] or nil) then
      return h and (e[1] .. " changed") or (e[1] .. " is missing")
    end
  end
  for _, e in ipairs(inputs) do
    if not recorded_inputs[e[1]] then return e[1] .. " is a new source" end
  end
  local generated = {}
  for _, e in ipairs(outputs) do generated[e[1]] = true end
  for _, p in ipairs(M.literal_generates(rec)) do
    if not generated[p] and not self:hash(p) then return p .. " is missing" end
  end
  local deps = {}
  for _, e in ipairs(decode_pairs(prev.deps)) do deps[e[1]] = e[2] end
  for _, e in ipairs(decode_pairs(dep_signatures_text(self, rec))) do
    if deps[e[1]] ~= e[2] then return ("dependency %q produced different output"):format(e[1]) end
  end
  return nil
end

-- The no-op fast path: the same definition, sources, dependency outputs,
-- and every recorded file still at its recorded stat (weft._hash.verify).
-- Implies that reason() finds nothing.
local function unchanged(self, rec, prev, defhash, sources)
  return prev.defhash == defhash and prev.sources == table.concat(sources, "\n")
    and prev.deps == dep_signatures_text(self, rec)
    and H.verify(prev.outputs, RACY_NS, self.stats) and H.verify(prev.inputs, RACY_NS, self.stats)
end

-- The stats verify took, shared by the checks (a build's compiles read the
-- same headers) as long as no task runs: dropped when one is about to run
-- and when one has run, so a check after a dependency ended stats anew.
local function will_run(self, why)
  self.stats = H.stat_cache()
  return false, why
end

-- A task found up to date although some file's stat changed (touched, or
-- hashed too soon after its write): record the stats now, so that the next
-- run takes the fast path. Written by close().
local function restat(self, key, prev)
  local function now(text)
    local list = decode_files(text)
    for i, e in ipairs(list) do
      local c = self.cache[e[1]]
      if c and c[6] == e[2] then list[i] = file_entry(e[1], c[6], c) end
    end
    return encode_files(list)
  end
  self.refresh[key] = { now(prev.inputs), now(prev.outputs) }
end

--- Is `rec` up to date? Returns fresh, reason. Prints the reason with
-- --explain. Raises a usage error for a source that is a directory.
-- `thorough` skips the fast path (a restarted task must hash its sources).
function State:check(rec, thorough)
  if not is_incremental(rec) then
    if self.opts.explain then
      io.stderr:write(("explain: %s runs: it has no sources or generates\n"):format(rec.name))
    end
    return will_run(self, "it has no sources or generates")
  end
  local sources = expand(rec.sources, self.warn, "sources", rec.name)
  local defhash = H.defhash(rec.spec or {}, key_field_names(self.fields), rec.fn)
  rec.incr = { sources = sources, defhash = defhash, started_ns = H.now_ns() }
  local prev = not self.disabled and recorded(self, rec.name)
  if prev and not thorough and not self.opts.always and unchanged(self, rec, prev, defhash, sources) then
    self.outsig[rec.name] = prev.outsig
    return true
  end
  -- the definition as text: what a reason names and the next run compares with
  local parts = M.definition(rec, self.fields)
  rec.incr.def = def_text().encode_parts(parts)
  if prev then
    learn(self, decode_files(prev.inputs))
    learn(self, decode_files(prev.outputs))
  end
  local inputs = self:hash_list(sources, rec.name, "source")
  rec.incr.inputs = inputs
  local why
  if self.opts.always then why = "-B/--always"
  elseif self.disabled then why = "the state in .weft/ is not usable"
  else why = reason(self, rec, prev, parts, defhash, inputs) end
  if not why then
    self.outsig[rec.name] = prev.outsig
    restat(self, self.prefix .. rec.name, prev)
    return true
  end
  if self.opts.explain then
    io.stderr:write(("explain: %s runs: %s\n"):format(rec.name, why))
    io.stderr:flush()
  end
  return will_run(self, why)
end

--- Records `rec` after its body succeeded: hashes what it generated (a
-- declared file it did not write fails the task) and reads its depfile.
function State:record(rec)
  self.stats = H.stat_cache()
  if not is_incremental(rec) then return end
  for _, p in ipairs(M.literal_generates(rec)) do
    if not H.stat(p) then error(("did not generate %s"):format(p), 0) end
  end
  local outputs = self:hash_list(expand(rec.generates, self.warn, "generates", rec.name),
    rec.name, "generated file")
  local sig = {}
  for i, e in ipairs(outputs) do sig[i] = e[1] .. "=" .. e[2] end
  local outsig = H.string(table.concat(sig, "\n"))
  self.outsig[rec.name] = outsig
  if self.disabled or not rec.incr or not rec.incr.inputs then return end
  local inputs = rec.incr.inputs
  if rec.depfile then
    local seen = {}
    for _, e in ipairs(inputs) do seen[e[1]] = true end
    local extra = {}
    for _, p in ipairs(depfile_entries(rec.depfile, self.warn, rec.name)) do
      if not seen[p] then seen[p] = true; extra[#extra + 1] = p end
    end
    local ok, hashed = pcall(self.hash_list, self, extra, rec.name, "depfile entry")
    if ok then
      local produced = {}
      for _, e in ipairs(outputs) do produced[e[1]] = true end
      for _, e in ipairs(hashed) do
        -- hashed after the run: one written while the task ran may not be what
        -- it read, so it must not look recorded
        if e[4] >= rec.incr.started_ns and not produced[e[1]] then
          e = { e[1], "written while the task ran", 0, 0, 0, 0 }
        end
        inputs[#inputs + 1] = e
      end
    end
  end
  local key = self.prefix .. rec.name
  local row = { defhash = rec.incr.defhash, def = rec.incr.def,
    sources = table.concat(rec.incr.sources, "\n"), inputs = encode_files(inputs),
    outputs = encode_files(outputs), deps = dep_signatures_text(self, rec),
    outsig = outsig }
  end_read(self)
  local ok, err = pcall(function()
    must(self.db:exec("BEGIN IMMEDIATE"))
    must(statement(self, "put_task"):run(key, row.defhash, row.def, row.sources, row.inputs, row.outputs,
      row.deps, row.outsig))
    must(self.db:exec("COMMIT"))
  end)
  if not ok then
    self.db:exec("ROLLBACK")
    self.warn(("cannot record task %q in .weft/state.db (%s); recording nothing more"):format(
      rec.name, tostring(err)))
    self.disabled = true
    return
  end
  self.records[key] = row
  self.refresh[key] = nil
end

--- Before a task restarted by `weft run --watch` runs again: hash its
-- sources anew, so that what is recorded is what this attempt read.
function M.restarting(state, rec)
  if state and is_incremental(rec) then pcall(state.check, state, rec, true) end
end

--- The paths `rec` read in its last check or record (sources and depfile
-- entries), for `weft run --watch`.
function State:inputs_of(rec)
  local out, seen = {}, {}
  local function add(list)
    for _, e in ipairs(list) do
      local p = type(e) == "table" and e[1] or e
      if not seen[p] then seen[p] = true; out[#out + 1] = p end
    end
  end
  add(rec.incr and (rec.incr.inputs or rec.incr.sources) or {})
  local prev = recorded(self, rec.name)
  if prev then add(decode_files(prev.inputs)) end
  return out
end

--- Writes the stats taken for up-to-date tasks (see restat) and releases
-- the lock. A run that changed nothing writes nothing.
function State:close()
  end_read(self)
  if self.db and not self.disabled and next(self.refresh) then
    pcall(function()
      must(self.db:exec("BEGIN IMMEDIATE"))
      for key, files in pairs(self.refresh) do must(statement(self, "put_files"):run(files[1], files[2], key)) end
      must(self.db:exec("COMMIT"))
    end)
  end
  for name in pairs(STATEMENTS) do
    if self[name] then self[name]:finalize(); self[name] = nil end
  end
  if self.db then self.db:close(); self.db = nil end
  if self.lock then self.lock:release(); self.lock = nil end
end

-- }========

--- Why `name` would run now (the first reason), or nil when it is up to
-- date; runs nothing and writes nothing. A dependency that would run is a
-- reason too. Must be called inside a task.
function M.why(P, name, opts)
  local list = P:select({ name })
  opts = opts or {}
  local st = M.open(P, list, { readonly = true, warn = opts.warn or function() end })
  if not st then return ("task %q has no sources or generates, so it always runs"):format(name) end
  local verdict = {}
  local function visit(rec)
    if verdict[rec.name] ~= nil then return verdict[rec.name] end
    for _, d in ipairs(rec.deps or {}) do
      local dep = P.by_name[d]
      local r = visit(dep)
      if r and is_incremental(dep) and not verdict[rec.name] then
        verdict[rec.name] = ("dependency %q would run: %s"):format(d, r)
      end
    end
    if verdict[rec.name] then return verdict[rec.name] end
    local ok, fresh, why = pcall(st.check, st, rec)
    if not ok then why = tostring(fresh) elseif fresh then why = false end
    if not is_incremental(rec) then why = "it has no sources or generates, so it always runs" end
    verdict[rec.name] = why
    return why
  end
  local ok, r = pcall(visit, P.by_name[name])
  st.refresh = {}   -- readonly: writes nothing
  st:close()
  if not ok then error(r, 0) end
  return r or nil
end

return M
