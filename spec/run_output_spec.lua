-- `weft run` output (issue 15): attribution of every line to its task,
-- output modes, stderr marking, control characters, odd bytes, CI markers.
-- Each test runs build/weft on a fixture in spec/fixtures/run.
local cli = require "support.cli"

local FIX = "spec/fixtures/run/"

local function run(args, env)
  return cli.weft_run("-f " .. args, env)
end

describe("weft run output", function()
  it("attributes prints of gather, spawn and group children to their task", function()
    local r = run(FIX .. "attribution.lua -j 2")
    assert.equal(0, r.code, r.stderr)
    assert.matches("fan    | from gather child\n", r.stdout, 1, true)
    assert.matches("fan    | from a gather child process\n", r.stdout, 1, true)
    assert.matches("fan    | from group child\n", r.stdout, 1, true)
    assert.matches("other  | from spawned child\n", r.stdout, 1, true)
    assert.not_matches("? |", r.stdout, 1, true)
  end)

  it("prefixes io.write and io.stdout:write text line by line, joining pieces and ending the last at the task's end", function()
    local r = run(FIX .. "attribution.lua -j 3")
    assert.matches("writer | part one, part two\nwriter | 42 on its own line\nwriter | chained\n"
      .. "writer | through io.stdout\n", r.stdout, 1, true)
    assert.matches("writer | unterminated\n", r.stdout, 1, true)
  end)
end)

describe("weft run --output", function()
  it("prefixed (the default) marks stderr lines with !|", function()
    local r = run(FIX .. "modes.lua -j 2")
    assert.equal(0, r.code, r.stderr)
    assert.equal("a  | a1\nbb | b1\na  !| a2\nbb | b2\n", r.stdout)
  end)

  it("grouped prints each task's lines as one block when it ends", function()
    local r = run(FIX .. "modes.lua -j 2 --output grouped")
    assert.equal(0, r.code, r.stderr)
    assert.equal("a  | a1\na  !| a2\nbb | b1\nbb | b2\n", r.stdout)
  end)

  it("interleaved passes lines bare", function()
    local r = run(FIX .. "modes.lua -j 2 --output interleaved")
    assert.equal("a1\nb1\na2\nb2\n", r.stdout)
  end)

  it("rejects an unknown mode as a usage error", function()
    local r = run(FIX .. "modes.lua --output fancy")
    assert.equal(2, r.code)
    assert.matches("--output expects prefixed, grouped or interleaved", r.stderr, 1, true)
  end)

  it("wraps each stretch of a task's lines in GitHub Actions groups without delaying them", function()
    local r = run(FIX .. "modes.lua -j 2", "GITHUB_ACTIONS=true")
    assert.equal("::group::a\na  | a1\n::endgroup::\n::group::bb\nbb | b1\n::endgroup::\n"
      .. "::group::a\na  !| a2\n::endgroup::\n::group::bb\nbb | b2\n::endgroup::\n", r.stdout)
  end)

  it("wraps each grouped block in one GitHub Actions group", function()
    local r = run(FIX .. "modes.lua -j 2 --output grouped", "GITHUB_ACTIONS=true")
    assert.equal("::group::a\na  | a1\na  !| a2\n::endgroup::\n"
      .. "::group::bb\nbb | b1\nbb | b2\n::endgroup::\n", r.stdout)
  end)

  it("writes GitLab collapsed section markers", function()
    local r = run(FIX .. "modes.lua -j 2 --output grouped", "GITLAB_CI=true")
    assert.matches("^\27%[0Ksection_start:%d+:weft_1_a%[collapsed=true%]\r\27%[0Ka\na  | a1\n"
      .. "a  !| a2\n\27%[0Ksection_end:%d+:weft_1_a\r\27%[0K\n", r.stdout)
    assert.matches("section_start:%d+:weft_2_bb", r.stdout)
  end)
end)

