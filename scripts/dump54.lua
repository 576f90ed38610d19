-- Lua 5.4's dump format (string.dump's bytes), read as lundump.c reads it
-- and written back with parts of every function prototype left out. Used
-- by scripts/embed.lua (local names out of the embedded stdlib) and by
-- spec/startup_spec.lua (lines out: the bytes host/hash.c's definition
-- digest must see, read here independently of its C reader).
--   local dump54 = dofile("scripts/dump54.lua")
--   dump54.rewrite(string.dump(fn), { no_locals = true, no_lines = true })
local M = {}

--- Rewrites a 5.4 dump. `opts.no_lines`: each prototype's linedefined and
-- lastlinedefined written as 0; `opts.no_locals`: its local variable names
-- left out. A dump of another format is returned unchanged.
-- @tparam string code what string.dump wrote
-- @tparam table opts
-- @treturn string
function M.rewrite(code, opts)
  if code:sub(1, 6) ~= "\27Lua\x54\0" then return code end
  local pos, out = 1, {}
  local function copy(n)
    out[#out + 1] = code:sub(pos, pos + n - 1)
    pos = pos + n
  end
  local function size(keep)   -- dumpSize: 7 bits a byte, the last one with 0x80
    local start, n, b = pos, 0, 0
    repeat
      b = code:byte(pos)
      n = (n << 7) | (b & 0x7f)
      pos = pos + 1
    until b & 0x80 ~= 0
    if keep then out[#out + 1] = code:sub(start, pos - 1) end
    return n
  end
  local function string_(keep)   -- size + 1, 0 for none
    local n = size(keep)
    if n == 0 then return end
    if keep then copy(n - 1) else pos = pos + n - 1 end
  end
  local function func()
    string_(true)                 -- source
    if opts.no_lines then         -- linedefined, lastlinedefined
      size(false); size(false)
      out[#out + 1] = "\x80\x80"
    else
      size(true); size(true)
    end
    copy(3)                       -- numparams, is_vararg, maxstacksize
    copy(4 * size(true))          -- code
    for _ = 1, size(true) do      -- constants: a type byte, then the value
      local tag = code:byte(pos)
      copy(1)
      if tag == 0x03 or tag == 0x13 then copy(8)          -- integer, float
      elseif tag == 0x04 or tag == 0x14 then string_(true) end
    end
    copy(3 * size(true))          -- upvalues: instack, idx, kind
    for _ = 1, size(true) do func() end
    copy(size(true))              -- lineinfo
    for _ = 1, size(true) do size(true); size(true) end   -- abslineinfo
    local keep = not opts.no_locals
    for _ = 1, size(keep) do string_(keep); size(keep); size(keep) end   -- locals
    if not keep then out[#out + 1] = "\x80" end   -- none
    for _ = 1, size(true) do string_(true) end   -- upvalue names
  end
  copy(4 + 1 + 1 + 6 + 3 + 8 + 8 + 1)   -- header, then the main closure's upvalue count
  func()
  assert(pos == #code + 1, "dump54: unexpected bytes after the main function")
  return table.concat(out)
end

return M
