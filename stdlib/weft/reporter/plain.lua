--- Plain reporter: every output line of a task on stdout through the output
-- layer (weft.reporter.output: `name | text`, grouped blocks or bare lines,
-- made harmless for the terminal), and one progress line per start, retry
-- and end on stderr. Used when stderr is not a terminal, TERM is dumb, or CI
-- is set; weft.reporter.terminal builds on it.
--
-- Task output is not flushed line by line: a flush runs once per scheduler
-- turn (a task spawned on the first line of a turn), before every progress
-- line and at the end, so stdout and stderr stay in order when both go to
-- the same place, at the cost of one write per turn instead of per line.
-- @module weft.reporter.plain
local weft = require "weft"

local M = {}

local Plain = {}
Plain.__index = Plain
M.Plain = Plain

--- Should output be coloured? Only on a terminal that is not TERM=dumb,
-- never with NO_COLOR set.
-- @bool tty
function M.want_color(tty)
  local nc = os.getenv("NO_COLOR")
  return tty and (nc == nil or nc == "") and os.getenv("TERM") ~= "dumb"
end

--- A new plain reporter.
-- @tab[opt] opts `out`, `err` (files, default io.stdout/io.stderr), `color`,
-- and the output layer's `mode`, `raw`, `ci` ("env": read from the
-- environment, see weft.reporter.output's ci_markers), `spill` (see
-- weft.reporter.output)
function M.new(opts)
  opts = opts or {}
  local out = opts.out or io.stdout
  return setmetatable({
    out = out, err = opts.err or io.stderr,
    color = opts.color, done = 0, total = 0, failed = 0,
    output = nil,   -- made by output_layer() when a task first writes
    output_opts = { out = out, mode = opts.mode, raw = opts.raw, color = opts.color,
      ci = opts.ci, spill = opts.spill },
    width_names = {},
  }, Plain)
end

--- The output layer, made on first use: a run whose tasks print nothing
-- (all up to date, issue 13) never loads weft.reporter.output.
function Plain:output_layer()
  local o = self.output
  if o then return o end
  local output = require "weft.reporter.output"
  local opts = self.output_opts
  if opts.ci == "env" then opts.ci = output.ci_markers() end
  o = output.new(opts)
  o:set_width(self.width_names)
  self.output = o
  return o
end

function Plain:paint(text, code)
  if not self.color then return text end
  return ("\27[%sm%s\27[0m"):format(code, text)
end

--- The prefix a line of `rec` gets on stdout.
function Plain:prefix(rec, stream)
  return self:output_layer():prefix(rec, stream)
end

function Plain:begin(run)
  self.total = #run.list
  self.run = run
  local names = self.width_names
  for i, rec in ipairs(run.list) do names[#names + 1] = rec.name end
  if self.output then self.output:set_width(names) end
end

--- A task joined the run while it goes on (ctx:add).
function Plain:added(rec)
  self.total = self.total + 1
  self.width_names[#self.width_names + 1] = rec.name
  if self.output then self.output:set_width({ rec.name }) end
  self:progress(("[%d/%d] added %s"):format(self.done, self.total, rec.name))
end

-- Flushes task output at the end of this scheduler turn.
function Plain:schedule_flush()
  -- once per turn: a flag, not a look at the flusher, as it runs per line
  -- (a flusher cancelled before it ran, by Ctrl-C, never clears it: the
  -- next progress line does)
  if self.flush_pending then return end
  if not weft.current() then return self:turn_ended() end   -- no turn to wait for
  self.flush_pending = true
  self.flusher = weft.spawn(function()
    self.flush_pending = false
    self:turn_ended()
  end)
  self.flusher.name = "weft-output"
end

--- What to do once per turn with output (the terminal redraws here).
function Plain:turn_ended()
  if self.output then self.output:flush() end
end

function Plain:line(rec, stream, text)
  self:output_layer():line(rec, stream, text)
  self:schedule_flush()
end

--- A C writer for `rec`'s process output, or nil (see Output:sink).
function Plain:sink(rec)
  return self:output_layer():sink(rec)
end

--- A sink is about to write a batch of `rec`'s lines, ending with `tail`.
function Plain:sunk(rec)
  self:output_layer():sunk(rec)
  self:schedule_flush()
end

function Plain:progress(msg)
  self.flush_pending = false
  if self.output then self.output:flush() end
  self.err:write(msg .. "\n")   -- one write: stderr is unbuffered
  self.err:flush()
end

function Plain:started(rec)
  self:progress(("[%d/%d] start %s"):format(self.done, self.total, rec.name))
end

function Plain:finished(rec)
  self.done = self.done + 1
  if rec.status == "failed" then self.failed = self.failed + 1 end
  if self.output then self.output:finished(rec) end
  if rec.status == "up to date" then return end   -- never started (issue 13): nothing to say
  local word = rec.status == "done" and "done" or rec.status:upper()
  if rec.status ~= "done" then word = self:paint(word, 31) end
  self:progress(("[%d/%d] %s %s (%.2fs)"):format(self.done, self.total, word, rec.name,
    (rec.finish or rec.start) - rec.start))
end

function Plain:retrying(rec, n, err, delay)
  self:progress(("retry %s: attempt %d failed (%s), next in %.1fs"):format(rec.name, n,
    require("weft.summary").reason(err), delay))
end

--- The run is stopping (Ctrl-C, a failure without -k, --timeout): `n`
-- tasks were cancelled and are being waited for.
function Plain:stopping(n)
  self:progress(("stopping: waiting for %d task%s (TERM sent)"):format(n, n == 1 and "" or "s"))
end

function Plain:finish()
  if self.flusher then
    self.flusher:cancel()
    pcall(self.flusher.await, self.flusher)
    self.flusher = nil
  end
  if self.output then self.output:finish() end
end

return M
