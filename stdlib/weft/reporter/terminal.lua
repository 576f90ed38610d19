--- Terminal reporter: the plain reporter's task output, plus a live area at
-- the bottom of the terminal: one line per running task (up to `lines`, the
-- longest-running first) with its elapsed time and its last output line,
-- above a status line with done/total, failures and the run's elapsed time:
--
--     build   12.3s  cc -c src/lgc.c
--     lint     3.1s  checking src/
--   [3/10] 2 running, 1 failed  1m02.3s
--
-- After Ctrl-C (or a failure without -k) the status line says
-- `stopping: waiting for 2 tasks (TERM sent)`. The area is erased before
-- task output is written and redrawn once per scheduler turn and ten times
-- a second by a ticker, so output and area never mix. Its width follows the
-- terminal (read at the start and on every SIGWINCH).
-- @module weft.reporter.terminal
local weft = require "weft"
local plain = require "weft.reporter.plain"
local output = require "weft.reporter.output"
local summary = require "weft.summary"

local M = {}

local Terminal = setmetatable({}, { __index = plain.Plain })
Terminal.__index = Terminal

-- The terminal's size: columns ($COLUMNS, else what stty says about
-- /dev/tty) and rows ($LINES, else stty; nil if unknown).
local function query_size(sh)
  local text = sh("stty size </dev/tty 2>/dev/null")
  local rows, cols = (text or ""):match("(%d+)%s+(%d+)")
  cols = tonumber(os.getenv("COLUMNS") or "") or tonumber(cols)
  rows = tonumber(os.getenv("LINES") or "") or tonumber(rows)
  return cols and cols > 0 and cols or nil, rows and rows > 0 and rows or nil
end

