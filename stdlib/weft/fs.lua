--- weft.fs: files and directories without blocking the loop. Every call
-- is a luv fs request whose callback resolves a future the calling task
-- awaits, so each one suspends only its task and is a cancellation point.
-- A cancelled call cancels its request when libuv still can; otherwise the
-- callback releases what the request made (an opened descriptor is closed).
-- `glob` is the exception: it lists directories synchronously (see there).
-- Failures raise `IOError` with `code` (libuv's name), `path` (the first path)
-- and a message naming the code and every path. User docs: docs/io.md (weft.fs).
-- @module weft.fs
local weft = require "weft"
local sys, H = weft._sys, weft._hash

local M = {}

local sort = table.sort

local function argerror(fname, n, msg)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), 4)
end

local function check_path(fname, n, v)
  if type(v) ~= "string" then argerror(fname, n, "string expected, got " .. type(v)) end
end

-- {======== glob

-- name -> does it match one segment with *, ? and [...]; nil if the segment
-- has no wildcard.
local segment_matcher = require("weft.globpat").matcher

local function join(dir, name)
  if dir == "" then return name end
  if dir:sub(-1) == "/" then return dir .. name end
  return dir .. "/" .. name
end

-- A glob reads directories, never file contents: it calls libuv synchronously
-- (the thread pool's start alone would cost more than a whole glob; issue 13),
-- through weft._sys and weft._hash, so that a Weftfile's glob opens no luv.

local function is_dir(path)
  return H.stat(path == "" and "." or path) == "directory"
end

local function entries(dir)
  return sys.scandir(dir == "" and "." or dir) or {}
end

local function glob_in(dir, segs, i, out)
  if i > #segs then
    out[#out + 1] = dir
    return
  end
  local seg = segs[i]
  if seg == "**" then
    glob_in(dir, segs, i + 1, out)          -- zero segments
    for _, name in ipairs(entries(dir)) do
      local p = join(dir, name)
      if name:sub(1, 1) ~= "." and is_dir(p) then glob_in(p, segs, i, out) end
    end
    return
  end
  local matches = segment_matcher(seg)
  if not matches then
    local p = join(dir, seg)
    if i == #segs then
      if sys.lexists(p) then out[#out + 1] = p end
    elseif is_dir(p) then
      glob_in(p, segs, i + 1, out)
    end
    return
  end
  for _, name in ipairs(entries(dir)) do
    if matches(name) and (name:sub(1, 1) ~= "." or seg:sub(1, 1) == ".") then
      local p = join(dir, name)
      if i == #segs then out[#out + 1] = p
      elseif is_dir(p) then glob_in(p, segs, i + 1, out) end
    end
  end
end

--- Paths matching `*`, `?`, `[...]` (within a segment) and `**` (across segments),
-- sorted byte-wise; wildcards do not match a leading dot.
function M.glob(pattern)
  check_path("glob", 1, pattern)
  local segs = {}
  for seg in pattern:gmatch("[^/]+") do segs[#segs + 1] = seg end
  local root = pattern:sub(1, 1) == "/" and "/" or ""
  local out, seen, uniq = {}, {}, {}
  glob_in(root, segs, 1, out)
  for _, p in ipairs(out) do
    if not seen[p] and p ~= "" then seen[p] = true; uniq[#uniq + 1] = p end
  end
  sort(uniq)
  return uniq
end

-- }========

-- The rest (stdlib/weft/fs_rest.lua) is loaded on first use of any other
-- name, or of pairs(): a Weftfile that only globs (issue 13) skips its load.
local function load_rest()
  for k, v in next, (require "weft.fs_rest") do
    if rawget(M, k) == nil then rawset(M, k, v) end
  end
  setmetatable(M, nil)
  -- tracebacks name these functions by where package.loaded holds them: weft.fs.read
  package.loaded["weft.fs_rest"] = nil
end

setmetatable(M, {
  __index = function(t, k)
    load_rest()
    return rawget(t, k)
  end,
  __pairs = function(t)
    load_rest()
    return next, t, nil
  end,
})

return M
