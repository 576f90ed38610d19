-- The REPL (API.md "CLI"; docs/repl.md). Most specs drive `weft -i` through
-- a pipe; one group drives a real terminal through tmux.
local cli = require "support.cli"

local F = "spec/fixtures/repl/"

-- Runs `weft -i` on the given lines; drops the version banner.
local function repl(lines, args)
  args = args or {}
  table.insert(args, 1, "-i")
  local r = cli.run(args, { stdin = table.concat(lines, "\n") .. "\n" })
  r.stdout = r.stdout:gsub("^weft [^\n]*\n", "")
  return r
end

local function now()
  return require("weft").now()
end

describe("weft REPL through a pipe", function()
  it("prints the values of an expression, as lua(1)", function()
    local r = repl({ "1 + 1", "'text'", "1, nil, true", "nil" })
    assert.equal(0, r.code, r.stderr)
    assert.equal("2\ntext\n1\tnil\ttrue\nnil\n", r.stdout)
    assert.equal("", r.stderr)
  end)

  it("prints nothing for a statement", function()
    local r = repl({ "x = 1", "print('x is', x)" })
    assert.equal("x is\t1\n", r.stdout)
  end)

  it("continues an incomplete entry on the next lines", function()
    local r = repl({ "for i = 1, 3 do", "  io.write(i, ' ')", "end", "print()", "{", "1,", "2 }" })
    assert.equal(0, r.code, r.stderr)
    assert.equal("1 2 3 \n{ 1, 2 }\n", r.stdout)
  end)

  it("prints message and traceback of an error and goes on", function()
    local r = repl({ "local function f() error('boom') end", "f()", "'still here'" })
    assert.equal(0, r.code)
    assert.matches("^stdin:1: boom\nstack traceback:\n", r.stderr)
    assert.matches("stdin:1: in ", r.stderr)
    assert.equal("still here\n", r.stdout)
  end)

  it("prints a syntax error and goes on", function()
    local r = repl({ "x = = 1", "1" })
    assert.matches("^stdin:1: unexpected symbol near '='", r.stderr)
    assert.equal("1\n", r.stdout)
  end)

  it("reports an incomplete entry left at the end of input", function()
    local r = repl({ "1", "function f(" })
    assert.equal("1\n", r.stdout)
    assert.matches("<eof>", r.stderr)
  end)

  it("keeps top-level locals from one entry to the next", function()
    local r = repl({
      "local x = 41",
      "x + 1",
      "local a, b <const> = 'A', 'B'",
      "a .. b",
      "local function fact(n) return n <= 1 and 1 or n * fact(n - 1) end",
      "fact(5)",
      "rawget(_G, 'x'), rawget(_G, 'fact')",  -- locals stay out of _G
      "local n = 0 function bump() n = n + 1 end",
      "bump() bump()",
      "n",                                      -- closures share them
      "local x = x + 1",                        -- the right side sees the old x
      "x",
      "do local hidden = 1 end",
      "hidden",                                 -- nested locals stay local
    })
    assert.equal(0, r.code, r.stderr)
    assert.equal("42\nAB\n120\nnil\tnil\n2\n42\nnil\n", r.stdout)
  end)

  it("runs each entry as a task: top-level await waits", function()
    local t0 = now()
    local r = repl({ "local t0 = weft.now()", "weft.sleep(0.2)",
      "weft.now() - t0 >= 0.19, weft.current().name" })
    local elapsed = now() - t0
    assert.equal(0, r.code, r.stderr)
    assert.equal("true\tmain\n", r.stdout)
    assert.is_true(elapsed >= 0.2 and elapsed < 5, "took " .. elapsed)
  end)

  it("awaits tasks spawned at the prompt", function()
    local r = repl({ "t = weft.spawn(function(a) weft.sleep(0.05) return a * 2 end, 21)", "t:await()" })
    assert.equal("42\n", r.stdout)
  end)

  it("keeps background tasks running between entries", function()
    local r = repl({
      "t = weft.spawn(function() for i = 1, 3 do weft.sleep(0.05) print('tick', i) end end)",
      "print('entry done')",
      "weft.sleep(0.4)",
      "print('later')",
    })
    assert.equal(0, r.code, r.stderr)
    assert.equal("entry done\ntick\t1\ntick\t2\ntick\t3\nlater\n", r.stdout)
  end)

  it("at the end of input cancels the tasks still running, cleanup included", function()
    local r = repl({ "t = weft.spawn(function() local ok, e = pcall(weft.sleep, 60) "
      .. "print('cleanup', e.kind) end)", "weft.sleep(0.05)" })
    assert.equal(0, r.code)
    assert.matches("1 task still running; cancelling it", r.stderr)
    assert.equal("cleanup\tCancelled\n", r.stdout)
  end)

  it("prints tables readably: nested, sorted, cycle-safe, truncated", function()
    local r = repl({
      "{ 1, 'two', { x = 1 }, name = 'n', [true] = false, ['a key'] = 1 }",
      "local t = { 1 } t.self = t return t",
      "local big = {} for i = 1, 1000 do big[i] = i end return big",
    })
    assert.equal(0, r.code, r.stderr)
    local lines = {}
    for l in r.stdout:gmatch("[^\n]*\n") do lines[#lines + 1] = l end
    assert.equal('{ 1, "two", { x = 1 }, ["a key"] = 1, name = "n", [true] = false }\n', lines[1])
    assert.equal("{ 1, self = <cycle> }\n", lines[2])
    assert.matches("%.%.%.%(950 more%)\n}\n$", r.stdout)
    assert.is_true(#r.stdout < 1000)
  end)

  it("reports a deadlocked entry and goes on", function()
    local r = repl({ "weft.event():wait()", "'after'" })
    assert.matches("Deadlock: no task can make progress", r.stderr)
    assert.equal("after\n", r.stdout)
  end)

  it("reports the error of a background task nobody awaited", function()
    local r = repl({ "weft.spawn(function() error('lost') end) weft.sleep(0.05)", "weft.sleep(0.05)" })
    assert.matches('error in task "task%-%d+" that nobody awaited: stdin:1: lost', r.stderr)
  end)

  it(":tasks lists live tasks with id, name, status, age and wait", function()
    local r = repl({ "w = weft.spawn(function() weft.sleep(60) end) w.name = 'sleeper'",
      "weft.sleep(0.1)", ":tasks" })
    assert.matches("id%s+name%s+status%s+age%s+waits on\n", r.stdout)
    assert.matches("%d+%s+sleeper%s+pending%s+0%.%ds%s+sleep %(", r.stdout)
  end)

  it(":waits shows who waits on whom; :cancel cancels by id", function()
    local r = repl({
      "e = weft.event() a = weft.spawn(function() e:wait() end) a.name = 'A'",
      "b = weft.spawn(function() a:await() end) b.name = 'B'",
      "weft.yield()",
      ":waits",
      ":cancel " .. "999",
      "':cancel ' .. a.id",
    })
    assert.matches('task %d+ "A" %(pending%) <%- %d+ "B"', r.stdout)
    assert.matches('event created at stdin:1 <%- %d+ "A"', r.stdout)
    assert.matches("no live task with id 999", r.stdout)
    -- task ids are given in order: 1 the main task, 2 this entry, 3 'a'
    local r2 = repl({ "a = weft.spawn(function() weft.sleep(60) end) a.name = 'victim'",
      "a.id", ":cancel 3", "weft.yield()", "a:status()" })
    assert.matches('^3\ncancelling task 3 "victim"\n', r2.stdout)
    assert.matches("cancelled\n$", r2.stdout)
  end)

  it(":help lists the commands; an unknown command says so", function()
    local r = repl({ ":help", ":nope" })
    assert.matches(":tasks", r.stdout)
    assert.matches(":cancel ID", r.stdout)
    assert.matches("unknown command :nope", r.stdout)
  end)

  it(":quit leaves at once", function()
    local r = repl({ "1", ":quit", "2" })
    assert.equal("1\n", r.stdout)
    assert.equal(0, r.code)
  end)

  it("keeps the last result in _ and the last error in _err, outside _G", function()
    local r = repl({ "6 * 7", "_ + 1", "x = 5", "_", "error('bad')", "_err", "rawget(_G, '_')" })
    assert.equal(0, r.code, r.stderr)
    assert.equal("42\n43\n43\nstdin:1: bad\nnil\n", r.stdout)
  end)

  it(":time EXPR runs the entry and says how long it took", function()
    local r = repl({ ":time weft.sleep(0.2)", ":time 40 + 2", ":time" })
    assert.equal(0, r.code, r.stderr)
    local took = tonumber(r.stdout:match("^time: ([%d.]+) s\n"))
    assert.is_true(took and took >= 0.19 and took < 5, r.stdout)
    assert.matches("\n42\ntime: [%d.]+ s\nusage: :time EXPR\n$", r.stdout)
  end)

  it("says 'Cancelled: <reason>' for an awaited cancelled task", function()
    local r = repl({ "c = weft.spawn(function() weft.sleep(5) end) c:cancel('no longer needed') c:await()",
      "d = weft.spawn(function() weft.sleep(5) end) d:cancel() d:await()" })
    assert.equal("Cancelled: no longer needed\nCancelled: task was cancelled\n", r.stderr)
  end)

  it("shows the user's frames: weft's own trimmed, the raise site kept through :await()", function()
    local r = repl({ "weft.fs.read('/nonexistent/file')",
      "t = weft.spawn(function() weft.sleep(0.01) error('deep') end)",
      "local function waiter() local v = t:await() return v end",
      "waiter()" })
    assert.equal(0, r.code)
    assert.matches("^IOError: [^\n]*ENOENT", r.stderr)
    assert.is_nil(r.stderr:find("stdlib/weft", 1, true), r.stderr)
    -- the error, where it was raised (the spawned function), then the await
    assert.matches("stdin:1: deep\nstack traceback:\n\t%[C%]: in function 'error'\n"
      .. "\tstdin:1: in function <stdin:1>\nre%-raised by:\n\t%[C%]: in method 'await'\n"
      .. "\tstdin:1: in function <stdin:1>\n$", r.stderr)   -- waiter (the entry tail-calls it)
  end)

  it("runs weft.run_virtual at the prompt on a clock of its own", function()
    local t0 = now()
    local r = repl({
      "T0 = weft.now() bg = weft.spawn(function() weft.sleep(0.4) return weft.now() - T0 end)",
      "weft.run_virtual(function() weft.sleep(3600) return weft.now() end)",
      "bg:await() >= 0.39",   -- the background sleep kept real time
    })
    assert.equal(0, r.code, r.stderr)
    assert.equal("3600.0\ntrue\n", r.stdout)
    assert.is_true(now() - t0 < 5)
  end)

  it("shows print and io.write as what they are, not as the REPL's wrappers", function()
    local r = repl({ "print", "io.write", "print == _G.print" })
    assert.equal(0, r.code, r.stderr)
    assert.is_nil(r.stdout:find("repl", 1, true), r.stdout)
    assert.matches("^function: [%w:]+\nfunction: [%w:]+\ntrue\n$", r.stdout)   -- no source: C
  end)

  it("opens after a script with -i, seeing its globals", function()
    local r = repl({ "greeting", "double(21)" }, { F .. "setup.lua" })
    assert.equal(0, r.code, r.stderr)
    assert.equal("hello from the script\n42\n", r.stdout)
  end)

  it("reads input from a file as well as from a pipe", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write("local x = 2\nx * 21\n")
    f:close()
    local p = io.popen(cli.quote(cli.bin) .. " -i < " .. cli.quote(path) .. " 2>&1")
    local out = p:read("a")
    p:close()
    os.remove(path)
    assert.matches("\n42\n$", out)
  end)
end)

-- {======== a real terminal, through tmux

local term = require "support.term"

local function term_start(env)
  return term.start(env)
end

describe("weft REPL on a terminal (tmux)", function()
  if not term.have_tmux() then
    pending("tmux is not installed")
    return
  end
  local state, t

  before_each(function()
    state = os.tmpname()
    os.remove(state)
    assert(os.execute("mkdir -p " .. cli.quote(state)))
    t = term_start("XDG_STATE_HOME=" .. cli.quote(state))
  end)

  after_each(function()
    if t then t:close() end
    os.execute("rm -rf " .. cli.quote(state))
  end)

  it("edits the line and keeps history in $XDG_STATE_HOME", function()
    t:type("1 + 2")
    t:keys("Left", "Left", "BSpace", "*")      -- 1 * 2 after editing in the middle
    t:keys("Enter")
    assert.is_true(t:wait_for("\n2\n> ?$"), t:screen())
    t:keys("Up")                                -- history recalls the entry
    assert.is_true(t:wait_for("> 1 %* 2$"), t:screen())
    t:keys("C-u", "C-d")
    assert.equal(0, t:exit_code())
    local hist = cli.read_file(state .. "/weft/history")
    -- libedit writes its own format, spaces as \040
    assert.is_truthy(hist and (hist:find("1 * 2", 1, true) or hist:find("1\\040*\\0402", 1, true)), hist)
  end)

  it("completes globals and fields after '.' and ':'", function()
    t:type("weft.sp")
    t:keys("Tab")
    assert.is_true(t:wait_for("> weft%.spawn$"), t:screen())
    t:keys("C-u")
    t:type("local cur = weft.current")
    t:keys("Enter")
    t:type("cu")                               -- a REPL local
    t:keys("Tab")
    assert.is_true(t:wait_for("> cur$"), t:screen())
    t:keys("C-u")
    t:type("corou")
    t:keys("Tab")
    assert.is_true(t:wait_for("> coroutine$"), t:screen())
    t:keys("C-u")
    t:type("task = weft.spawn(print)")
    t:keys("Enter")
    t:type("task:aw")
    t:keys("Tab")
    assert.is_true(t:wait_for("> task:await$"), t:screen())
  end)

  it("Ctrl-C cancels a running weft.sleep(30) quickly; its cleanup runs", function()
    t:type("local ok, e = pcall(weft.sleep, 30) print('cleanup ran:', e.kind) error(e)")
    t:keys("Enter")
    cli.sleep(0.3)
    local t0 = now()
    t:keys("C-c")
    assert.is_true(t:wait_for("cleanup ran:%s+Cancelled.*cancelled\n> ?$", 3), t:screen())
    assert.is_true(now() - t0 < 2)
    t:type("'alive'")                          -- the REPL goes on
    t:keys("Enter")
    assert.is_true(t:wait_for("\nalive\n> ?$"), t:screen())
  end)

  it("Ctrl-C interrupts an entry that never awaits, and twice does not kill the REPL", function()
    t:type("local ok = pcall(function() while true do end end) while true do end")
    t:keys("Enter")
    cli.sleep(0.3)
    t:keys("C-c")
    cli.sleep(0.3)
    t:keys("C-c")
    assert.is_true(t:wait_for("cancelled\n> ?$", 3), t:screen())
    t:type("1")
    t:keys("Enter")
    assert.is_true(t:wait_for("\n1\n> ?$"), t:screen())
  end)

  it("Ctrl-C at the prompt clears the line; Ctrl-D says what it cancels", function()
    t:type("half typed")
    assert.is_true(t:wait_for("> half typed$"), t:screen())
    t:keys("C-c")
    assert.is_true(t:wait_for("> half typed%^C\n> ?$"), t:screen())
    t:type("for i = 1,")
    t:keys("Enter")
    assert.is_true(t:wait_for(">> ?$"), t:screen())
    t:keys("C-c")                              -- drops the unfinished entry too
    assert.is_true(t:wait_for("\n> ?$"), t:screen())
    t:type("weft.spawn(function() weft.sleep(60) end)")
    t:keys("Enter")
    assert.is_true(t:wait_for("\n> ?$"), t:screen())
    t:keys("C-d")
    assert.is_true(t:wait_for("1 task still running; cancelling it"), t:screen())
    assert.equal(0, t:exit_code())
  end)

  it("prints background output above the prompt without garbling the line", function()
    t:type("weft.spawn(function() for i = 1, 3 do weft.sleep(0.3) print('tick ' .. i) end end)")
    t:keys("Enter")
    -- typed before the prompt is back, the keys would be echoed by the
    -- terminal itself while the entry runs (not what this checks)
    assert.is_true(t:wait_for("\n> ?$"), t:screen())
    t:type("local typed = 'so far'")
    assert.is_true(t:wait_for("tick 3\n> local typed = 'so far'$", 5), t:screen())
    local screen = t:screen()
    assert.is_nil(screen:find("so fartick", 1, true))
    assert.is_true(select(2, screen:gsub("local typed", "")) == 1, screen)
    t:keys("Enter")
    t:type("typed")
    t:keys("Enter")
    assert.is_true(t:wait_for("\nso far\n> ?$"), t:screen())
  end)

  -- Control bytes in libedit's file format: "\^X" or an octal escape below \040.
  local function control_escapes(hist)
    return hist:find("\\%^") or hist:find("\\0[0-3][0-7]") or hist:find("[%z\1-\9\11-\31]")
  end

  it("Ctrl-R searches the history: Enter runs the match, a key edits it", function()
    for _, entry in ipairs({ "x = 40 + 2", "print('hello')", "1 + 1" }) do
      t:type(entry)
      t:keys("Enter")
    end
    assert.is_true(t:wait_for("\n2\n> ?$"), t:screen())
    t:keys("C-r")
    t:type("x =")
    assert.is_true(t:wait_for("%(reverse%-i%-search%)`x =': x = 40 %+ 2$"), t:screen())
    t:keys("Enter")                              -- runs it
    t:type("x")
    t:keys("Enter")
    assert.is_true(t:wait_for("\n42\n> ?$"), t:screen())
    t:keys("C-r")
    t:type("hel")
    t:keys("End")                                -- leaves the search, the match to edit
    t:type(" print(2)")
    t:keys("Enter")
    assert.is_true(t:wait_for("> print%('hello'%) print%(2%)\nhello\n2\n> ?$"), t:screen())
    t:keys("C-r")
    t:type("nothing like this")
    assert.is_true(t:wait_for("failed reverse%-i%-search"), t:screen())
    t:keys("C-g")                                -- back to the line as it was
    assert.is_true(t:wait_for("\n> ?$"), t:screen())
    t:keys("C-d")
    assert.equal(0, t:exit_code())
    local hist = cli.read_file(state .. "/weft/history")
    assert.is_truthy(hist and hist:find("x\\040=\\04040\\040+\\0402", 1, true) or hist:find("x = 40 + 2", 1, true), hist)
    assert.is_nil(control_escapes(hist), hist)
    assert.is_nil(hist:find("bck", 1, true), hist)
  end)

  it("writes background output above the search line and keeps searching", function()
    t:type("x = 1")
    t:keys("Enter")
    -- each entry is typed at its own prompt, so a loaded machine cannot reorder them
    assert.is_true(t:wait_for("> x = 1\n> ?$"), t:screen())
    t:type("weft.spawn(function() for i = 1, 2 do weft.sleep(0.3) print('tick ' .. i) end end)")
    t:keys("Enter")
    assert.is_true(t:wait_for("\n> ?$"), t:screen())
    t:keys("C-r")
    t:type("x")
    assert.is_true(t:wait_for("tick 1\ntick 2\n%(reverse%-i%-search%)`x': x = 1$", 5), t:screen())
    assert.equal(1, select(2, t:screen():gsub("reverse%-i%-search", "")), t:screen())
  end)

  it("cleans control bytes out of an old history file and keeps one line per entry", function()
    t:close()
    assert(os.execute("mkdir -p " .. cli.quote(state .. "/weft")))
    local f = assert(io.open(state .. "/weft/history", "w"))
    f:write("_HiStOrY_V2_\nkept\\0401\n\\012bck:\\^Dfi\nfor\\040i\\040=\\0401,2\\040do\\012"
      .. "print(i)\\012end\n")
    f:close()
    t = term_start("XDG_STATE_HOME=" .. cli.quote(state))
    t:keys("Up")                                 -- the newest: the loop, on one line
    assert.is_true(t:wait_for("> for i = 1,2 do print%(i%) end$"), t:screen())
    t:keys("Enter")
    assert.is_true(t:wait_for("\n1\n2\n> ?$"), t:screen())
    t:keys("C-d")
    assert.equal(0, t:exit_code())
    local hist = cli.read_file(state .. "/weft/history")
    assert.is_nil(control_escapes(hist), hist)
    assert.is_nil(hist:find("bck", 1, true), hist)
    assert.matches("kept", hist)
  end)

  it("completes modules never used yet, hides internals, completes :commands", function()
    t:type("weft.on_")
    t:keys("Tab")
    assert.is_true(t:wait_for("> weft%.on_signal$"), t:screen())
    t:keys("C-u")
    t:type("weft.f")
    t:keys("Tab", "Tab")
    assert.is_true(t:wait_for("weft%.fs +weft%.future"), t:screen())
    t:keys("C-u")
    t:type("weft.")
    t:keys("Tab", "Tab")
    assert.is_true(t:wait_for("weft%.yield"), t:screen())
    assert.is_nil(t:screen():find("_stats", 1, true), t:screen())
    t:keys("C-u")
    t:type(":ti")
    t:keys("Tab")
    assert.is_true(t:wait_for("> :time$"), t:screen())
  end)

  it("writes background output above a line longer than the terminal, no stale rows", function()
    t:type("weft.spawn(function() for i = 1, 3 do weft.sleep(0.3) print('tick ' .. i) end end)")
    t:keys("Enter")
    t:type("local long = '" .. ("a"):rep(150) .. "'")
    t:keys("Left", "Left", "Left")               -- the cursor on the first row of two
    assert.is_true(t:wait_for("tick 3\n> local long = 'a+\na+'$", 5), t:screen())
    local screen = t:screen()
    assert.equal(1, select(2, screen:gsub("local long", "")), screen)
    assert.is_nil(screen:find("\naaaa[^\n]*\ntick", 1), screen)   -- no row left over
    t:keys("Enter")
    t:type("#long")
    t:keys("Enter")
    assert.is_true(t:wait_for("\n150\n> ?$"), t:screen())
  end)

  it("holds a partial line from a background task until its newline or the next prompt", function()
    t:type("weft.spawn(function() io.write('part ') weft.sleep(0.3) print('whole') "
      .. "io.write('ta' .. 'il!') end)")
    t:keys("Enter")
    t:type("local typed = 1")
    assert.is_true(t:wait_for("\npart whole\n> local typed = 1$", 5), t:screen())
    cli.sleep(0.3)
    assert.is_nil(t:screen():find("tail!", 1, true), t:screen())
    t:keys("Enter")
    assert.is_true(t:wait_for("> local typed = 1\ntail!\n> ?$"), t:screen())
  end)

  it("relays a child's inherited stdout above the prompt", function()
    t:type("p = weft.process({'sh', '-c', 'for i in 1 2 3; do sleep 0.3; echo child $i; done'}, "
      .. "{stdout = 'inherit'})")
    t:keys("Enter")
    t:type("local typed = 'still here'")
    assert.is_true(t:wait_for("child 3\n> local typed = 'still here'$", 5), t:screen())
    local screen = t:screen()
    assert.equal(1, select(2, screen:gsub("local typed", "")), screen)
    t:keys("C-u")
    t:type("weft.exec({'sh', '-c', 'echo out; echo err >&2'}, {stdout = 'inherit', stderr = 'inherit'}).code")
    t:keys("Enter")
    assert.is_true(t:wait_for("\nout\nerr\n0\n> ?$"), t:screen())   -- before the result
  end)

  it("_ is the last result", function()
    t:type("6 * 7")
    t:keys("Enter")
    t:type("_ + 1")
    t:keys("Enter")
    assert.is_true(t:wait_for("\n43\n> ?$"), t:screen())
  end)

  it("the first Ctrl-C interrupts a task hogging the loop, says so, keeps the typed line", function()
    t:type("h = weft.spawn(function() weft.sleep(0.1) while true do end end) h.name = 'spinner'")
    t:keys("Enter")
    cli.sleep(1)                                 -- the hog runs: keys wait in the terminal
    t:type("1 + 41")
    cli.sleep(0.2)
    t:keys("C-c")
    assert.is_true(t:wait_for("interrupted the task hogging the loop: \"spinner\"\n> 1 %+ 41$", 3),
      t:screen())
    t:keys("Enter")
    assert.is_true(t:wait_for("\n42\n> ?$"), t:screen())
    t:type("h:status()")
    t:keys("Enter")
    assert.is_true(t:wait_for("\ncancelled\n> ?$"), t:screen())
  end)

  it("interrupts a hog every time, not only on the thread's first use", function()
    -- a thread whose hook raised keeps Lua's hooks off: reused, its next hog could not be stopped
    for i = 1, 4 do
      t:type("h = weft.spawn(function() while true do end end) h.name = 'hog" .. i .. "'")
      t:keys("Enter")
      cli.sleep(0.5)
      t:keys("C-c")
      assert.is_true(t:wait_for("interrupted the task hogging the loop: \"hog" .. i .. "\"\n> ?$", 5),
        t:screen())
    end
    t:type("print('alive')")
    t:keys("Enter")
    assert.is_true(t:wait_for("\nalive\n> ?$"), t:screen())
  end)

  it("redraws the typed line after the terminal is resized: no stale rows", function()
    -- output arrives after each resize, while the line shows
    t:type("weft.spawn(function() for i = 1, 6 do weft.sleep(0.3) print('tick ' .. i) end end)")
    t:keys("Enter")
    t:type("local long = '" .. ("b"):rep(120) .. "'")   -- two rows at 100 columns
    cli.sleep(0.5)
    t:resize(60, 30)                             -- three rows
    cli.sleep(0.7)
    t:resize(140, 30)                            -- one row
    assert.is_true(t:wait_for("tick 6\n> local long = 'b+'$", 5), t:screen())
    local screen = t:screen()
    assert.equal(1, select(2, screen:gsub("local long", "")), screen)
    t:keys("Enter")
    t:type("#long")
    t:keys("Enter")
    assert.is_true(t:wait_for("\n120\n> ?$"), t:screen())
  end)

  it("runs a paste of many lines entry by entry, a multi-line entry included", function()
    local lines = {}
    for i = 1, 40 do lines[#lines + 1] = "x" .. i .. " = " .. i end
    lines[#lines + 1] = "for i = 1, 2 do"
    lines[#lines + 1] = "  print('loop', i)"
    lines[#lines + 1] = "end"
    lines[#lines + 1] = "x1 + x40"
    local f = assert(io.open(state .. "/paste", "w"))
    f:write(table.concat(lines, "\n") .. "\n")
    f:close()
    os.execute(("tmux -L %s load-buffer %s; tmux -L %s paste-buffer -t w"):format(t.sock,
      cli.quote(state .. "/paste"), t.sock))
    assert.is_true(t:wait_for("> x40 = 40\n> for i = 1, 2 do\n>>   print%('loop', i%)\n>> end\n"
      .. "loop%s+1\nloop%s+2\n> x1 %+ x40\n41\n> ?$", 10), t:screen())
  end)

  it("Ctrl-\\ lists the tasks above the prompt", function()
    t:type("weft.spawn(function() weft.sleep(60) end)")
    t:keys("Enter")
    assert.is_true(t:wait_for("\n> ?$"), t:screen())   -- the next prompt, even on a loaded machine
    t:type("half")
    assert.is_true(t:wait_for("\n> half$"), t:screen())
    t:keys("C-\\")
    assert.is_true(t:wait_for("weft: %d live tasks?\n.*waits on sleep.*\n> half$"), t:screen())
  end)
end)

-- }========