describe("weft run output of odd lines", function()
  it("keeps a progress bar's last state, strips escapes and bell, passes NUL and bad UTF-8", function()
    local r = run(FIX .. "control.lua")
    assert.equal(0, r.code, r.stderr)
    local lines = {}
    for l in r.stdout:gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
    assert.equal("t | progress 100%", lines[1])
    assert.equal("t | beforeafter", lines[2])
    assert.equal("t | titled", lines[3])
    assert.equal("t | ring bell backspace", lines[4])
    assert.equal("t | red plain", lines[5])
    assert.equal("t | crlf line", lines[6])
    assert.equal("t | nul\0byte", lines[7])
    assert.equal("t | bad \255\254 utf8", lines[8])
    assert.equal("t | " .. ("x"):rep(1048576), lines[9])
    assert.equal(9, #lines)
  end)

  it("passes every byte through with --output raw", function()
    local r = run(FIX .. "control.lua --output raw")
    assert.matches("t | progress 10%\rprogress 50%\rprogress 100%\n", r.stdout, 1, true)
    assert.matches("t | before\27[2Jafter\n", r.stdout, 1, true)
  end)

  it("holds a grouped task printing 50 MB in bounded memory, then prints it all", function()
    local out = os.tmpname()
    local cmd = ("env -u GITHUB_ACTIONS CI=true MB=50 /usr/bin/time -f 'maxrss %%M' %s run -f %sbig.lua "
      .. "-j 2 --output grouped > %s 2> %s.err"):format(cli.bin, FIX, out, out)
    local ok = os.execute(cmd)
    local err = cli.read_file(out .. ".err")
    assert.is_true(ok, err)
    local rss = tonumber(err:match("maxrss (%d+)"))
    local size, first_big, small, last = 0, nil, nil, nil
    local n = 0
    for l in io.lines(out) do
      n = n + 1
      size = size + #l + 1
      if l == "small | small one" then small = n end
      if not first_big and l:match("^big   | x") then first_big = n end
      last = l
    end
    os.remove(out)
    os.remove(out .. ".err")
    assert.equal(50 * 10486 + 2, n)
    assert.equal(1, small)             -- small ended first: its block came first
    assert.equal(2, first_big)
    assert.equal("big   | last line", last)
    -- AddressSanitizer's shadow memory and quarantine make RSS meaningless
    -- there (500+ MB for any run): the bound is checked on the plain build
    if not (os.getenv("WEFT_BUILD") or ""):match("asan") then
      assert.is_true(rss < 40 * 1024, "max RSS " .. tostring(rss) .. " KB")
    end
  end)
end)

describe("weft run output in pieces (the C prefixer)", function()
  local function lines_of(text)
    local lines = {}
    for l in text:gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
    return lines
  end

  it("joins a line split across reads, and cleans a \\r or an escape sequence split across them", function()
    local r = run(FIX .. "chunks.lua -j 1 partial cr esc")
    assert.equal(0, r.code, r.stderr)
    assert.same({ "partial | abcd", "partial | efgh", "cr      | done", "esc     | abc" },
      lines_of(r.stdout))
  end)

  it("takes a line longer than every buffer whole, escape sequence at its end included", function()
    local r = run(FIX .. "chunks.lua long")
    assert.equal(0, r.code, r.stderr)
    assert.same({ "long | " .. ("x"):rep(300000) .. "end", "long | short" }, lines_of(r.stdout))
  end)

  it("marks stderr lines that came in pieces", function()
    local r = run(FIX .. "chunks.lua stderr")
    assert.equal("stderr !| e1\nstderr !| e2\n", r.stdout)
  end)

  it("keeps at most max_capture bytes of a streamed process in its result and says so", function()
    local r = run(FIX .. "chunks.lua capture")
    assert.equal(0, r.code, r.stderr)
    assert.matches("capture | captured 1000000 truncated true\n", r.stdout, 1, true)
    assert.matches("capture | small whole truncated nil\n", r.stdout, 1, true)
    local n = 0
    for _ in r.stdout:gmatch("capture | y+\n") do n = n + 1 end
    assert.equal(3000000 // 99 + 1, n)   -- every line was still shown
  end)

  it("streams a task printing 200 MB through weft.sh in bounded memory", function()
    local out = os.tmpname()
    local wf = os.tmpname()
    local f = assert(io.open(wf, "w"))
    f:write([[task "big" { function() weft.sh("yes 0123456789012345678901234567890123456789 | head -c 209715200") end }]])
    f:close()
    local cmd = ("env -u GITHUB_ACTIONS CI=true /usr/bin/time -f 'maxrss %%M' %s run -f %s big "
      .. "> %s 2> %s.err"):format(cli.bin, wf, out, out)
    local ok = os.execute(cmd)
    local err = cli.read_file(out .. ".err")
    assert.is_true(ok, err)
    local rss = tonumber(err:match("maxrss (%d+)"))
    local size = 0
    local fh = assert(io.open(out, "rb"))
    size = fh:seek("end")
    fh:close()
    os.remove(out)
    os.remove(out .. ".err")
    os.remove(wf)
    -- "big | " on each 41-byte line, and on the last, cut one (36 bytes)
    assert.equal(209715200 // 41 * (41 + 6) + 36 + 6 + 1, size)
    if not (os.getenv("WEFT_BUILD") or ""):match("asan") then
      -- the first 16 MiB kept for the result, buffers, the runtime
      assert.is_true(rss < 64 * 1024, "max RSS " .. tostring(rss) .. " KB")
    end
  end)
end)
