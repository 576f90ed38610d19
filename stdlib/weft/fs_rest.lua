--- weft.fs beyond glob, loaded on first use of any other function
-- (stdlib/weft/fs.lua; issue 13: a Weftfile's glob loads none of this).
-- weft.fs: files and directories without blocking the loop. Every call
-- is a luv fs request whose callback resolves a future the calling task
-- awaits, so each one suspends only its task and is a cancellation point.
-- A cancelled call cancels its request when libuv still can; otherwise the
-- callback releases what the request made (an opened descriptor is closed).
-- `glob` is the exception: it lists directories synchronously (see there).
-- Failures raise `IOError` with `code` (libuv's name), `path` (the first path)
-- and a message naming the code and every path. User docs: docs/io.md (weft.fs).
local weft = require "weft"
local uv = require "weft.lazy_uv"   -- luv opened on first use

local M = {}

local concat, sort, unpack, pack = table.concat, table.sort, table.unpack, table.pack

--- Raises the IOError of a luv error string ("ENOENT: no such file...").
local function fail(op, err, path, path2)
  local code = err:match("^([%w_]+):") or "EIO"
  local desc = err:match("^[%w_]+: ([^:]+)") or err
  local where = path2 and (path .. " -> " .. path2) or path
  error(weft.error("IOError", ("%s %s: %s (%s)"):format(op, where, desc, code),
    { code = code, path = path }), 3)
end

local function argerror(fname, n, msg)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), 4)
end

