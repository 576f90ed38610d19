--- Where a pipeline task's output lines go, and in what form: the layer the
-- reporters (weft.reporter.plain, weft.reporter.terminal) write task output
-- through (`weft run --output MODE`).
--
-- Modes: `prefixed` (each line as `name | text`, stderr lines as
-- `name !| text`, or with the prefix in red when colour is on), `grouped`
-- (a task's lines, prefixed the same way, held back and printed as one
-- block when the task ends; past `spill` bytes the block goes to a temporary
-- file, so a task printing gigabytes costs no memory), `interleaved` (lines
-- bare, as they come). Unless `raw`, a line is made harmless for the
-- terminal it lands on: a `\r` keeps only the text after the last one (what
-- a progress bar would have left on screen), escape sequences are removed
-- (colour sequences are kept when colour is on, and reset at the line's
-- end) and so are the control characters that move the cursor or ring the
-- bell. NUL bytes and bytes that are not UTF-8 pass through unchanged.
--
-- CI: with `ci = "github"` each task's output is wrapped in `::group::NAME`
-- / `::endgroup::`, and with `ci = "gitlab"` in collapsed section markers.
-- In the streaming modes a group opens when the output switches to another
-- task and closes before the next switch, so nothing waits for a task to
-- end; in `grouped` mode each block is one group.
--
-- Lines are written without a flush each: `flush()` is called by the
-- reporter before its own progress output and once per scheduler turn.
--
-- The cleaning and prefixing run in C on whole blocks of lines
-- (host/outlines.c): `line` takes one line or several joined by
-- newlines, and `sink(rec)` gives weft.exec a writer that formats a
-- process's output straight from its pipe buffer (weft run's fast path).
-- @module weft.reporter.output
local weft = require "weft"

local M = {}

local format_lines = weft._format_lines

local Output = {}
Output.__index = Output

M.MODES = { prefixed = true, grouped = true, interleaved = true }
M.SPILL = 1 << 20   -- bytes a grouped task may hold in memory

local COLORS = { 36, 33, 35, 32, 34, 96, 93, 95, 92, 94 }

--- Parses an `--output` value: a mode and optionally `raw`, comma separated
-- (`grouped,raw`); `raw` alone means `prefixed,raw`.
-- @string spec
-- @treturn[1] string mode
-- @treturn[1] boolean raw
-- @treturn[2] nil
-- @treturn[2] string the error
function M.parse(spec)
  local mode, raw = nil, false
  for word in tostring(spec):gmatch("[^,]+") do
    if word == "raw" then raw = true
    elseif M.MODES[word] and not mode then mode = word
    else
      return nil, ("--output expects prefixed, grouped or interleaved (optionally with ,raw), got %s")
        :format(spec)
    end
  end
  if not mode and not raw then
    return nil, "--output expects prefixed, grouped or interleaved, got an empty value"
  end
  return mode or "prefixed", raw
end

--- Which CI's group markers to write, from the environment: "github"
-- (GITHUB_ACTIONS=true), "gitlab" (GITLAB_CI set) or nil.
-- @func[opt] getenv (default os.getenv)
function M.ci_markers(getenv)
  getenv = getenv or os.getenv
  if getenv("GITHUB_ACTIONS") == "true" then return "github" end
  local gl = getenv("GITLAB_CI")
  if gl and gl ~= "" and gl ~= "false" then return "gitlab" end
  return nil
end

-- {======== making a line harmless: in C (host/outlines.c), on whole blocks

--- A line made harmless (see the module comment).
-- @string text one line, without its newline
-- @bool[opt] keep_sgr keep colour (SGR) sequences, ending the line with a reset
function M.clean(text, keep_sgr)
  return weft._clean_line(text, keep_sgr)
end

-- }========

--- A new output layer.
-- @tab opts `out` (file, default io.stdout), `mode` (default "prefixed"),
-- `raw`, `color`, `ci` ("github", "gitlab" or nil), `spill` (bytes)
function M.new(opts)
  opts = opts or {}
  return setmetatable({
    out = opts.out or io.stdout, mode = opts.mode or "prefixed", raw = opts.raw,
    color = opts.color, ci = opts.ci, spill = opts.spill or M.SPILL,
    width = 0, held = {}, open = nil, sections = 0,
    prefixes = setmetatable({}, { __mode = "k" }),
  }, Output)
end

--- Pads names to the longest of `names`.
function Output:set_width(names)
  for _, name in ipairs(names) do
    if #name > self.width then self.width = #name end
  end
  self.prefixes = setmetatable({}, { __mode = "k" })
end

function Output:paint(text, code)
  if not self.color then return text end
  return ("\27[%sm%s\27[0m"):format(code, text)
end

