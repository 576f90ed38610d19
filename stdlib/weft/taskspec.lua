--- The fields a pipeline task may have, checked strictly. `task "x" {...}`
-- goes through `check`: an unknown field, a value of the wrong type or two
-- body functions is a usage error naming the field, the task and the line of
-- its declaration, with "did you mean" for a near name.
--
-- To add a field (e.g. for `ctx:add` or output modes), add one entry to
-- `M.FIELDS`: `{ check = function(v) return ok, what_was_expected end }`.
-- A field with `key = false` is left out of the incremental definition key
-- (weft.incremental), as `desc` is: changing it reruns nothing.
-- @module weft.taskspec
local M = {}

-- Integer keys only, strings only. The common case first, with no call per
-- key (every task of a Weftfile passes here, issue 13): n keys in all and n
-- strings at 1..n is exactly a list.
local function is_list_of_strings(v)
  local t = type(v)
  if t == "string" then return true end
  if t ~= "table" then return false end
  -- strings at 1..n and no key after them (next from n, a key rawlen
  -- guarantees): a list, without walking the table
  local n = rawlen(v)
  local i = 1
  while i <= n and type(v[i]) == "string" do i = i + 1 end
  if i > n and next(v, n > 0 and n or nil) == nil then return true end
  local count = 0
  for _ in pairs(v) do count = count + 1 end
  i = 1
  while i <= count and type(v[i]) == "string" do i = i + 1 end
  if i > count then return true end
  for k, x in pairs(v) do   -- holes ({ [1] = "a", [3] = "b" }) pass too
    if math.type(k) ~= "integer" or type(x) ~= "string" then return false end
  end
  return true
end

local function names(v) return is_list_of_strings(v), "a name or a list of names" end
local function paths(v) return is_list_of_strings(v), "a path or a list of paths" end

--- Every known field: name -> { check = fn(v) -> ok, expected [, key = false] }.
M.FIELDS = {
  fn = { check = function(v) return type(v) == "function", "a function" end },
  deps = { check = names },
  desc = { check = function(v) return type(v) == "string", "a string" end, key = false },
  timeout = { check = function(v) return type(v) == "number" and v > 0, "a positive number of seconds" end },
  retries = { check = function(v)
    return math.type(v) == "integer" and v >= 0, "a non-negative integer" end },
  backoff = { check = function(v) return type(v) == "number" and v >= 0, "a non-negative number" end },
  sources = { check = paths },
  generates = { check = paths },
  depfile = { check = function(v) return type(v) == "string", "a path" end },
  stdin = { check = function(v) return v == "inherit" or v == "null", '"inherit" or "null"' end },
}

--- Edit distance with transpositions (optimal string alignment), for "did
-- you mean": "biuld" is one edit from "build".
local function distance(a, b)
  local d = {}
  for i = 0, #a do d[i] = { [0] = i } end
  for j = 0, #b do d[0][j] = j end
  for i = 1, #a do
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      local v = math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        v = math.min(v, d[i - 2][j - 2] + 1)
      end
      d[i][j] = v
    end
  end
  return d[#a][#b]
end

--- The closest of `candidates` (strings) to `word`, if close enough.
function M.closest(word, candidates)
  local best, best_d
  for _, c in ipairs(candidates) do
    local d = distance(word, c)
    if not best_d or d < best_d or (d == best_d and c < best) then best, best_d = c, d end
  end
  if best and best_d <= math.max(1, math.floor(#word / 3)) then return best end
  -- a prefix ("dep" for "deps") counts as near too
  for _, c in ipairs(candidates) do
    if #word >= 2 and c:sub(1, #word) == word then return c end
  end
  return nil
end

--- " (did you mean 'x'?)" or "".
function M.did_you_mean(word, candidates, quote)
  local c = M.closest(word, candidates)
  if not c then return "" end
  quote = quote or "'"
  return (" (did you mean %s%s%s?)"):format(quote, c, quote)
end

local function field_names()
  local list = {}
  for k in pairs(M.FIELDS) do list[#list + 1] = k end
  table.sort(list)
  return list
end

--- Checks `spec` of task `name` declared at `at`; calls `fail(fmt, ...)`
-- (which raises) on the first problem. Returns the body function (or nil).
function M.check(name, spec, at, fail)
  local body = spec[1]
  if body ~= nil and spec.fn ~= nil then
    fail("%s: task %q has two body functions ([1] and fn)", at, name)
  end
  local fields = M.FIELDS
  for k, v in pairs(spec) do
    local field = type(k) == "string" and fields[k]
    if field then   -- the common case first (issue 13: every task passes here)
      local ok, expected = field.check(v)
      if not ok then
        fail("%s: task %q: field '%s' must be %s, got %s", at, name, k, expected,
          type(v) == "string" and ("%q"):format(v) or tostring(v))
      end
    elseif k == 1 then
      if type(v) ~= "function" then
        fail("%s: task %q: the body must be a function, got %s", at, name, type(v))
      end
    elseif math.type(k) == "integer" then
      fail("%s: task %q: unexpected value at [%d] (%s)%s", at, name, k, type(v),
        type(v) == "function" and ": two body functions" or "")
    else
      fail("%s: unknown field '%s' in task %q%s", at, tostring(k), name,
        type(k) == "string" and M.did_you_mean(k, field_names()) or "")
    end
  end
  return body or spec.fn
end

return M
