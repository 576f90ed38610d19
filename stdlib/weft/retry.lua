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

local function attempt_once(rec, fn, ctx)
  if rec.timeout then
    return weft.timeout(rec.timeout, fn, ctx)
  end
  return fn(ctx)
end

--- Runs `fn(ctx)` (ctx = `{name=, attempt=}`) up to `rec.retries + 1`
-- times, each attempt bounded by `rec.timeout` seconds when set, sleeping
-- `delay(rec.backoff, n)` between attempts. A cancellation from outside is
-- never retried. Sets `rec.attempts`. Raises the last error.
-- @tab rec the task record (`retries`, `timeout`, `backoff`)
-- @func fn
-- @tab[opt] reporter told `retrying(rec, attempt, err, delay)`
function M.run(rec, fn, reporter)
  local attempts = (rec.retries or 0) + 1
  for n = 1, attempts do
    rec.attempts = n
    local ok, err = pcall(attempt_once, rec, fn, { name = rec.name, attempt = n })
    if ok then return end
    if is_cancel(err) or n == attempts then error(err, 0) end
    local d = M.delay(rec.backoff, n)
    if reporter and reporter.retrying then reporter:retrying(rec, n, err, d) end
    weft.sleep(d)
  end
end

return M