local function make_prefix(self, rec, stream)
  local name = rec and rec.name or "?"
  local pad = name .. (" "):rep(math.max(0, self.width - #name))
  if stream == "stderr" then
    if self.color then return self:paint(pad .. " |", 31) .. " " end
    return pad .. " !| "
  end
  if rec and self.color then
    pad = self:paint(pad, COLORS[((rec.index or 1) - 1) % #COLORS + 1])
  end
  return pad .. " | "
end

--- The prefix of a line of `rec` on `stream` (made once per task and stream).
function Output:prefix(rec, stream)
  local key = rec or self
  local cache = self.prefixes[key]
  if not cache then
    cache = {}
    self.prefixes[key] = cache
  end
  local p = cache[stream]
  if not p then
    p = make_prefix(self, rec, stream)
    cache[stream] = p
  end
  return p
end

-- `text` (lines joined by newlines) as written: each line cleaned,
-- prefixed and ended with a newline.
function Output:format(rec, stream, text)
  local prefix = self.mode == "interleaved" and "" or self:prefix(rec, stream)
  return format_lines(text, prefix, not self.raw, self.color)
end

-- {======== CI groups

local function section_id(name, n)
  return ("weft_%d_%s"):format(n, (name:gsub("[^%w_.-]", "_")))
end

function Output:open_group(name)
  if self.ci == "github" then
    self.out:write("::group::", name, "\n")
  elseif self.ci == "gitlab" then
    self.sections = self.sections + 1
    self.section = section_id(name, self.sections)
    self.out:write(("\27[0Ksection_start:%d:%s[collapsed=true]\r\27[0K%s\n")
      :format(os.time(), self.section, name))
  end
  self.open = name
end

function Output:close_group()
  if not self.open then return end
  if self.ci == "github" then
    self.out:write("::endgroup::\n")
  elseif self.ci == "gitlab" then
    self.out:write(("\27[0Ksection_end:%d:%s\r\27[0K\n"):format(os.time(), self.section))
  end
  self.open = nil
end

-- }========

-- {======== grouped blocks

-- `block`: formatted lines, each ending with a newline
local function hold(self, rec, block)
  local h = self.held[rec]
  if not h then
    h = { blocks = {}, bytes = 0 }
    self.held[rec] = h
  end
  if h.file then
    h.file:write(block)
    return
  end
  h.blocks[#h.blocks + 1] = block
  h.bytes = h.bytes + #block
  if h.bytes > self.spill then
    local f = io.tmpfile()
    if f then   -- else keep holding in memory: losing output is worse
      f:write(table.concat(h.blocks))
      h.file, h.blocks = f, nil
    end
  end
end

local function release(self, rec)
  local h = self.held[rec]
  if not h then return end
  self.held[rec] = nil
  if self.ci then self:open_group(rec.name) end
  if h.file then
    h.file:seek("set", 0)
    while true do
      local chunk = h.file:read(1 << 16)
      if not chunk then break end
      self.out:write(chunk)
    end
    h.file:close()
  else
    self.out:write(table.concat(h.blocks))
  end
  if self.ci then self:close_group() end
end

-- }========

--- Takes output lines of `rec` (nil: lines no task claims): one line, or
-- several joined by newlines (no final newline), as a process's batched
-- line callback hands them over.
-- @string stream "stdout" or "stderr"
function Output:line(rec, stream, text)
  if self.mode == "grouped" and rec then
    hold(self, rec, self:format(rec, stream, text))
    return
  end
  self:sunk(rec)
  if io.type(self.out) == "file" then   -- formatted straight into the file, no string made
    local prefix = self.mode == "interleaved" and "" or self:prefix(rec, stream)
    assert(format_lines(text, prefix, not self.raw, self.color, self.out))
  else
    self.out:write(self:format(rec, stream, text))
  end
end

--- A C writer of `rec`'s process output (weft._line_sink, for weft.exec's
-- `_sink`), or nil where lines must come through `line` (grouped mode, an
-- `out` that is not a file).
function Output:sink(rec)
  if (self.mode == "grouped" and rec) or io.type(self.out) ~= "file" then return nil end
  local bare = self.mode == "interleaved"
  return weft._line_sink(self.out, bare and "" or self:prefix(rec, "stdout"),
    bare and "" or self:prefix(rec, "stderr"), not self.raw, self.color)
end

--- Lines of `rec` are written now (by `line` or a sink): a CI group
-- opens for it if another task's is open.
function Output:sunk(rec)
  if self.ci then
    local name = rec and rec.name or "?"
    if self.open ~= name then
      self:close_group()
      self:open_group(name)
    end
  end
  self.dirty = true
end

--- `rec` has ended: in grouped mode, its block is written now.
function Output:finished(rec)
  if self.mode == "grouped" then
    release(self, rec)
    self.dirty = true
  end
end

--- Writes out whatever is buffered.
function Output:flush()
  if self.dirty then
    self.out:flush()
    self.dirty = false
  end
end

--- The run has ended: blocks of tasks that never reported an end (a run
-- cut short) are written, an open CI group is closed, everything flushed.
function Output:finish()
  local left = {}
  for rec in pairs(self.held) do left[#left + 1] = rec end
  table.sort(left, function(a, b) return (a.index or 0) < (b.index or 0) end)
  for _, rec in ipairs(left) do release(self, rec) end
  self:close_group()
  self.dirty = true
  self:flush()
end

return M
