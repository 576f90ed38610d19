--- Retries with exponential backoff and a per-attempt timeout, around a
-- pipeline task's body. The timeout is `weft.timeout`: on expiry the task is
-- cancelled at its await point, so a running `weft.sh` terminates its whole
-- process group (TERM, then KILL after the grace period) before the attempt
-- counts as failed.
-- @module weft.retry
local weft = require "weft"

local M = {}

--- Seconds to wait before attempt `n + 1` after attempt `n` failed:
-- `backoff * 2^(n-1)`, capped at 60 s.
-- @number backoff the first delay
-- @int n the attempt that failed (1-based)
function M.delay(backoff, n)
  return math.min(60, (backoff or 1) * 2 ^ (n - 1))
end

local function is_cancel(err)
  return type(err) == "table" and err.kind == "Cancelled"
end

-- Is this traceback line one of weft's own frames (or a C frame of the
-- machinery around a task body)?
local function weft_frame(line)
  return line:find("^%s*%[C%]: in ") ~= nil or line:find("weft[/.][%w_/.]+%.lua:") ~= nil
    or line:find("^%s*%(%.%.%.tail calls%.%.%.%)") ~= nil
    or line:find("^%s*%[string \"weft") ~= nil
    or line:find("^%s*weft[%w_.]*:%d+:") ~= nil   -- embedded stdlib chunks
end

--- A Lua error's traceback, without weft's own frames: the user's frames
-- from the erroring function out to the task body. "" if none is left.
-- @string tb what debug.traceback returned
function M.trim_traceback(tb)
  local kept = {}
  for line in tb:gmatch("[^\n]+") do
    if line ~= "stack traceback:" and not weft_frame(line) then
      kept[#kept + 1] = line:gsub("^%s+", "  ")
    end
  end
  if #kept == 0 then return "" end
  return "stack traceback:\n" .. table.concat(kept, "\n")
end

-- Runs fn(ctx), keeping the traceback of a Lua error (an error that is a
-- string: weft's own error values are tables and carry their own story).
local function traced(rec, fn, ctx)
  local ok, err = xpcall(fn, function(e)
    if type(e) == "string" then
      rec.traceback = M.trim_traceback(debug.traceback("", 2))
    end
    return e
  end, ctx)
  if not ok then error(err, 0) end
end

local function attempt_once(rec, fn, ctx)
  rec.traceback = nil
  if rec.timeout then
    return weft.timeout(rec.timeout, traced, rec, fn, ctx)
  end
  return traced(rec, fn, ctx)
end

--- Runs `fn(ctx)` (ctx = `{name=, attempt=}`) up to `rec.retries + 1`
-- times, each attempt bounded by `rec.timeout` seconds when set, sleeping
-- `delay(rec.backoff, n)` between attempts. A cancellation from outside is
-- never retried. Sets `rec.attempts` and `rec.spans` (one `{start=, finish=,
-- ok=, error=}` per attempt, for the report's bars). Raises the last error.
-- @tab rec the task record (`retries`, `timeout`, `backoff`)
-- @func fn
-- @tab[opt] reporter told `retrying(rec, attempt, err, delay)`
-- @tab[opt] methods more fields of ctx (the pipeline's `add`)
function M.run(rec, fn, reporter, methods)
  local attempts = (rec.retries or 0) + 1
  for n = 1, attempts do
    rec.attempts = n
    local span = { start = weft.now() }
    rec.spans = rec.spans or {}
    rec.spans[n] = span
    local ctx = { name = rec.name, attempt = n }
    for k, v in pairs(methods or {}) do ctx[k] = v end
    local ok, err = pcall(attempt_once, rec, fn, ctx)
    span.finish, span.ok, span.error = weft.now(), ok, not ok and err or nil
    if ok then return end
    if is_cancel(err) or n == attempts then error(err, 0) end
    local d = M.delay(rec.backoff, n)
    if reporter and reporter.retrying then reporter:retrying(rec, n, err, d) end
    weft.sleep(d)
  end
end

return M
