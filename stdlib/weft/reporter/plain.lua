--- Plain reporter: every output line of a task on stdout, prefixed with the
-- task's name (padded to the longest selected name, coloured when `color`),
-- and one progress line per start, retry and end on stderr. Used when stderr
-- is not a terminal or CI is set; weft.reporter.terminal builds on it.
-- @module weft.reporter.plain
local M = {}

local Plain = {}
Plain.__index = Plain
M.Plain = Plain

local COLORS = { 36, 33, 35, 32, 34, 96, 93, 95, 92, 94 }

--- Should output be coloured? Only on a terminal, never with NO_COLOR set.
-- @bool tty
function M.want_color(tty)
  local nc = os.getenv("NO_COLOR")
  return tty and (nc == nil or nc == "")
end

--- A new plain reporter.
-- @tab[opt] opts `out`, `err` (files, default io.stdout/io.stderr), `color`
function M.new(opts)
  opts = opts or {}
  return setmetatable({
    out = opts.out or io.stdout, err = opts.err or io.stderr,
    color = opts.color, width = 0, done = 0, total = 0,
  }, Plain)
end

function Plain:paint(text, code)
  if not self.color then return text end
  return ("\27[%sm%s\27[0m"):format(code, text)
end

function Plain:prefix(rec)
  local name = rec and rec.name or "?"
  local pad = name .. (" "):rep(math.max(0, self.width - #name))
  if rec then
    pad = self:paint(pad, COLORS[(rec.index - 1) % #COLORS + 1])
  end
  return pad .. " | "
end

function Plain:begin(run)
  self.total = #run.list
  for _, rec in ipairs(run.list) do
    if #rec.name > self.width then self.width = #rec.name end
  end
end

function Plain:line(rec, stream, text)
  local line = self:prefix(rec) .. (stream == "stderr" and self:paint(text, 2) or text)
  self.out:write(line, "\n")
  self.out:flush()
end

function Plain:progress(msg)
  self.err:write(msg, "\n")
  self.err:flush()
end

function Plain:started(rec)
  self:progress(("[%d/%d] start %s"):format(self.done, self.total, rec.name))
end

function Plain:finished(rec)
  self.done = self.done + 1
  if rec.status == "up to date" then return end   -- not started, nothing to say
  local word = rec.status == "done" and "done" or rec.status:upper()
  if rec.status ~= "done" then word = self:paint(word, 31) end
  self:progress(("[%d/%d] %s %s (%.2fs)"):format(self.done, self.total, word, rec.name,
    (rec.finish or rec.start) - rec.start))
end

function Plain:retrying(rec, n, err, delay)
  self:progress(("retry %s: attempt %d failed (%s), next in %.1fs"):format(rec.name, n,
    tostring(err):gsub("\n.*", ""), delay))
end

function Plain:finish() end

return M
