--- The text of a task's definition, stored beside its definition hash
-- (weft._hash.defhash) in .weft/state.db: what a reason names when a task
-- runs because its definition changed ("CFLAGS changed: -O2 -> -O0"). Split
-- from weft.incremental, which loads it when a task's fast check fails: a
-- no-op run never builds this text (issue 13).
-- @module weft.incremental_text
local weft = require "weft"
local H = weft._hash

local M = {}

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
  local code = H.code(f)   -- its bytecode, wherever it stands in the file
  if not code then return "<cfunction>" end
  seen[f] = true
  local parts = { "fn:" .. code }
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
-- The key compared from run to run is weft._hash.defhash over the same
-- things (no text built on a no-op run); this text is stored beside it, for
-- the reason a changed definition gives.
-- @tab rec the task's record (`spec`, `fn`)
-- @tab names the key fields, sorted (weft.incremental's key_field_names)
function M.definition(rec, names)
  memo = {}
  local parts = {}
  for _, k in ipairs(names) do
    local v = rec.spec and rec.spec[k]
    if v ~= nil then parts[#parts + 1] = { "field " .. k, serialize(v, {}, 0) } end
  end
  local fn = rec.fn
  if fn then
    parts[#parts + 1] = { "body", H.code(fn) or "<cfunction>" }
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

--- "name\0value\0..." : serialize() escapes every \0 inside a value (%q).
function M.encode_parts(parts)
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

--- `s`, cut to 60 characters for a message.
function M.short(s)
  if #s > 60 then return s:sub(1, 57) .. "..." end
  return s
end

--- The first part that differs between the recorded and the current definition.
function M.definition_reason(old_text, parts)
  local old = {}
  for _, p in ipairs(decode_parts(old_text)) do old[p[1]] = p[2] end
  local now = {}
  for _, p in ipairs(parts) do
    now[p[1]] = true
    local was = old[p[1]]
    if was ~= p[2] then
      if p[1] == "body" then return "its body changed" end
      if was == nil then return ("%s is new: %s"):format(p[1], M.short(p[2])) end
      return ("%s changed: %s -> %s"):format(p[1], M.short(was), M.short(p[2]))
    end
  end
  for k, v in pairs(old) do
    if not now[k] then return ("%s was removed (was %s)"):format(k, M.short(v)) end
  end
  return "its definition changed"
end

return M
