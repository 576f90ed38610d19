-- The reporter layer of `weft run` from plain Lua (issue 15): the output
-- layer's modes and cleaning, and the terminal area's lines. Bad input
-- tried: escape sequences of every kind, lone ESC at the end, NUL, bytes
-- that are not UTF-8, a terminal narrower than the text, multi-byte text
-- cut at the edge, unknown --output values.
local weft = require "weft"
local output = require "weft.reporter.output"
local terminal = require "weft.reporter.terminal"

local function sink()
  local buf = {}
  return { write = function(self, ...) for _, s in ipairs({ ... }) do buf[#buf + 1] = s end
    return self end, flush = function() end, text = function() return table.concat(buf) end }
end

describe("weft.reporter.output", function()
  it("cleans lines: last \\r segment, escapes, bells, a lone ESC; keeps NUL and bad bytes", function()
    assert.equal("done", output.clean("10%\r50%\rdone"))
    assert.equal("line", output.clean("line\r\r"))
    assert.equal("ab", output.clean("a\27[2Jb"))
    assert.equal("ab", output.clean("a\27]0;title\27\\b"))
    assert.equal("ab", output.clean("a\27(Bb"))
    assert.equal("a", output.clean("a\27"))
    assert.equal("a\0b\255", output.clean("a\0\7b\255"))
    assert.equal("\27[31mred\27[0m\27[0m", output.clean("\27[31mred\27[0m", true))
    assert.equal("red", output.clean("\27[31mred\27[0m", false))
  end)

  it("formats a block of lines in C: each cleaned, prefixed and ended (weft._format_lines)", function()
    local text = "plain\n10%\r99%\rdone\n\27[31mred\27[0m\n\tnul\0tab\n" .. ("y"):rep(70) .. "\27[2J"
    assert.equal("p | plain\np | done\np | red\np | \tnul\0tab\np | " .. ("y"):rep(70) .. "\n",
      weft._format_lines(text, "p | ", true, false))
    assert.equal("p | \27[31mred\27[0m\27[0m\n", weft._format_lines("\27[31mred\27[0m", "p | ", true, true))
    assert.equal("a\r\27[2Jb\n", weft._format_lines("a\r\27[2Jb", "", false, false))
    assert.equal("p | \n", weft._format_lines("", "p | ", true, false))
    assert.equal("p | a\np | \n", weft._format_lines("a\n", "p | ", true, false))
    local long = ("q"):rep(200000)
    assert.equal(("%s | %s\n"):format(("n"):rep(40), long), weft._format_lines(long, ("n"):rep(40) .. " | ", true, false))
    local name = os.tmpname()
    local f = io.open(name, "w")
    assert.equal(f, weft._format_lines("x\ny", "> ", true, false, f))
    f:close()
    assert.equal("> x\n> y\n", io.open(name):read("a"))
    os.remove(name)
    assert.error_matches(function() weft._format_lines("x", "> ", true, false, f) end, "closed file", 1, true)
    assert.error_matches(function() weft._format_lines("x", "> ", true, false, 42) end, "file or nil expected", 1, true)
    assert.error_matches(function() weft._format_lines(nil, "") end, "bad argument #1", 1, true)
  end)

  it("gives the last lines of a block (weft._last_lines)", function()
    assert.same({ "b", "c" }, { weft._last_lines("a\nb\nc", 2) })
    assert.same({ "a", "" }, { weft._last_lines("a\n", 5) })
    assert.same({ "" }, { weft._last_lines("", 3) })
    assert.same({}, { weft._last_lines("abc", 0) })
    assert.error_matches(function() weft._last_lines("a", -1) end, "bad argument #2", 1, true)
    assert.error_matches(function() weft._line_sink(42, "", "") end, "bad argument #1", 1, true)
  end)

  it("parses --output values", function()
    assert.same({ "grouped", true }, { output.parse("grouped,raw") })
    assert.same({ "prefixed", true }, { output.parse("raw") })
    assert.is_nil((output.parse("fancy")))
    assert.is_nil((output.parse("grouped,interleaved")))
    assert.is_nil((output.parse("")))
  end)

  it("knows the CI from the environment", function()
    local env = function(t) return function(k) return t[k] end end
    assert.equal("github", output.ci_markers(env({ GITHUB_ACTIONS = "true" })))
    assert.equal("gitlab", output.ci_markers(env({ GITLAB_CI = "true" })))
    assert.is_nil(output.ci_markers(env({ CI = "true" })))
  end)

  it("spills a grouped block past the limit to a file and prints it whole, in order", function()
    local out = sink()
    local o = output.new({ out = out, mode = "grouped", spill = 100 })
    local a, b = { name = "a", index = 1 }, { name = "b", index = 2 }
    o:set_width({ "a", "b" })
    for i = 1, 50 do o:line(a, "stdout", "line " .. i) end
    o:line(b, "stderr", "from b")
    assert.equal("", out.text())
    o:finished(b)
    o:finished(a)
    local expect = { "b !| from b" }
    for i = 1, 50 do expect[#expect + 1] = "a | line " .. i end
    assert.equal(table.concat(expect, "\n") .. "\n", out.text())
  end)
end)

describe("weft.reporter.terminal area", function()
  it("fits every line to the width without cutting a character", function()
    weft.run(function()
      local r = terminal.new({ columns = 30, out = sink(), err = sink() })
      local rec = { name = "build", start = weft.now() - 3 }
      r.running = { rec }
      r.last[rec] = ("é"):rep(30)
      local lines = r:area_lines(weft.now())
      assert.equal(2, #lines)
      for _, l in ipairs(lines) do
        assert.is_true(#l <= 29, l)
        assert.is_truthy(utf8.len(l), "cut inside a character: " .. l)
      end
      assert.matches("^  build   3%.%d%ds  [\195\169]+%.%.%.$", lines[1])
    end)
  end)
end)
