--- Environments for untrusted scripts (weft.h weft_sandbox, docs/embedding.md "Sandbox").
-- A sandbox is a fresh table of globals: the safe base functions, copies of
-- the safe libraries and a copy of weft without what reaches the system.
-- What it leaves out can be let back in by name with an allow-list.
local M = {}

local weft = require "weft"

local base = {
  "assert", "error", "ipairs", "next", "pairs", "pcall", "print", "rawequal", "rawget",
  "rawlen", "rawset", "select", "tonumber", "tostring", "type", "xpcall", "_VERSION", "warn",
}
local libraries = { "string", "table", "math", "utf8", "coroutine" }
local removed = { string = { dump = true } }
local weft_safe = {
  "condition", "current", "error", "event", "future", "gather", "group", "is_error", "json",
  "lock", "now", "queue", "run", "run_graph", "semaphore", "sleep", "sorter", "spawn",
  "timeout", "version", "wait", "wait_for", "yield",
}

local function copy(t, without)
  local c = {}
  for k, v in pairs(t) do
    if not (without and without[k]) then c[k] = v end
  end
  return c
end

-- getmetatable shows only metatables the sandbox set itself: the string
-- metatable and weft's classes are shared with the host.
local function metatable_functions()
  local made = setmetatable({}, { __mode = "k" })
  local function sandbox_setmetatable(t, mt)
    if type(mt) == "table" then
      if rawget(mt, "__gc") ~= nil then
        error("setmetatable: __gc metamethods are not allowed in the sandbox", 2)
      end
      made[mt] = true
    end
    return setmetatable(t, mt)
  end
  local function sandbox_getmetatable(v)
    local mt = getmetatable(v)
    if type(mt) == "table" and made[mt] then return mt end
    return nil
  end
  return sandbox_setmetatable, sandbox_getmetatable
end

local function sandbox_load(env)
  return function(...)
    local chunk, name, mode, chunk_env = ...
    if mode ~= nil and mode ~= "t" then
      return nil, "load: only text chunks in the sandbox (mode 't')"
    end
    if select("#", ...) < 4 then chunk_env = env end
    return load(chunk, name, "t", chunk_env)
  end
end

local function resolve(path)
  local lib, field = path:match("^([%a_][%w_]*)%.([%a_][%w_]*)$")
  if lib then
    local t = lib == "weft" and weft or _G[lib]
    if type(t) ~= "table" or t[field] == nil then
      error(("sandbox: cannot allow '%s': no such field"):format(path), 0)
    end
    return lib, field, t[field]
  end
  if not path:match("^[%a_][%w_]*$") or _G[path] == nil then
    error(("sandbox: cannot allow '%s': no such global"):format(path), 0)
  end
  return path, nil, _G[path]
end

--- A new environment for untrusted code.
-- @tparam[opt] {string,...} allow globals ("os") or fields ("os.time",
--   "weft.fs") to add from the full state
-- @treturn table the environment (its _G is itself)
function M.new(allow)
  local env = {}
  for _, name in ipairs(base) do env[name] = _G[name] end
  for _, name in ipairs(libraries) do env[name] = copy(_G[name], removed[name]) end
  env.weft = {}
  for _, name in ipairs(weft_safe) do env.weft[name] = weft[name] end
  env.setmetatable, env.getmetatable = metatable_functions()
  env.load = sandbox_load(env)
  env._G = env
  for _, path in ipairs(allow or {}) do
    local lib, field, value = resolve(path)
    if field then
      if type(env[lib]) ~= "table" then env[lib] = {} end
      env[lib][field] = value
    else
      env[lib] = value
    end
  end
  return env
end

return M
