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
-- differ from the cache or the cached hash was taken within RACY_NS of the
-- file's mtime (a write in the same clock tick would leave the stat alone).
-- State: `.weft/state.db` (SQLite, WAL) beside the pipeline file, one
-- transaction per finished task; `.weft/lock` serialises runs.
-- @module weft.incremental
local weft = require "weft"
local H = weft._hash
local DB = weft._statedb
local globpat = require "weft.globpat"

local M = {}

local VERSION = 2
local RACY_NS = 1000000000   -- above every filesystem's mtime granularity we meet

local SCHEMA = [[
CREATE TABLE IF NOT EXISTS files(path TEXT PRIMARY KEY, size INTEGER, mtime INTEGER,
  ino INTEGER, checked INTEGER, hash TEXT);
CREATE TABLE IF NOT EXISTS tasks(key TEXT PRIMARY KEY, defhash TEXT, def TEXT,
  inputs TEXT, outputs TEXT, deps TEXT, outsig TEXT);
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

local function normalize(p)
  local n = normalized[p]
  if n then return n end
  n = p:gsub("/+", "/"):gsub("^%./", "")
  while n:find("/%./") do n = n:gsub("/%./", "/") end
  normalized[p] = n
  return n
end
M.normalize = normalize

local globby = {}   -- path -> does it hold a wildcard?

local function has_glob(p)
  local g = globby[p]
  if g == nil then g = p:find("[%*%?%[]") ~= nil; globby[p] = g end
  return g
end

-- {======== a synchronous glob for sources and generates: a check runs
-- between tasks and must not wait for the thread pool. `*`, `?` and `[...]`
-- match within a segment, `**` any number of segments; names starting with a
-- dot match only a pattern that starts with one.

local function scan(dir)
  local req = weft.uv.fs_scandir(dir == "" and "." or dir)
  local list = {}
  if not req then return list end
  while true do
    local name, kind = weft.uv.fs_scandir_next(req)
    if not name then return list end
    list[#list + 1] = { name, kind }
  end
end

local function under(dir, name) return dir == "" and name or (dir == "/" and "/" .. name or dir .. "/" .. name) end

local function walk_glob(dir, segs, i, out)
  local seg = segs[i]
  if not seg then out[#out + 1] = dir; return end
  if seg == "**" then
    walk_glob(dir, segs, i + 1, out)
    for _, e in ipairs(scan(dir)) do
      if e[2] == "directory" and e[1]:sub(1, 1) ~= "." then walk_glob(under(dir, e[1]), segs, i, out) end
    end
  elseif not seg:find("[%*%?%[]") then
    local p = under(dir, seg)
    if (i == #segs and H.stat(p)) or (i < #segs and H.stat(p) == "directory") then
      walk_glob(p, segs, i + 1, out)
    end
  else
    local pat, dot = globpat.segment(seg), seg:sub(1, 1) == "."
    for _, e in ipairs(scan(dir)) do
      if e[1]:match(pat) and (dot or e[1]:sub(1, 1) ~= ".") then
        if i == #segs then out[#out + 1] = under(dir, e[1])
        elseif e[2] == "directory" then walk_glob(under(dir, e[1]), segs, i + 1, out) end
      end
    end
  end
end

--- The files matching `pattern`, sorted (see the section comment).
function M.glob(pattern)
  local segs = {}
  for seg in pattern:gmatch("[^/]+") do segs[#segs + 1] = seg end
  local out = {}
  walk_glob(pattern:sub(1, 1) == "/" and "/" or "", segs, 1, out)
  table.sort(out)
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
    for _, m in ipairs(matches) do
      m = normalize(m)
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

local serialize

local memo   -- table -> its serialization, during one definition()

local function serialize_table(t, seen, depth)
  if getmetatable(t) ~= nil then return "<object>" end
  if memo and memo[t] then return memo[t] end
  if seen[t] then return "<cycle>" end
  if depth > 12 then return "<deep>" end
  seen[t] = true
  local n, count = #t, 0
  for _ in pairs(t) do count = count + 1 end
  if count == n then   -- a sequence: no keys to sort
    local parts = {}
    for i = 1, n do parts[i] = serialize(t[i], seen, depth + 1) end
    seen[t] = nil
    local text = "{" .. table.concat(parts, ",") .. "}"
    if memo then memo[t] = text end
    return text
  end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  local parts = {}
  for i, k in ipairs(keys) do
    parts[i] = ("[%s]=%s"):format(serialize(k, seen, depth + 1), serialize(t[k], seen, depth + 1))
  end
  seen[t] = nil
  return "{" .. table.concat(parts, ",") .. "}"
end

local function serialize_function(f, seen, depth)
  if seen[f] then return "<cycle>" end
  local ok, code = pcall(string.dump, f, true)
  if not ok then return "<cfunction>" end
  seen[f] = true
  local parts = { "fn:" .. H.string(code) }
  local i = 1
  while true do
    local name, value = debug.getupvalue(f, i)
    if not name then break end
    if name ~= "_ENV" then
      parts[#parts + 1] = ("%s=%s"):format(name, serialize(value, seen, depth + 1))
    end
    i = i + 1
  end
  seen[f] = nil
  return table.concat(parts, ";")
end

function serialize(v, seen, depth)
  local t = type(v)
  if t == "string" then return ("%q"):format(v)
  elseif t == "number" then return math.type(v) == "integer" and ("%d"):format(v) or ("%.17g"):format(v)
  elseif t == "boolean" or t == "nil" then return tostring(v)
  elseif t == "table" then return serialize_table(v, seen, depth)
  elseif t == "function" then return serialize_function(v, seen, depth)
  end
  return "<" .. t .. ">"
end

--- The parts of a task's definition, in a fixed order: {name, value} pairs
-- (fields as `field NAME`, the body as `body`, each captured value by name).
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

function M.definition(rec, fields)
  memo = {}
  local parts = {}
  local names = key_field_names(fields)
  for _, k in ipairs(names) do
    local v = rec.spec and rec.spec[k]
    if v ~= nil then parts[#parts + 1] = { "field " .. k, serialize(v, {}, 0) } end
  end
  local fn = rec.fn
  if fn then
    local ok, code = pcall(string.dump, fn, true)
    parts[#parts + 1] = { "body", ok and H.string(code) or "<cfunction>" }
    local i = 1
    while true do
      local name, value = debug.getupvalue(fn, i)
      if not name then break end
      if name ~= "_ENV" then parts[#parts + 1] = { name, serialize(value, {}, 0) } end
      i = i + 1
    end
  end
  memo = nil
  return parts
end

-- "name\0value\0..." : serialize() escapes every \0 inside a value (%q).
local function encode_parts(parts)
  local flat = {}
  for i, p in ipairs(parts) do flat[2 * i - 1], flat[2 * i] = p[1], p[2] end
  return table.concat(flat, "\0")
end

local function decode_parts(text)
  local out, key = {}, nil
  for field in ((text or "") .. "\0"):gmatch("(.-)%z") do
    if key then out[#out + 1] = { key, field }; key = nil else key = field end
  end
  return out
end

local function short(s)
  if #s > 60 then return s:sub(1, 57) .. "..." end
  return s
end

-- The first part that differs between the recorded and the current definition.
local function definition_reason(old_text, parts)
  local old = {}
  for _, p in ipairs(decode_parts(old_text)) do old[p[1]] = p[2] end
  local now = {}
  for _, p in ipairs(parts) do
    now[p[1]] = true
    local was = old[p[1]]
    if was ~= p[2] then
      if p[1] == "body" then return "its body changed" end
      if was == nil then return ("%s is new: %s"):format(p[1], short(p[2])) end
      return ("%s changed: %s -> %s"):format(p[1], short(was), short(p[2]))
    end
  end
  for k, v in pairs(old) do
    if not now[k] then return ("%s was removed (was %s)"):format(k, short(v)) end
  end
  return "its definition changed"
end

-- }========

-- {======== recorded lists: "path\thash\n"

local function encode_map(list)
  local lines = {}
  for i, e in ipairs(list) do lines[i] = e[1] .. "\t" .. e[2] end
  return table.concat(lines, "\n")
end

local function decode_map(text)
  local list = {}
  for path, h in (text or ""):gmatch("([^\t\n]+)\t([^\n]*)") do list[#list + 1] = { path, h } end
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

-- Opens (or recreates) the database; nil and a warning when it cannot.
local function open_db(dir, warn)
  local path = dir .. "/state.db"
  local function try()
    local db, err = DB.open(path)
    if not db then return nil, err end
    local ok, e = db:exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
    if not ok then db:close(); return nil, e end
    local rows = db:prepare("PRAGMA user_version")
    local r = rows and rows:rows()
    local v = r and r[1] and r[1][1]
    if v ~= VERSION then
      local n = db:prepare("SELECT count(*) FROM sqlite_master")
      local c = n and n:rows()
      if c and c[1] and c[1][1] > 0 then
        warn(("%s was written by another version of weft (%s); starting afresh"):format(path,
          tostring(v)))
        db:exec("DROP TABLE IF EXISTS files; DROP TABLE IF EXISTS tasks;")
      end
      ok, e = db:exec(SCHEMA .. ("PRAGMA user_version = %d;"):format(VERSION))
      if not ok then db:close(); return nil, e end
    end
    ok, e = db:exec(SCHEMA)
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

-- A source that is a directory is a usage error, raised before anything
-- runs; a path hashed as a file before is not stat'ed again here.
local function check_sources(self, list)
  for _, rec in ipairs(list) do
    for _, p in ipairs(as_list(rec.sources)) do
      if not self.cache[normalize(p)] and not has_glob(p) and H.stat(p) == "directory" then
        require("weft.pipeline").usage_error("%s: task %q: source %s is a directory, not a file",
          rec.where or "?", rec.name, p)
      end
    end
  end
end

local function load_state(self)
  local db = self.db
  for _, r in ipairs(db:prepare("SELECT path, size, mtime, ino, checked, hash FROM files"):rows() or {}) do
    self.cache[r[1]] = r   -- path, size, mtime, ino, checked (ns), hash
  end
  for _, r in ipairs(db:prepare(
      "SELECT key, defhash, def, inputs, outputs, deps, outsig FROM tasks"):rows() or {}) do
    self.records[r[1]] = { defhash = r[2], def = r[3], inputs = r[4], outputs = r[5],
      deps = r[6], outsig = r[7] }
  end
  self.put_file = db:prepare(
    "INSERT OR REPLACE INTO files(path, size, mtime, ino, checked, hash) VALUES (?,?,?,?,?,?)")
  self.put_task = db:prepare("INSERT OR REPLACE INTO tasks(key, defhash, def, inputs, outputs,"
    .. " deps, outsig) VALUES (?,?,?,?,?,?,?)")
end

-- Takes the lock and reads the database; on any failure, warns and leaves
-- the state disabled (everything runs, nothing is recorded).
local function open_state(self, dir)
  local ok = weft.uv.fs_mkdir(dir, 493) or weft.uv.fs_stat(dir)
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
  local lok, err = pcall(load_state, self)
  if not lok or not self.put_file or not self.put_task then
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
    dirty = {}, outsig = {}, prefix = basename(P.file or "(lua)") .. ":",
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
      pcall(load_state, self)
    end
    self.db = nil
    if db then db:close() end
    return self
  end
  open_state(self, dir)
  local ok, err = pcall(check_sources, self, list)
  if not ok then
    self:close()
    error(err, 0)
  end
  return self
end

--- The content hash of `path` through the cache: hex, or nil and "missing"
-- / "directory" / an error message.
function State:hash(path)
  local kind, size, mtime, ino = H.stat(path)
  if not kind then return nil, "missing" end
  if kind == "directory" then return nil, "directory" end
  local c = self.cache[path]
  if c and c[2] == size and c[3] == mtime and c[4] == ino and c[5] - mtime > RACY_NS then
    return c[6]
  end
  local now = H.now_ns()
  local h, err = H.file(path)
  if not h then return nil, err end
  self.cache[path] = { path, size, mtime, ino, now, h }   -- a row of the files table
  self.dirty[path] = true
  return h
end

-- Hashes each path; { {path, hash-or-"-"}... } and the first problem.
function State:hash_list(paths, name, what)
  local out = {}
  for i, p in ipairs(paths) do
    local h, why = self:hash(p)
    if not h and why ~= "missing" then
      error(setmetatable({ usage = true, message = ("task %q: %s %s is %s"):format(name, what, p,
        why == "directory" and "a directory, not a file" or ("unreadable: " .. why)) },
        { __tostring = function(e) return e.message end }), 0)
    end
    out[i] = { p, h or "-" }
  end
  return out
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
          short(line)))
        return {}
      end
      deps = deps:gsub("\\ ", "\0"):gsub("%$%$", "$")
      for d in deps:gmatch("%S+") do out[#out + 1] = normalize((d:gsub("%z", " "))) end
    end
  end
  return out
end

-- The inputs recorded for a task: its sources, then depfile entries.
local function current_inputs(self, rec)
  local inputs = expand(rec.sources, self.warn_globs and self.warn, "sources", rec.name)
  return self:hash_list(inputs, rec.name, "source")
end

-- The deps' output signatures in this run, as "name\tsig" entries.
local function dep_signatures(self, rec)
  local out = {}
  for _, d in ipairs(rec.deps or {}) do
    local sig = self.outsig[d]
    if sig then out[#out + 1] = { d, sig } end
  end
  return out
end

-- Why `rec` must run, given what was recorded; nil when up to date.
local function reason(self, rec, prev, def_parts, defhash, inputs)
  if not prev then return "never ran" end
  if prev.defhash ~= defhash then return definition_reason(prev.def, def_parts) end
  for _, e in ipairs(decode_map(prev.outputs)) do
    local h = self:hash(e[1])
    if not h then return e[1] .. " is missing" end
    if h ~= e[2] then return e[1] .. " was changed since it was generated" end
  end
  local recorded, now = {}, {}
  for _, e in ipairs(inputs) do now[e[1]] = e[2] end
  for _, e in ipairs(decode_map(prev.inputs)) do
    recorded[e[1]] = true
    local h = now[e[1]]
    if h == nil then h = self:hash(e[1]) elseif h == "-" then h = nil end
    if h ~= (e[2] ~= "-" and e[2] or nil) then
      return h and (e[1] .. " changed") or (e[1] .. " is missing")
    end
  end
  for _, e in ipairs(inputs) do
    if not recorded[e[1]] then return e[1] .. " is a new source" end
  end
  local generated = {}
  for _, e in ipairs(decode_map(prev.outputs)) do generated[e[1]] = true end
  for _, p in ipairs(M.literal_generates(rec)) do
    if not generated[p] and not self:hash(p) then return p .. " is missing" end
  end
  local deps = {}
  for _, e in ipairs(decode_map(prev.deps)) do deps[e[1]] = e[2] end
  for _, e in ipairs(dep_signatures(self, rec)) do
    if deps[e[1]] ~= e[2] then return ("dependency %q produced different output"):format(e[1]) end
  end
  return nil
end

--- Is `rec` up to date? Returns fresh, reason. Prints the reason with
-- --explain. Raises a usage error for a source that is a directory.
function State:check(rec)
  if not is_incremental(rec) then
    if self.opts.explain then
      io.stderr:write(("explain: %s runs: it has no sources or generates\n"):format(rec.name))
    end
    return false, "it has no sources or generates"
  end
  self.warn_globs = true
  local inputs = current_inputs(self, rec)
  self.warn_globs = false
  local parts = M.definition(rec, self.fields)
  local deftext = encode_parts(parts)
  local defhash = H.string(deftext)
  rec.incr = { inputs = inputs, def = deftext, defhash = defhash, started_ns = H.now_ns() }
  local why
  if self.opts.always then why = "-B/--always"
  elseif self.disabled then why = "the state in .weft/ is not usable"
  else why = reason(self, rec, self.records[self.prefix .. rec.name], parts, defhash, inputs) end
  if not why then
    self.outsig[rec.name] = self.records[self.prefix .. rec.name].outsig
    return true
  end
  if self.opts.explain then
    io.stderr:write(("explain: %s runs: %s\n"):format(rec.name, why))
    io.stderr:flush()
  end
  return false, why
end

local function flush_files(self)
  for path in pairs(self.dirty) do
    local c = self.cache[path]
    assert(self.put_file:run(path, c[2], c[3], c[4], c[5], c[6]))
  end
  self.dirty = {}
end

--- Records `rec` after its body succeeded: hashes what it generated (a
-- declared file it did not write fails the task) and reads its depfile.
function State:record(rec)
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
  if self.disabled or not rec.incr then return end
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
        local c = self.cache[e[1]]
        if c and c[3] >= rec.incr.started_ns and not produced[e[1]] then
          e[2] = "written while the task ran"
        end
        inputs[#inputs + 1] = e
      end
    end
  end
  local row = { defhash = rec.incr.defhash, def = rec.incr.def, inputs = encode_map(inputs),
    outputs = encode_map(outputs), deps = encode_map(dep_signatures(self, rec)), outsig = outsig }
  local ok, err = pcall(function()
    assert(self.db:exec("BEGIN IMMEDIATE"))
    flush_files(self)
    assert(self.put_task:run(self.prefix .. rec.name, row.defhash, row.def, row.inputs,
      row.outputs, row.deps, row.outsig))
    assert(self.db:exec("COMMIT"))
  end)
  if not ok then
    self.db:exec("ROLLBACK")
    self.warn(("cannot record task %q in .weft/state.db (%s); recording nothing more"):format(
      rec.name, tostring(err)))
    self.disabled = true
    return
  end
  self.records[self.prefix .. rec.name] = row
end

--- Before a task restarted by `weft run --watch` runs again: hash its
-- sources anew, so that what is recorded is what this attempt read.
function M.restarting(state, rec)
  if state and is_incremental(rec) then pcall(state.check, state, rec) end
end

--- The paths `rec` read in its last check or record (sources and depfile
-- entries), for `weft run --watch`.
function State:inputs_of(rec)
  local out, seen = {}, {}
  local function add(list)
    for _, e in ipairs(list) do
      if not seen[e[1]] then seen[e[1]] = true; out[#out + 1] = e[1] end
    end
  end
  add(rec.incr and rec.incr.inputs or {})
  local prev = self.records[self.prefix .. rec.name]
  if prev then add(decode_map(prev.inputs)) end
  return out
end

--- Writes the hashes taken during the run and releases the lock.
function State:close()
  if self.db and not self.disabled and next(self.dirty) then
    pcall(function()
      assert(self.db:exec("BEGIN IMMEDIATE"))
      flush_files(self)
      assert(self.db:exec("COMMIT"))
    end)
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
  local r = visit(P.by_name[name])
  return r or nil
end

return M
