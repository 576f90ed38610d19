--- Terminal reporter: the plain reporter's prefixed lines, plus a live
-- status line at the bottom of the terminal, as ninja draws it:
-- `[3/10] 2 running: build, lint 12.3s`. The line is redrawn on every event
-- and by a ticker task ten times a second; it is cleared before each output
-- line so the two never mix.
-- @module weft.reporter.terminal
local weft = require "weft"
local plain = require "weft.reporter.plain"

local M = {}

local Terminal = setmetatable({}, { __index = plain.Plain })
Terminal.__index = Terminal

--- A new terminal reporter (same options as weft.reporter.plain).
function M.new(opts)
  local self = plain.new(opts)
  self.running = {}
  self.columns = tonumber(os.getenv("COLUMNS") or "") or 100
  return setmetatable(self, Terminal)
end

--- The status text for the current state (no escape codes).
function Terminal:status_text()
  local names, oldest = {}, nil
  for _, rec in ipairs(self.running) do
    names[#names + 1] = rec.name
    if not oldest or rec.start < oldest then oldest = rec.start end
  end
  local text = ("[%d/%d] %d running"):format(self.done, self.total, #names)
  if #names > 0 then
    text = text .. ": " .. table.concat(names, ", ")
      .. (" %.1fs"):format(weft.now() - oldest)
  end
  if #text > self.columns - 1 then text = text:sub(1, self.columns - 4) .. "..." end
  return text
end

function Terminal:clear()
  if self.shown then
    self.err:write("\r\27[K")
    self.err:flush()
    self.shown = false
  end
end

function Terminal:draw()
  self.err:write("\r\27[K", self:status_text())
  self.err:flush()
  self.shown = true
end

function Terminal:begin(run)
  plain.Plain.begin(self, run)
  self.ticker = weft.spawn(function()
    while true do
      weft.sleep(0.1)
      self:draw()
    end
  end)
  self.ticker.name = "weft-status"
  self:draw()
end

function Terminal:line(rec, stream, text)
  self:clear()
  self.out:write(self:prefix(rec), stream == "stderr" and self:paint(text, 2) or text, "\n")
  self.out:flush()
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
  if rec.status ~= "done" and rec.status ~= "up to date" then
    self:clear()
    self.err:write(self:paint(rec.status:upper(), 31), " ", rec.name, "\n")
  end
  self:draw()
end

function Terminal:retrying(rec, n, err, delay)
  self:clear()
  plain.Plain.retrying(self, rec, n, err, delay)
  self:draw()
end

function Terminal:finish()
  if self.ticker then
    self.ticker:cancel()
    pcall(self.ticker.await, self.ticker)
    self.ticker = nil
  end
  self:clear()
end

return M
