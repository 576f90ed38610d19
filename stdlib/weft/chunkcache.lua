--- The compiled Weftfile, kept in `.weft/` beside it, so that a `weft run`
-- whose Weftfile did not change loads its bytecode instead of parsing its
-- text (issue 13: parsing the Weftfile was a tenth of a no-op run's work).
--
-- The file `.weft/NAME.luac` holds "KEY DIGEST\n" and the bytecode. KEY is
-- the XXH3-128 of what the bytecode is a function of: the Weftfile's text,
-- its chunk name (in the debug info, so messages and task locations are the
-- text's) and the running Lua's release (bytecode is valid only for the
-- release that wrote it, the rule host/module.c applies to the stdlib).
-- DIGEST is the bytecode's: a damaged file is not loaded (Lua does not check
-- bytecode), the text is. Anything amiss means the text is parsed, as
-- without a cache.
--
-- It is only read and written where `.weft/` exists, i.e. beside a Weftfile
-- with incremental tasks, and written by the run holding the state's lock
-- (weft.incremental calls `save`), never by `weft why`. Whoever can write
-- `.weft/` can write the Weftfile beside it: the bytecode is trusted as the
-- text is.
-- @module weft.chunkcache
local weft = require "weft"
local H = weft._hash

local M = {}

local function cache_file(path)
  local dir = path:match("^(.*)/[^/]*$") or "."
  return dir .. "/.weft/" .. path:match("([^/]*)$") .. ".luac"
end

--- Loads the Weftfile text `src` of pipeline `P` (P.file its path) as
-- `load(src, chunkname, "t", env)` does, from the cache when it holds it.
-- A chunk parsed from the text is kept on P for `save`.
-- @return the chunk, or nil and the syntax error
function M.load(P, src, chunkname, env)
  local path = cache_file(P.file)
  local key = H.string(H.lua_ident .. "\0" .. chunkname .. "\0" .. src)
  local f = io.open(path, "rb")
  if f then
    local data = f:read("a")
    f:close()
    if data and data:sub(1, 32) == key and data:sub(33, 33) == " " and data:sub(66, 66) == "\n" then
      local bc = data:sub(67)
      local chunk = H.string(bc) == data:sub(34, 65) and load(bc, chunkname, "b", env)
      if chunk then return chunk end
    end
  end
  local chunk, err = load(src, chunkname, "t", env)
  if chunk then P.chunk_cache = { path = path, key = key, chunk = chunk } end
  return chunk, err
end

--- Writes the chunk `load` parsed for `P` (if any) to `.weft/`; a failure
-- only means the next run parses the text again. Call with the state's lock.
function M.save(P)
  local c = P.chunk_cache
  if not c then return end
  P.chunk_cache = nil
  pcall(function()
    local bc = string.dump(c.chunk)
    local tmp = c.path .. ".tmp"
    local f = io.open(tmp, "wb")
    if not f then return end
    local ok = f:write(c.key, " ", H.string(bc), "\n", bc)
    ok = f:close() and ok and os.rename(tmp, c.path)
    if not ok then os.remove(tmp) end
  end)
end

return M