-- Task lines the area may take: `lines`, and at most a third of the rows.
local function area_lines_for(lines, rows)
  if not rows then return lines end
  return math.max(1, math.min(lines, rows // 3))
end

local function popen_read(cmd)
  local p = io.popen(cmd)
  if not p then return nil end
  local s = p:read("a")
  p:close()
  return s
end

--- A new terminal reporter (options as weft.reporter.plain, plus `lines`:
-- most task lines in the live area, default 8, and never more than a third
-- of the terminal's rows; `columns` to fix the width).
function M.new(opts)
  opts = opts or {}
  local self = plain.new(opts)
  self:output_layer()   -- the live area shows each task's last line through it
  self.running = {}
  self.last = setmetatable({}, { __mode = "k" })
  self.lines = opts.lines or 8
  local cols, rows = query_size(popen_read)
  self.columns = opts.columns or cols or 80
  self.max_lines = area_lines_for(self.lines, rows)
  self.fixed_columns = opts.columns ~= nil
  self.shown = 0
  return setmetatable(self, Terminal)
end

-- Cuts text to width bytes (a character is never cut in half).
local function fit(text, width)
  if width < 4 then return "" end
  if #text <= width then return text end
  local stop = width - 3
  while stop > 0 and (text:byte(stop + 1) or 0) & 0xC0 == 0x80 do stop = stop - 1 end
  return text:sub(1, stop) .. "..."
end

--- The lines of the live area for the current state (no escape codes).
-- @number now the clock
function Terminal:area_lines(now)
  local lines, width = {}, self.columns - 1
  local shown = math.min(#self.running, self.max_lines)
  local name_w = 0
  for i = 1, shown do name_w = math.max(name_w, #self.running[i].name) end
  for i = 1, shown do
    local rec = self.running[i]
    local text = ("  %-" .. name_w .. "s %7s  %s"):format(rec.name,
      summary.fmt_time(now - rec.start), self.last[rec] or "")
    lines[#lines + 1] = fit(text, width)
  end
  local status
  if self.stopping_n then
    status = ("stopping: waiting for %d task%s (TERM sent)"):format(self.stopping_n,
      self.stopping_n == 1 and "" or "s")
  else
    status = ("[%d/%d] %d running"):format(self.done, self.total, #self.running)
    if #self.running > shown then status = status .. (" (%d shown)"):format(shown) end
    if self.failed > 0 then status = status .. (", %d failed"):format(self.failed) end
  end
  local started = self.run and self.run.started or now
  lines[#lines + 1] = fit(status .. "  " .. summary.fmt_time(now - started), width)
  return lines
end

--- Erases the live area; the cursor ends where its first line was. The
-- rows each drawn line takes now are counted at the current width, since a
-- terminal made narrower rewraps them.
function Terminal:clear()
  if not self.drawn then return end
  local rows = 0
  for _, len in ipairs(self.drawn) do
    rows = rows + math.max(1, (len + self.columns - 1) // self.columns)
  end
  self.err:write("\r", rows > 1 and ("\27[%dA"):format(rows - 1) or "", "\27[J")
  self.drawn = nil
  self.shown = 0
end

function Terminal:draw()
  self.output:flush()
  local lines = self:area_lines(weft.now())
  self:clear()
  self.err:write(table.concat(lines, "\n"))
  self.err:flush()
  self.drawn = {}
  for i, l in ipairs(lines) do self.drawn[i] = #l end
  self.shown = #lines
end

function Terminal:begin(run)
  plain.Plain.begin(self, run)
  self.ticker = weft.spawn(function()
    local cancels = 0
    while true do
      -- Ctrl-C cancels every task, this one too: keep drawing (the area
      -- says "stopping") until finish() or a second cancellation
      if not pcall(weft.sleep, 0.1) then
        cancels = cancels + 1
        if self.closing or cancels > 1 then return end
      end
      self:draw()
    end
  end)
  self.ticker.name = "weft-status"
  if not self.fixed_columns then
    local ok, h = pcall(weft.on_signal, "SIGWINCH", function()
      -- read at once (a few ms), so no draw happens at the old width
      local cols, rows = query_size(popen_read)
      self.columns = cols or self.columns
      self.max_lines = area_lines_for(self.lines, rows)
      self:draw()
    end)
    if ok then self.winch = h end
  end
  self:draw()
end

-- Task output is about to be written: the area goes first.
local function make_room(self, rec, text)
  if self.shown > 0 then
    self.err:flush()
    self:clear()
    self.err:flush()
  end
  if rec then self.last[rec] = output.clean((weft._last_lines(text, 1))) end
end

function Terminal:line(rec, stream, text)
  make_room(self, rec, text)
  plain.Plain.line(self, rec, stream, text)
end

function Terminal:sunk(rec, stream, tail)
  make_room(self, rec, tail)
  plain.Plain.sunk(self, rec, stream, tail)
end

function Terminal:turn_ended()
  self:draw()
end

function Terminal:progress(msg)
  self:clear()
  plain.Plain.progress(self, msg)
  self:draw()
end

function Terminal:started(rec)
  self.running[#self.running + 1] = rec
  self:draw()
end

function Terminal:finished(rec)
  for i, r in ipairs(self.running) do
    if r == rec then table.remove(self.running, i) break end
  end
  self.done = self.done + 1
  if rec.status == "failed" then self.failed = self.failed + 1 end
  self:clear()
  self.output:finished(rec)
  if rec.status ~= "done" and rec.status ~= "up to date" then
    self.output:flush()
    self.err:write(self:paint(rec.status:upper(), 31), " ", rec.name, "\n")
  end
  self:draw()
end

function Terminal:stopping(n)
  self.stopping_n = n
  self:draw()
end

function Terminal:finish()
  self.closing = true
  if self.ticker then
    self.ticker:cancel()
    pcall(self.ticker.await, self.ticker)
    self.ticker = nil
  end
  if self.winch then
    self.winch:close()
    self.winch = nil
  end
  plain.Plain.finish(self)
  self:clear()
  self.err:flush()
end

return M