-- The type name luaL_typeerror would give: a metatable's __name first.
local function typename(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and type(mt.__name) == "string" and mt.__name or type(v)
end

local function check_path(fname, n, v)
  if type(v) ~= "string" then argerror(fname, n, "string expected, got " .. type(v)) end
end

-- An options table: nil or a table, as Lua's own libraries check.
local function check_opts(fname, n, v)
  if v ~= nil and type(v) ~= "table" then argerror(fname, n, "table expected, got " .. typename(v)) end
  return v
end

--- Calls luv's fs function `fn(...)` with a callback and awaits it. Returns
-- ok, results...; `release(results...)` runs if the caller left first.
local pool_sized = false

local function request(fn, release, ...)
  if not pool_sized then   -- these run on libuv's thread pool: start it on first use
    weft._size_pool()
    pool_sized = true
  end
  local f = weft.future()
  local args = pack(...)
  local left = false
  args.n = args.n + 1
  args[args.n] = function(err, a, b)
    if left then
      if not err and release then release(a, b) end
      return
    end
    if err then f:set(false, err) else f:set(true, a, b) end
  end
  local req, err = fn(unpack(args, 1, args.n))
  if not req then return false, err end
  local ok, r1, r2, r3 = pcall(f.await, f)
  if not ok then
    left = true
    pcall(uv.cancel, req)
    error(r1, 0)
  end
  return r1, r2, r3
end

local function close_fd(fd) uv.fs_close(fd) end

local function open_fd(op, path, flags, mode)
  local ok, fd = request(uv.fs_open, close_fd, path, flags, mode or 438)
  if not ok then fail(op, fd, path) end
  return fd
end

local function read_fd(fd, size, offset)
  local ok, data = request(uv.fs_read, nil, fd, size, offset)
  return ok, data
end

--- Writes all of `data`: the kernel may take less than asked (a full disk
-- takes what fits), so the rest is written again until it all went or the
-- kernel says why not (ENOSPC). Offset -1 appends.
local function write_fd(fd, data, offset)
  local done = 0
  while done < #data do
    local rest = done == 0 and data or data:sub(done + 1)
    local ok, n = request(uv.fs_write, nil, fd, rest, offset < 0 and -1 or offset + done)
    if not ok then return false, n end
    if n == 0 then return false, "ENOSPC: no space left on device" end
    done = done + n
  end
  return true
end

-- Closes at once, not through a request: a close must also happen in a
-- task that is being cancelled or is failing, where awaiting raises (and
-- cancelled the request, leaking the descriptor). A close of a file does
-- not wait for the disk.
local function close_quietly(fd)
  uv.fs_close(fd)
end

--- Reads a whole file. Open, reads and close are chained in luv
-- callbacks, so the task waits once, not once per request.
-- @string path
-- @treturn string
function M.read(path)
  check_path("read", 1, path)
  local done, left, parts, offset, fd = weft.future(), false, {}, 0, nil
  local function finish(err)
    if fd then uv.fs_close(fd, function() end) fd = nil end
    if not left then
      if err then done:set(false, err) else done:set(true, concat(parts)) end
    end
  end
  local function on_read(err, data)
    if err or left then return finish(err) end
    if data == "" then return finish() end
    parts[#parts + 1] = data
    offset = offset + #data
    uv.fs_read(fd, 65536, offset, on_read)
  end
  local req, err = uv.fs_open(path, "r", 438, function(err, opened)
    if err then return finish(err) end
    fd = opened
    if left then return finish() end
    uv.fs_read(fd, 65536, 0, on_read)
  end)
  if not req then fail("read", err, path) end
  local ok, r1, r2 = pcall(done.await, done)
  if not ok then   -- cancelled: the chain stops at its next step and closes
    left = true
    pcall(uv.cancel, req)
    error(r1, 0)
  end
  if not r1 then fail("read", r2, path) end
  return r2
end

local function write_all(op, path, data, flags)
  check_path(op, 1, path)
  if type(data) ~= "string" then
    error(("bad argument #2 to '%s' (string expected, got %s)"):format(op, type(data)), 3)
  end
  local fd = open_fd(op, path, flags)
  local done, ok, err = pcall(write_fd, fd, data, flags == "a" and -1 or 0)
  close_quietly(fd)
  if not done then error(ok, 0) end   -- cancelled: the descriptor is closed
  if not ok then fail(op, err, path) end
end

--- Writes a whole file, creating or truncating it.
function M.write(path, data) write_all("write", path, data, "w") end

--- Appends to a file, creating it.
function M.append(path, data) write_all("append", path, data, "a") end

local function stat_table(st)
  return {
    type = st.type,
    size = st.size,
    mtime = st.mtime.sec + st.mtime.nsec * 1e-9,
    mode = st.mode & 4095,
  }
end

local function do_stat(op, fn, path)
  check_path(op, 1, path)
  local ok, st = request(fn, nil, path)
  if not ok then fail(op, st, path) end
  return stat_table(st)
end

--- `{type=, size=, mtime=, mode=}` of a path, following links.
function M.stat(path) return do_stat("stat", uv.fs_stat, path) end

--- As stat, but a link is reported as `type = "link"`.
function M.lstat(path) return do_stat("lstat", uv.fs_lstat, path) end

--- Does the path exist?
function M.exists(path)
  check_path("exists", 1, path)
  return (request(uv.fs_stat, nil, path))
end

local function mkdir_one(path)
  local ok, err = request(uv.fs_mkdir, nil, path, 511)
  return ok, err
end

--- Creates a directory; with `{parents=true}` as `mkdir -p`.
function M.mkdir(path, opts)
  check_path("mkdir", 1, path)
  check_opts("mkdir", 2, opts)
  local ok, err = mkdir_one(path)
  if ok then return end
  if not (opts and opts.parents) then fail("mkdir", err, path) end
  if err:match("^EEXIST") then
    if M.stat(path).type == "directory" then return end
    fail("mkdir", err, path)
  end
  local parent = path:match("^(.*[^/])/+[^/]+/*$")
  if parent and err:match("^ENOENT") then
    M.mkdir(parent, opts)
    ok, err = mkdir_one(path)
    if ok or (err:match("^EEXIST") and M.stat(path).type == "directory") then return end
  end
  fail("mkdir", err, path)
end

local function scandir(op, dir)
  local ok, req = request(uv.fs_scandir, nil, dir)
  if not ok then fail(op, req, dir) end
  local names = {}
  while true do
    local name = uv.fs_scandir_next(req)
    if not name then break end
    names[#names + 1] = name
  end
  sort(names)
  return names
end

local function remove_tree(path)
  local ok, st = request(uv.fs_lstat, nil, path)
  if not ok then
    if st:match("^ENOENT") then return end
    fail("remove", st, path)
  end
  if st.type == "directory" then
    for _, name in ipairs(scandir("remove", path)) do remove_tree(path .. "/" .. name) end
    local ok2, err = request(uv.fs_rmdir, nil, path)
    if not ok2 and not err:match("^ENOENT") then fail("remove", err, path) end
  else
    local ok2, err = request(uv.fs_unlink, nil, path)
    if not ok2 and not err:match("^ENOENT") then fail("remove", err, path) end
  end
end

--- Removes a file or empty directory; with `{recursive=true}` a whole tree
-- (a missing path is then fine, as `rm -rf`).
function M.remove(path, opts)
  check_path("remove", 1, path)
  check_opts("remove", 2, opts)
  if opts and opts.recursive then return remove_tree(path) end
  local ok, st = request(uv.fs_lstat, nil, path)
  if not ok then fail("remove", st, path) end
  local err
  if st.type == "directory" then
    ok, err = request(uv.fs_rmdir, nil, path)
  else
    ok, err = request(uv.fs_unlink, nil, path)
  end
  if not ok then fail("remove", err, path) end
end

--- Renames (moves) a path.
function M.rename(from, to)
  check_path("rename", 1, from)
  check_path("rename", 2, to)
  local ok, err = request(uv.fs_rename, nil, from, to)
  if not ok then fail("rename", err, from, to) end
end

--- Copies a file.
function M.copy(from, to)
  check_path("copy", 1, from)
  check_path("copy", 2, to)
  local ok, err = request(uv.fs_copyfile, nil, from, to)
  if not ok then fail("copy", err, from, to) end
end

--- Names in a directory, sorted byte-wise, without `.` and `..`.
function M.list(dir)
  check_path("list", 1, dir)
  return scandir("list", dir)
end

--- Creates a fresh directory in $TMPDIR (else /tmp) and returns its path.
function M.tempdir(prefix)
  prefix = prefix or "weft-"
  check_path("tempdir", 1, prefix)
  local base = os.getenv("TMPDIR") or "/tmp"
  local template = base .. "/" .. prefix .. "XXXXXX"
  local ok, path = request(uv.fs_mkdtemp, nil, template)
  if not ok then fail("tempdir", path, template) end
  return path
end

--- The XXH3-128 digest of a file's content, as 32 hex digits (what
-- incremental pipelines compare; issue 13). Reads the file on the calling
-- thread.
function M.hash(path)
  check_path("hash", 1, path)
  local h, err, code = weft._hash.file(path)
  if not h then fail("hash", code .. ": " .. err:gsub("^hash [^:]*: ", ""), path) end
  return h
end

-- {======== files

local File = {}
File.__index = File
File.__name = "weft.file"

local modes = { r = "r", w = "w", a = "a", ["r+"] = "r+", ["w+"] = "w+", ["a+"] = "a+" }

--- Opens a file; `mode` as io.open's. Returns a file whose methods suspend
-- the task instead of blocking the loop.
function M.open(path, mode)
  check_path("open", 1, path)
  mode = mode or "r"
  check_path("open", 2, mode)
  local flags = modes[(mode:gsub("b", ""))]
  if not flags then error(("bad argument #2 to 'open' (invalid mode '%s')"):format(mode), 2) end
  local fd = open_fd("open", path, flags)
  return setmetatable({ fd = fd, path = path, base = 0, buf = "", off = 1, append = flags:sub(1, 1) == "a" }, File)
end

local function checkfile(f, name, closed_ok)
  if getmetatable(f) ~= File then
    error(("bad argument #1 to '%s' (weft.file expected, got %s)"):format(name, typename(f)), 3)
  end
  if not f.fd and not closed_ok then error("attempt to use a closed file", 3) end
end

-- The read buffer: f.buf holds bytes read ahead from file offset f.base,
-- the unread ones from index f.off on, so the file position is
-- f.base + f.off - 1. Taking a line only moves f.off (copying the rest of
-- the buffer made each line cost a 64 KiB copy).
local CHUNK = 262144
local find, sub = string.find, string.sub

local function avail(f) return #f.buf - f.off + 1 end
local function position(f) return f.base + f.off - 1 end

-- Reads more into the buffer; false at end of file.
local function fill(f)
  local ok, data = read_fd(f.fd, CHUNK, f.base + #f.buf)
  if not ok then fail("read", data, f.path) end
  if data == "" then return false end
  f.base = position(f)
  if f.off > #f.buf then f.buf = data else f.buf = sub(f.buf, f.off) .. data end
  f.off = 1
  return true
end

local function take(f, n)
  local off = f.off
  local s = sub(f.buf, off, off + n - 1)
  f.off = off + #s
  return s
end

local function read_line(f, keep)
  while true do
    local buf, off = f.buf, f.off
    local i = find(buf, "\n", off, true)
    if i then
      f.off = i + 1
      return sub(buf, off, keep and i or i - 1)
    end
    if not fill(f) then
      if avail(f) == 0 then return nil end
      return take(f, avail(f))
    end
  end
end

local function read_number(f)
  while avail(f) < 256 and fill(f) do end
  f.base, f.buf, f.off = position(f), sub(f.buf, f.off), 1
  local ws, num = f.buf:match("^(%s*)([%+%-]?[%w%.]*[%+%-]?[%w%.]*)")
  local n = tonumber(num)
  if not n then
    -- the longest prefix that is a number
    for len = #num - 1, 1, -1 do
      n = tonumber(num:sub(1, len))
      if n then num = num:sub(1, len); break end
    end
  end
  if not n then return nil end
  take(f, #ws + #num)
  return n
end

local function read_one(f, fmt)
  if type(fmt) == "number" then
    while avail(f) < fmt and fill(f) do end
    if fmt > 0 and avail(f) == 0 then return nil end
    if fmt == 0 then return (avail(f) > 0 or fill(f)) and "" or nil end
    return take(f, fmt)
  end
  if type(fmt) ~= "string" then error("bad argument #1 to 'read' (invalid format)", 3) end
  fmt = fmt:gsub("^%*", ""):sub(1, 1)
  if fmt == "l" then return read_line(f, false) end
  if fmt == "L" then return read_line(f, true) end
  if fmt == "n" then return read_number(f) end
  if fmt == "a" then
    while fill(f) do end
    return take(f, avail(f))
  end
  error(("bad argument #1 to 'read' (invalid format '%s')"):format(fmt), 3)
end

--- Reads by formats "n", "l", "L", "a" or a byte count, as Lua's files.
function File:read(...)
  checkfile(self, "read")
  local n = select("#", ...)
  if n == 0 then return read_one(self, "l") end
  local out = {}
  for i = 1, n do
    out[i] = read_one(self, (select(i, ...)))
    if out[i] == nil then return unpack(out, 1, i) end
  end
  return unpack(out, 1, n)
end

--- Writes strings or numbers; returns the file.
function File:write(...)
  checkfile(self, "write")
  local parts = pack(...)
  for i = 1, parts.n do
    local v = parts[i]
    if type(v) ~= "string" and type(v) ~= "number" then
      error(("bad argument #%d to 'write' (string expected, got %s)"):format(i, type(v)), 2)
    end
    parts[i] = tostring(v)
  end
  local data = concat(parts, "", 1, parts.n)
  local pos = position(self)
  local ok, err = write_fd(self.fd, data, self.append and -1 or pos)
  if not ok then fail("write", err, self.path) end
  self.buf, self.off = "", 1
  self.base = self.append and pos or pos + #data
  return self
end

--- An iterator over reads with the given formats (default "l").
function File:lines(...)
  checkfile(self, "lines")
  local fmts = pack(...)
  if fmts.n == 0 then   -- the common case, without read's format dispatch
    return function()
      local buf, off = self.buf, self.off
      local i = find(buf, "\n", off, true)
      if i and self.fd then
        self.off = i + 1
        return sub(buf, off, i - 1)
      end
      checkfile(self, "lines")
      return read_line(self, false)
    end
  end
  return function() return self:read(unpack(fmts, 1, fmts.n)) end
end

--- Sets or gets the position: whence "set", "cur" (default) or "end".
function File:seek(whence, offset)
  checkfile(self, "seek")
  whence, offset = whence or "cur", offset or 0
  if type(whence) ~= "string" then
    error(("bad argument #1 to 'seek' (string expected, got %s)"):format(type(whence)), 2)
  end
  if math.type(offset) ~= "integer" then
    local n = math.tointeger(offset)
    if not n then
      error(("bad argument #2 to 'seek' (%s)"):format(type(offset) == "number" and
        "number has no integer representation" or "number expected, got " .. type(offset)), 2)
    end
    offset = n
  end
  local base
  if whence == "set" then base = 0
  elseif whence == "cur" then base = position(self)
  elseif whence == "end" then
    local ok, st = request(uv.fs_fstat, nil, self.fd)
    if not ok then fail("seek", st, self.path) end
    base = st.size
  else
    error(("bad argument #1 to 'seek' (invalid option '%s')"):format(whence), 2)
  end
  self.base, self.buf, self.off = base + offset, "", 1
  return self.base
end

--- Closes the file (again is fine).
function File:close()
  checkfile(self, "close", true)
  if self.fd then
    local fd = self.fd
    self.fd = nil
    close_quietly(fd)
  end
  return true
end

-- <close> runs while the scope ends, also in a task that failed or was
-- cancelled: File.close does not await, so the descriptor never outlives it.
File.__close = function(f)
  if getmetatable(f) == File and f.fd then File.close(f) end
end
File.__gc = function(f) if f.fd then uv.fs_close(f.fd); f.fd = nil end end
File.__tostring = function(f)
  return f.fd and ("weft.file (%s)"):format(f.path) or "weft.file (closed)"
end

-- }========

-- {======== watch

local Watcher = {}
Watcher.__index = Watcher
Watcher.__name = "weft.watcher"

--- Watches a file or directory; `w:next()` returns `name, event`.
function M.watch(path)
  check_path("watch", 1, path)
  local ev = uv.new_fs_event()
  local q = weft.queue()
  local ok, err = ev:start(path, {}, function(e, name, events)
    if e then return end
    q:put_nowait({ name, events.rename and "rename" or "change" })
  end)
  if not ok then
    ev:close()
    fail("watch", err, path)
  end
  return setmetatable({ ev = ev, q = q }, Watcher)
end

--- Waits for the next change: `name, event`; nil after close.
local function checkwatcher(w, name)
  if getmetatable(w) ~= Watcher then
    error(("bad argument #1 to '%s' (weft.watcher expected, got %s)"):format(name, typename(w)), 3)
  end
end

function Watcher:next()
  checkwatcher(self, "next")
  if not self.ev then return nil end
  local item = self.q:get()
  if not self.ev then return nil end
  if item then return item[1], item[2] end
  return nil
end

--- Stops watching; later `next()` returns nil.
function Watcher:close()
  checkwatcher(self, "close")
  if self.ev then
    self.ev:close()
    self.ev = nil
    self.q:close()
  end
end

Watcher.__close = Watcher.close

-- }========

return M
