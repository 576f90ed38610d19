-- Line reading (issue 14, defect 12): weft.fs file:lines() against Lua's
-- io.lines on the same file, and a stream's read_line() against plain
-- read() of the same bytes (a `cat` of the file through a process pipe).
-- Alternating pairs; prints each pair and the median ratio.
-- Usage: bench/io/run.sh lines, or lua5.4 bench/io/lines.lua [LINES] [PAIRS]
package.cpath = "./" .. (os.getenv("WEFT_BUILD") or "build") .. "/?.so;" .. package.cpath
local weft = require "weft"

local nlines, pairs_n = tonumber(arg[1]) or 200000, tonumber(arg[2]) or 5
local path = os.tmpname()
do
  local f = assert(io.open(path, "w"))
  for i = 1, nlines do f:write("line ", i, " of the benchmark file, some text to read\n") end
  f:close()
end

local function wall() return weft.uv.hrtime() / 1e9 end

local function io_lines()
  local n = 0
  for _ in io.lines(path) do n = n + 1 end
  return n
end

local function fs_lines()
  return weft.run(function()
    local f <close> = weft.fs.open(path)
    local n = 0
    for _ in f:lines() do n = n + 1 end
    return n
  end)
end

local function stream(method)
  return weft.run(function()
    local p <close> = weft.process({ "cat", path }, { stdin = "null", stderr = "null" })
    local n, out = 0, p.stdout
    if method == "read_line" then
      while out:read_line() do n = n + 1 end
    elseif method == "split" then   -- the same lines from plain reads
      local rest = ""
      while true do
        local s = out:read()
        if not s then break end
        s = rest .. s
        local off = 1
        while true do
          local i = s:find("\n", off, true)
          if not i then break end
          local _ = s:sub(off, i - 1)
          n, off = n + 1, i + 1
        end
        rest = s:sub(off)
      end
    else
      while true do
        local s = out:read()
        if not s then break end
        n = n + #s
      end
    end
    p:wait()
    return n
  end)
end

local function time(fn, ...)
  local t0 = wall()
  local r = fn(...)
  return wall() - t0, r
end

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

local function compare(title, a_name, a, b_name, b)
  local ratios = {}
  for i = 1, pairs_n do
    local ta, ra = time(a)
    local tb, rb = time(b)
    ratios[i] = ta / tb
    print(("  pair %d: %s %.4f s (%s), %s %.4f s (%s), ratio %.2f"):format(i, a_name, ta, ra,
      b_name, tb, rb, ta / tb))
  end
  print(("%s: median ratio %.2fx"):format(title, median(ratios)))
end

print(("%d lines, %d bytes, %d pairs"):format(nlines, #io.open(path):read("a"), pairs_n))
compare("fs file:lines() vs io.lines", "weft", fs_lines, "io.lines", io_lines)
local function popen_lines()
  local n, p = 0, io.popen("cat " .. path)
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n
end
local function read_line() return stream("read_line") end
compare("stream read_line() vs read() + splitting in Lua", "read_line", read_line,
  "read+split", function() return stream("split") end)
compare("stream read_line() vs io.popen(cat):lines()", "read_line", read_line,
  "popen", popen_lines)
compare("stream read_line() vs plain read() (no lines)", "read_line", read_line,
  "read", function() return stream("read") end)
os.remove(path)
