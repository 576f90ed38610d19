-- Incremental pipelines (API.md "Incremental runs, explanations, variables,
-- watch"): `weft run` as a child process on Weftfiles written into a fresh
-- temporary directory per test. Every task appends its name to `log` when it
-- really runs, so "what ran" is read from the file, not from weft's summary.
--
-- Bad inputs tried: a source that is a directory, a glob matching nothing, two
-- tasks generating one file, a declared output not written, a missing and a
-- malformed depfile, a deleted output, a damaged and a foreign-version state
-- file, a `.weft` that is not a directory, unknown fields and wrong types,
-- two bodies, unknown targets, kill -9 in the middle of a run, a second run
-- started while the first holds the lock.
local cli = require "support.cli"
local weft = require "weft"

local Q = cli.quote

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local read = cli.read_file

-- Waits (at most 20 s) until a file written by a running task exists.
local function wait_for(path)
  local deadline = os.time() + 20
  while not read(path) and os.time() < deadline do os.execute("sleep 0.05") end
end

local function tempdir()
  local p = os.tmpname()
  os.remove(p)
  assert(sh("mkdir -p " .. Q(p)))
  return p
end

-- Runs `weft run -C dir ARGS...`; returns the result and the tasks that ran
-- (from dir/log, which is then emptied).
local function run(dir, args, opts)
  local a = { "run", "-C", dir, "-j1" }
  for _, x in ipairs(args or {}) do a[#a + 1] = x end
  opts = opts or {}
  opts.env = "CI=true " .. (opts.env or "")
  local r = cli.run(a, opts)
  local ran = {}
  for name in (read(dir .. "/log") or ""):gmatch("[^\n]+") do ran[#ran + 1] = name end
  table.sort(ran)
  r.ran = table.concat(ran, " ")
  os.remove(dir .. "/log")
  return r
end

-- A Weftfile prelude: `mark(name)` appends to log.
local PRELUDE = [[
local function mark(name)
  local f = assert(io.open("log", "a")); f:write(name, "\n"); f:close()
end
local function put(path, text)
  local f = assert(io.open(path, "w")); f:write(text); f:close()
end
local function get(path)
  local f = assert(io.open(path)); local s = f:read("a"); f:close(); return s
end
]]

local CHAIN = PRELUDE .. [[
task "gen" { sources = { "in.txt" }, generates = { "mid.txt" }, function()
  mark("gen"); put("mid.txt", get("in.txt"):upper():gsub("%s+$", "") .. "\n")
end }
task "use" { deps = { "gen" }, sources = { "mid.txt" }, generates = { "out.txt" }, function()
  mark("use"); put("out.txt", "[" .. get("mid.txt") .. "]")
end }
default "use"
]]

describe("incremental runs", function()
  local dir
  before_each(function() dir = tempdir() end)
  after_each(function() sh("rm -rf " .. Q(dir)) end)

  it("runs a task once, then reports it up to date until an input changes", function()
    write(dir .. "/Weftfile.lua", CHAIN)
    write(dir .. "/in.txt", "hello\n")
    local r = run(dir)
    assert.equal(0, r.code, r.stderr)
    assert.equal("gen use", r.ran)
    assert.equal("[HELLO\n]", read(dir .. "/out.txt"))
    r = run(dir)
    assert.equal(0, r.code, r.stderr)
    assert.equal("", r.ran)
    assert.matches("\n  gen +up to date", r.stderr)
    assert.matches("\n  use +up to date", r.stderr)
    write(dir .. "/in.txt", "world\n")
    r = run(dir)
    assert.equal("gen use", r.ran)
    assert.equal("[WORLD\n]", read(dir .. "/out.txt"))
  end)

  -- A run checking most of a file's tasks reads their rows in one scan of
  -- the keys "FILE:..."; one target alone is looked up by its key. Both
  -- must find the same rows, and never another Weftfile's (which shares
  -- .weft/state.db and task names here).
  it("reads the same rows for all tasks at once as one by one, and only its own file's", function()
    local many = { PRELUDE }
    for i = 1, 12 do
      many[#many + 1] = ([[task "t%d" { sources = { "in%d.txt" }, generates = { "out%d.txt" },
        function() mark("t%d"); put("out%d.txt", get("in%d.txt")) end }
]]):format(i, i, i, i, i, i)
      write(("%s/in%d.txt"):format(dir, i), "v" .. i)
    end
    local names = {}
    for i = 1, 12 do names[i] = "t" .. i end
    many[#many + 1] = ("default { %q }\n"):format(table.concat(names, '", "')):gsub('\\"', '"')
    write(dir .. "/Weftfile.lua", table.concat(many))
    write(dir .. "/other.lua", table.concat(many))   -- the same task names, another file
    local r = run(dir)
    assert.equal(0, r.code, r.stderr)
    assert.equal(12, select(2, r.ran:gsub("t%d+", "")))
    r = run(dir)                                     -- all 12 checked: the rows at once
    assert.equal(0, r.code, r.stderr)
    assert.equal("", r.ran)
    assert.matches("12 up to date", r.stderr)
    r = run(dir, { "-f", "other.lua" })              -- its own rows: none yet
    assert.equal(0, r.code, r.stderr)
    assert.equal(12, select(2, r.ran:gsub("t%d+", "")))
    write(dir .. "/in7.txt", "changed")
    r = run(dir, { "t7" })                           -- one target: looked up by key
    assert.equal("t7", r.ran)
    r = run(dir, { "t3" })
    assert.equal("", r.ran)
    write(dir .. "/in3.txt", "changed")
    r = run(dir)                                     -- at once again: exactly the changed one
    assert.equal("t3", r.ran)
    r = run(dir, { "-f", "other.lua" })
    assert.equal("t3 t7", r.ran)
  end)

  it("stats a file anew after a task that rewrote it ran, though a check before saw it", function()
    -- "peek" is checked first (-j1, declaration order) and sees mid.txt as
    -- it was; "gen" then rewrites it (declaring only a stamp that does not
    -- change, so its dependents' dependency signature stays the same);
    -- "use" must see the new mid.txt, not the stat the checks of a run share
    -- while no task runs (weft._hash.stat_cache)
    write(dir .. "/Weftfile.lua", PRELUDE .. [[
task "peek" { sources = { "mid.txt" }, generates = { "peek.txt" }, function()
  mark("peek"); put("peek.txt", get("mid.txt"))
end }
task "gen" { sources = { "in.txt" }, generates = { "stamp.txt" }, function()
  mark("gen"); put("mid.txt", get("in.txt"):upper()); put("stamp.txt", "done\n")
end }
task "use" { deps = { "gen" }, sources = { "mid.txt" }, generates = { "out.txt" }, function()
  mark("use"); put("out.txt", "[" .. get("mid.txt") .. "]")
end }
default { "peek", "use" }
]])
    write(dir .. "/in.txt", "hello\n")
    write(dir .. "/mid.txt", "HELLO\n")
    local r = run(dir)
    assert.equal(0, r.code, r.stderr)
    assert.equal("gen peek use", r.ran)
    -- out of the racy window, so that the next checks take the stat path
    assert(sh("cd " .. Q(dir) .. " && touch -d '-10 seconds' in.txt mid.txt stamp.txt out.txt peek.txt"))
    assert.equal("", run(dir).ran)   -- records the new stats
    write(dir .. "/in.txt", "world\n")
    r = run(dir)
    assert.equal(0, r.code, r.stderr)
    assert.equal("gen use", r.ran)
    assert.equal("[WORLD\n]", read(dir .. "/out.txt"))
  end)

  it("reruns nothing when a file is touched or rewritten with its old content", function()
    write(dir .. "/Weftfile.lua", CHAIN)
    write(dir .. "/in.txt", "a\n")
    assert.equal("gen use", run(dir).ran)
    sh("touch -d '+2 seconds' " .. Q(dir .. "/in.txt"))
    assert.equal("", run(dir).ran)
    write(dir .. "/in.txt", "b\n")   -- a branch switch away ...
    write(dir .. "/in.txt", "a\n")   -- ... and back
    assert.equal("", run(dir).ran)
  end)

  it("sees a same-size rewrite that kept the mtime, when the hash was taken in that tick", function()
    -- the racy-timestamp case: in.txt is recorded right after it was written;
    -- a rewrite with the same size and the same mtime must still be seen
    write(dir .. "/Weftfile.lua", CHAIN)
    write(dir .. "/in.txt", "aaaa\n")
    assert.equal("gen use", run(dir).ran)
    sh(("cp -p %s %s"):format(Q(dir .. "/in.txt"), Q(dir .. "/stamp")))
    write(dir .. "/in.txt", "bbbb\n")
    sh(("touch -r %s %s"):format(Q(dir .. "/stamp"), Q(dir .. "/in.txt")))
    local r = run(dir, { "--explain" })
    assert.equal("gen use", r.ran)
    assert.matches("gen runs: in.txt changed", r.stderr, 1, true)
    assert.equal("[BBBB\n]", read(dir .. "/out.txt"))
  end)

  it("does not rerun what follows a task that wrote the same bytes (early cut-off)", function()
    write(dir .. "/Weftfile.lua", CHAIN)
    write(dir .. "/in.txt", "same\n")
    assert.equal("gen use", run(dir).ran)
    write(dir .. "/in.txt", "same  \n")   -- gen strips trailing space: same mid.txt
    local r = run(dir, { "--explain" })
    assert.equal("gen", r.ran)
    assert.matches("explain: gen runs: in.txt changed", r.stderr, 1, true)
  end)

  it("reruns a task whose generated file was deleted, and says why", function()
    write(dir .. "/Weftfile.lua", CHAIN)
    write(dir .. "/in.txt", "x\n")
    run(dir)
    os.remove(dir .. "/out.txt")
    local w = cli.run({ "why", "-C", dir, "use" })
    assert.equal(0, w.code, w.stderr)
    assert.equal("use would run: out.txt is missing\n", w.stdout)
    assert.equal("use", run(dir).ran)
    w = cli.run({ "why", "-C", dir, "use" })
    assert.equal("use is up to date\n", w.stdout)
  end)

  it("puts the body and its captured values in the key: var(), NAME=VALUE, $NAME", function()
    write(dir .. "/Weftfile.lua", PRELUDE .. [[
local CFLAGS = var("CFLAGS", "-O2")
local opts = { level = { n = tonumber(var("LEVEL", "1")) } }
task "cc" { sources = { "in.txt" }, generates = { "o.txt" }, function()
  mark("cc"); put("o.txt", CFLAGS .. " " .. opts.level.n)
end }
default "cc"
]])
    write(dir .. "/in.txt", "x")
    assert.equal("cc", run(dir).ran)
    assert.equal("-O2 1", read(dir .. "/o.txt"))
    assert.equal("", run(dir).ran)
    local w = cli.run({ "why", "-C", dir, "cc", "CFLAGS=-O0" })
    assert.equal('cc would run: CFLAGS changed: "-O2" -> "-O0"\n', w.stdout)
    local r = run(dir, { "CFLAGS=-O0" })
    assert.equal("cc", r.ran)
    assert.equal("-O0 1", read(dir .. "/o.txt"))
    assert.equal("cc", run(dir, {}, { env = "CFLAGS=-O3" }).ran)
    assert.equal("-O3 1", read(dir .. "/o.txt"))
    assert.equal("", run(dir, { "CFLAGS=-O3" }).ran)   -- the argument wins over $CFLAGS
    r = run(dir, { "CFLAGS=-O3", "LEVEL=2", "--explain" })
    assert.equal("cc", r.ran)                        -- a value deep in a captured table
    assert.matches("explain: cc runs: opts changed", r.stderr, 1, true)
  end)

  it("reruns when the task's body or a field changes, not when its desc does", function()
    local function file(body, desc, timeout)
      return PRELUDE .. ([[
task "t" { desc = %q, timeout = %d, sources = { "in.txt" }, generates = { "o" }, function()
  mark("t"); put("o", %q)
end }
default "t"
]]):format(desc, timeout, body)
    end
    write(dir .. "/in.txt", "x")
    write(dir .. "/Weftfile.lua", file("a", "first", 10))
    assert.equal("t", run(dir).ran)
    write(dir .. "/Weftfile.lua", file("a", "second", 10))
    assert.equal("", run(dir).ran)
    write(dir .. "/Weftfile.lua", file("b", "second", 10))
    local r = run(dir, { "--explain" })
    assert.equal("t", r.ran)
    assert.matches("t runs: its body changed", r.stderr, 1, true)
    write(dir .. "/Weftfile.lua", file("b", "second", 20))
    r = run(dir, { "--explain" })
    assert.equal("t", r.ran)
    assert.matches("t runs: field timeout changed: 10 -> 20", r.stderr, 1, true)
    -- where the body stands in the file is no part of it: lines added above
    -- it (a comment, another task) rerun nothing
    write(dir .. "/Weftfile.lua", "-- a comment\n\ntask 'other' { function() end }\n"
      .. file("b", "second", 20))
    r = run(dir, { "t", "--explain" })
    assert.equal("", r.ran, r.stderr)
    assert.matches("1 up to date", r.stderr)
  end)

  it("names what changed, not the body, when a captured value changed and the body moved", function()
    local function file(above)
      return above .. PRELUDE .. [[
local FLAG = var("FLAG", "a")
task "t" { sources = { "in.txt" }, generates = { "o" }, function()
  mark("t"); put("o", FLAG)
end }
default "t"
]]
    end
    write(dir .. "/in.txt", "x")
    write(dir .. "/Weftfile.lua", file(""))
    assert.equal("t", run(dir).ran)
    write(dir .. "/Weftfile.lua", file("-- moved down\n\n\n"))
    local r = run(dir, { "FLAG=b", "--explain" })
    assert.equal("t", r.ran)
    assert.matches('t runs: FLAG changed: "a" -> "b"', r.stderr, 1, true)
  end)

  it("reads a depfile: its entries are sources of the next run", function()
    write(dir .. "/Weftfile.lua", PRELUDE .. [[
task "cc" { sources = { "a.c" }, generates = { "a.o" }, depfile = "a.d", function()
  mark("cc"); put("a.o", get("a.c") .. get("a b.h") .. get("c.h"))
  put("a.d", "a.o: a.c a\\ b.h \\\n  c.h\n")
end }
default "cc"
]])
    write(dir .. "/a.c", "c")
    write(dir .. "/a b.h", "h1")
    write(dir .. "/c.h", "c1")
    local r0 = run(dir)
    assert.equal(0, r0.code, r0.stderr)
    assert.equal("cc", r0.ran)
    assert.equal("", run(dir).ran)
    write(dir .. "/c.h", "c2")
    local r = run(dir, { "--explain" })
    assert.equal("cc", r.ran)
    assert.matches("cc runs: c.h changed", r.stderr, 1, true)
    write(dir .. "/a b.h", "h2")
    assert.equal("cc", run(dir).ran)
  end)

  it("does not trust a depfile entry that changed while the task ran", function()
    write(dir .. "/Weftfile.lua", PRELUDE .. [[
task "cc" { sources = { "a.c" }, generates = { "a.o" }, depfile = "a.d", function()
  mark("cc")
  put("a.o", get("a.c") .. get("h.h"))
  put("h.h", "edited by someone while cc ran")
  put("a.d", "a.o: a.c h.h\n")
end }
default "cc"
]])
    write(dir .. "/a.c", "c")
    write(dir .. "/h.h", "h")
    assert.equal("cc", run(dir).ran)
    local r = run(dir, { "--explain" })
    assert.equal("cc", r.ran)   -- a.o was built from the old h.h
    assert.matches("cc runs: h.h changed", r.stderr, 1, true)
  end)

  it("warns about a missing or malformed depfile and treats it as no extra sources", function()
    write(dir .. "/Weftfile.lua", PRELUDE .. [[
task "cc" { sources = { "a.c" }, generates = { "a.o" }, depfile = "a.d", function()
  mark("cc"); put("a.o", "o")
  if var("BAD", "") ~= "" then put("a.d", "this is not make syntax\n") end
end }
default "cc"
]])
    write(dir .. "/a.c", "c")
    local r = run(dir)
    assert.equal(0, r.code, r.stderr)
    assert.matches('warning: task "cc": depfile a.d is missing; no extra sources', r.stderr, 1, true)
    assert.equal("", run(dir).ran)
    r = run(dir, { "-B" }, { env = "BAD=1" })
    assert.equal(0, r.code, r.stderr)
    assert.equal("cc", r.ran)
    assert.matches('depfile a.d is malformed', r.stderr, 1, true)
  end)

  it("runs everything with -B/--always", function()
    write(dir .. "/Weftfile.lua", CHAIN)
    write(dir .. "/in.txt", "x\n")
    run(dir)
    assert.equal("gen use", run(dir, { "-B" }).ran)
    assert.equal("gen use", run(dir, { "--always" }).ran)
    assert.equal("", run(dir).ran)
  end)

  it("always runs a task with neither sources nor generates", function()
    write(dir .. "/Weftfile.lua", PRELUDE .. [[
task "plain" { function() mark("plain") end }
default "plain"
]])
    assert.equal("plain", run(dir).ran)
    assert.equal("plain", run(dir).ran)
    assert.is_nil(read(dir .. "/.weft/state.db"))   -- no state for such a pipeline
  end)

  it("lets a task that runs add one after a task found up to date (ctx:add)", function()
    write(dir .. "/Weftfile.lua", CHAIN .. [[
task "adder" { deps = { "use" }, function(ctx)
  mark("adder")
  ctx:add("added", { deps = { "gen" }, function() mark("added:" .. get("mid.txt"):sub(1, 5)) end })
end }
task "last" { deps = { "adder" }, function() mark("last") end }
default "last"
]])
    write(dir .. "/in.txt", "hello\n")
    local r = run(dir)
    assert.equal(0, r.code, r.stderr)
    assert.equal("added:HELLO adder gen last use", r.ran)
    r = run(dir)   -- gen and use up to date, adder and last run again
    assert.equal(0, r.code, r.stderr)
    assert.equal("added:HELLO adder last", r.ran)
    assert.matches("\n  gen +up to date", r.stderr)
    assert.matches("summary: 3 done, 2 up to date", r.stderr)
  end)

  it("loads the Weftfile compiled in .weft/ while its text is the same, never a stale one", function()
    local cache = dir .. "/.weft/Weftfile.lua.luac"
    local function weftfile(name)
      return PRELUDE .. ([[
task "t" { sources = { "in.txt" }, generates = { "out.txt" }, function()
  mark("%s"); put("out.txt", get("in.txt"))
  if get("in.txt") == "fail\n" then error("failing") end
end }
default "t"
]]):format(name)
    end
    write(dir .. "/Weftfile.lua", weftfile("a"))
    write(dir .. "/in.txt", "x\n")
    local r = run(dir)
    assert.equal(0, r.code, r.stderr)
    assert.equal("a", r.ran)
    local compiled = read(cache)
    assert.is_string(compiled)
    r = run(dir)
    assert.equal(0, r.code, r.stderr)
    assert.equal("", r.ran)
    assert.equal(compiled, read(cache))   -- read, not written again
    -- the same length, another body: parsed anew, the task runs
    write(dir .. "/Weftfile.lua", weftfile("b"))
    r = run(dir)
    assert.equal(0, r.code, r.stderr)
    assert.equal("b", r.ran)
    local compiled_b = read(cache)
    assert.not_equal(compiled, compiled_b)
    -- what a chunk loaded from the cache says is what the text says
    write(dir .. "/in.txt", "fail\n")
    local first = run(dir)
    assert.equal(1, first.code)
    assert.matches("Weftfile.lua:12: failing", first.stderr, 1, true)
    local second = run(dir)
    assert.equal(1, second.code)
    assert.matches("Weftfile.lua:12: failing", second.stderr, 1, true)
    write(dir .. "/in.txt", "x\n")
    -- the cache is what runs: bytecode of another text under the same key
    local H = weft._hash
    local other = string.dump(assert(load(weftfile("c"), "@Weftfile.lua")))
    write(cache, read(cache):sub(1, 32) .. " " .. H.string(other) .. "\n" .. other)
    r = run(dir)
    assert.equal(0, r.code, r.stderr)
    assert.equal("c", r.ran)
    -- damaged (the digest does not match, or no header): the text is parsed
    -- and the cache written again
    for _, bad in ipairs({ read(cache):sub(1, -2) .. "!", "garbage" }) do
      write(cache, bad)
      write(dir .. "/in.txt", "y" .. bad:sub(-1) .. "\n")
      r = run(dir)
      assert.equal(0, r.code, r.stderr)
      assert.equal("b", r.ran)
      assert.equal(compiled_b, read(cache))
    end
    -- something else in its place: the text is parsed, nothing left behind
    os.remove(cache)
    assert(sh("mkdir " .. Q(cache)))
    r = run(dir)
    assert.equal(0, r.code, r.stderr)
    assert.is_nil(io.open(cache .. ".tmp"))
    assert(sh("rmdir " .. Q(cache)))
    -- `weft why` writes nothing
    assert.equal(0, cli.run({ "why", "-C", dir, "t" }).code)
    assert.is_nil(read(cache))
  end)

  describe("bad input and faults", function()
    it("fails a task that did not write a file it declares", function()
      write(dir .. "/Weftfile.lua", PRELUDE .. [[
task "lazy" { generates = { "build/x.o" }, function() mark("lazy") end }
default "lazy"
]])
      local r = run(dir)
      assert.equal(1, r.code)
      assert.matches("did not generate build/x.o", r.stderr, 1, true)
      assert.equal("lazy", run(dir).ran)   -- not recorded: runs again
    end)

    it("makes a source that is a directory a usage error naming it", function()
      write(dir .. "/Weftfile.lua", PRELUDE .. [[
task "t" { sources = { "sub" }, function() mark("t") end }
default "t"
]])
      sh("mkdir " .. Q(dir .. "/sub"))
      local r = run(dir)
      assert.equal(2, r.code, r.stderr)
      assert.matches('task "t": source sub is a directory', r.stderr, 1, true)
      assert.equal("", r.ran)
    end)

    it("warns about a glob that matches nothing and still runs the task once", function()
      write(dir .. "/Weftfile.lua", PRELUDE .. [[
task "t" { sources = { "src/*.c" }, generates = { "o" }, function() mark("t"); put("o", "") end }
default "t"
]])
      local r = run(dir)
      assert.equal(0, r.code, r.stderr)
      assert.equal("t", r.ran)
      assert.matches('task "t": sources glob "src/*.c" matches nothing', r.stderr, 1, true)
      assert.equal("", run(dir).ran)
      sh("mkdir " .. Q(dir .. "/src") .. " && echo x > " .. Q(dir .. "/src/a.c"))
      r = run(dir, { "--explain" })
      assert.equal("t", r.ran)
      assert.matches("t runs: src/a.c is a new source", r.stderr, 1, true)
    end)

    it("makes two tasks generating one file a usage error", function()
      write(dir .. "/Weftfile.lua", [[
task "a" { generates = { "out/x" }, function() end }
task "b" { generates = "./out/x", function() end }
default "b"
]])
      local r = run(dir)
      assert.equal(2, r.code)
      assert.matches('Weftfile.lua:2: tasks "a" and "b" both generate out/x', r.stderr, 1, true)
    end)

    it("warns and runs everything over a damaged state file, then works again", function()
      write(dir .. "/Weftfile.lua", CHAIN)
      write(dir .. "/in.txt", "x\n")
      run(dir)
      write(dir .. "/.weft/state.db", ("garbage, not SQLite\n"):rep(500))
      os.remove(dir .. "/.weft/state.db-wal")
      os.remove(dir .. "/.weft/state.db-shm")
      local r = run(dir)
      assert.equal(0, r.code, r.stderr)
      assert.equal("gen use", r.ran)
      assert.matches("warning: .*state.db is damaged", r.stderr)
      r = run(dir)
      assert.equal("", r.ran, r.stderr)
    end)

    -- The WAL and its index stay in .weft/ between runs (no files made and
    -- removed by every run), the WAL emptied when a run closes the state.
    it("keeps the WAL file empty between runs, and a damaged state beside it is redone", function()
      write(dir .. "/Weftfile.lua", CHAIN)
      write(dir .. "/in.txt", "x\n")
      assert.equal("gen use", run(dir).ran)
      local f = assert(io.open(dir .. "/.weft/state.db-wal", "rb"))
      assert.equal(0, f:seek("end"))
      f:close()
      assert.equal("", run(dir).ran)
      write(dir .. "/.weft/state.db", ("garbage, not SQLite\n"):rep(500))   -- -wal, -shm kept
      local r = run(dir)
      assert.equal(0, r.code, r.stderr)
      assert.equal("gen use", r.ran)
      assert.matches("warning: .*state.db is damaged", r.stderr)
      assert.equal("", run(dir).ran)
    end)

    it("starts afresh over a state file of another version", function()
      write(dir .. "/Weftfile.lua", CHAIN)
      write(dir .. "/in.txt", "x\n")
      run(dir)
      local db = assert(weft._statedb.open(dir .. "/.weft/state.db"))
      assert(db:exec("PRAGMA user_version = 99"))
      db:close()
      local r = run(dir)
      assert.equal("gen use", r.ran)
      assert.matches("written by another version of weft %(99%)", r.stderr)
      assert.equal("", run(dir).ran)
    end)

    it("warns, runs everything and records nothing when .weft/ is unusable", function()
      write(dir .. "/Weftfile.lua", CHAIN)
      write(dir .. "/in.txt", "x\n")
      write(dir .. "/.weft", "a file where the state directory should be")
      local r = run(dir)
      assert.equal(0, r.code, r.stderr)
      assert.equal("gen use", r.ran)
      assert.matches("warning: cannot ", r.stderr)
      assert.matches("running everything, recording nothing", r.stderr, 1, true)
      assert.equal("gen use", run(dir).ran)
    end)
  end)

  describe("crashes and concurrent runs", function()
    local KILLABLE = PRELUDE .. [[
for _, n in ipairs({ "a", "b" }) do
  task(n) { generates = { n .. ".out" }, function() mark(n); put(n .. ".out", n) end }
end
task "slow" { generates = { "slow.out" }, function()
  mark("slow")
  weft.sh("echo $$ > slow.pid; sleep $(cat slow.secs 2>/dev/null || echo 0); echo done > slow.out")
end }
task "last" { deps = { "a", "b", "slow" }, generates = { "last.out" }, function()
  mark("last"); put("last.out", "l")
end }
default "last"
]]

    it("after kill -9 in the middle of a run, reruns exactly the interrupted tasks", function()
      write(dir .. "/Weftfile.lua", KILLABLE)
      write(dir .. "/slow.secs", "30")
      local h = cli.start({ "run", "-C", dir, "-j1", "a", "b", "slow", "last" })
      -- the run is killed while slow sleeps: a and b are recorded, slow is not
      wait_for(dir .. "/slow.pid")
      local child = tonumber((read(dir .. "/slow.pid") or ""):match("%d+"))
      h.signal("KILL")
      h.wait(10)
      -- weft is gone: stop slow's process group (sh and its sleep) ourselves
      if child then os.execute("kill -KILL -" .. child .. " 2>/dev/null") end
      h.cleanup()
      assert.is_number(child, "slow never started")
      assert.is_nil(read(dir .. "/slow.out"))
      assert.equal("a\nb\nslow\n", read(dir .. "/log"))
      os.remove(dir .. "/log")
      write(dir .. "/slow.secs", "0")
      local r = run(dir)
      assert.equal(0, r.code, r.stderr)
      assert.equal("last slow", r.ran)
    end)

    it("makes a second run in the same directory wait for the first, saying so", function()
      write(dir .. "/Weftfile.lua", KILLABLE)
      write(dir .. "/slow.secs", "1.5")
      local first = cli.start({ "run", "-C", dir, "-j1", "slow" })
      -- let the first take the lock
      wait_for(dir .. "/slow.pid")
      os.execute("sleep 0.1")
      local second = cli.run({ "run", "-C", dir, "-j1" }, { env = "CI=true" })
      local code1 = first.wait(20)
      first.cleanup()
      assert.equal(0, code1)
      assert.equal(0, second.code, second.stderr)
      assert.matches("waiting for another weft run in ", second.stderr, 1, true)
      -- the second started after the first had recorded slow
      assert.equal("slow\na\nb\nlast\n", read(dir .. "/log"))
    end)
  end)

  describe("where and how tasks run", function()
    it("runs tasks in the Weftfile's directory (-f and -C)", function()
      sh("mkdir -p " .. Q(dir .. "/sub"))
      write(dir .. "/sub/Weftfile.lua", [[
task "where" { function() weft.sh("pwd > where.txt") end }
default "where"
]])
      local r = cli.run({ "run", "-f", dir .. "/sub/Weftfile.lua" }, { env = "CI=true" })
      assert.equal(0, r.code, r.stderr)
      local real = io.popen("cd " .. Q(dir .. "/sub") .. " && pwd -P"):read("l")
      assert.equal(real, (read(dir .. "/sub/where.txt") or ""):gsub("\n$", ""))
      os.remove(dir .. "/sub/where.txt")
      r = cli.run({ "run", "-C", dir, "-f", "sub/Weftfile.lua" }, { env = "CI=true" })
      assert.equal(0, r.code, r.stderr)
      assert.equal(real, (read(dir .. "/sub/where.txt") or ""):gsub("\n$", ""))
      -- --trace and --report name files relative to where weft was started
      r = cli.run({ "run", "-f", "sub/Weftfile.lua", "--trace", "t.json", "--report", "r.html" },
        { env = "cd " .. Q(dir) .. " && CI=true" })
      assert.equal(0, r.code, r.stderr)
      assert.truthy(read(dir .. "/t.json"))
      assert.truthy(read(dir .. "/r.html"))
      assert.is_nil(read(dir .. "/sub/t.json"))
    end)

    it("gives processes /dev/null as stdin unless the task says stdin = \"inherit\"", function()
      write(dir .. "/Weftfile.lua", [[
task "closed" { function() print("closed:" .. weft.sh("cat").stdout .. ":") end }
task "open" { stdin = "inherit", function() print("open:" .. weft.sh("cat").stdout .. ":") end }
]])
      local r = cli.run({ "run", "-C", dir, "closed" }, { stdin = "typed\n", env = "CI=true" })
      assert.equal(0, r.code, r.stderr)
      assert.matches("closed::", r.stdout, 1, true)
      r = cli.run({ "run", "-C", dir, "open" }, { stdin = "typed\n", env = "CI=true" })
      assert.matches("open:typed\n", r.stdout, 1, true)
    end)

    it("treats NAME=VALUE arguments as variables, never as targets", function()
      write(dir .. "/Weftfile.lua", [[
local WHO = var("WHO", "nobody")
task "hi" { function() print("hi " .. WHO) end }
default "hi"
]])
      local r = cli.run({ "run", "-C", dir, "WHO=you" }, { env = "CI=true" })
      assert.equal(0, r.code, r.stderr)
      assert.matches("hi you", r.stdout, 1, true)
      r = cli.run({ "run", "-C", dir }, { env = "CI=true WHO=env" })
      assert.matches("hi env", r.stdout, 1, true)
      r = cli.run({ "run", "-C", dir }, { env = "CI=true" })
      assert.matches("hi nobody", r.stdout, 1, true)
    end)
  end)

  describe("strict task fields", function()
    local function load_error(body)
      write(dir .. "/Weftfile.lua", body)
      local r = cli.run({ "run", "-C", dir }, { env = "CI=true" })
      assert.equal(2, r.code, r.stderr)
      return r.stderr
    end

    it("rejects an unknown field, naming it and the line, with the closest name", function()
      local e = load_error('\ntask "a" { dep = { "b" }, function() end }\n')
      assert.matches([[Weftfile.lua:2: unknown field 'dep' in task "a" (did you mean 'deps'?)]],
        e, 1, true)
      e = load_error('task "a" { sorces = { "x" }, function() end }\n')
      assert.matches("(did you mean 'sources'?)", e, 1, true)
    end)

    it("rejects wrong types and two body functions", function()
      assert.matches([[field 'timeout' must be a positive number of seconds, got "ten"]],
        load_error('task "a" { timeout = "ten", function() end }'), 1, true)
      assert.matches("field 'retries' must be a non-negative integer, got -1",
        load_error('task "a" { retries = -1, function() end }'), 1, true)
      assert.matches("two body functions",
        load_error('task "a" { function() end, function() end }'), 1, true)
      assert.matches("two body functions",
        load_error('task "a" { function() end, fn = function() end }'), 1, true)
      assert.matches([[field 'stdin' must be "inherit" or "null"]],
        load_error('task "a" { stdin = "keyboard", function() end }'), 1, true)
    end)

    it("suggests the closest task for an unknown target or dependency", function()
      write(dir .. "/Weftfile.lua", 'task "build" { function() end }\n')
      local r = cli.run({ "run", "-C", dir, "biuld" }, { env = "CI=true" })
      assert.equal(2, r.code)
      assert.matches('unknown target "biuld" (did you mean "build"?)', r.stderr, 1, true)
      assert.matches('depends on unknown task "buld" (did you mean "build"?)',
        load_error('task "build" { function() end }\ntask "t" { deps = "buld" }'), 1, true)
      write(dir .. "/Weftfile.lua", 'task "build" { function() end }\n')
      r = cli.run({ "why", "-C", dir, "biuld" })
      assert.equal(2, r.code)
      assert.matches('^weft why: unknown target "biuld" %(did you mean "build"%?%)', r.stderr)
      r = cli.run({ "why", "-C", dir })
      assert.equal(2, r.code)
      assert.equal("weft why: expects one task name\n", r.stderr)
    end)
  end)

  it("marks tasks that never started as skipped, not interrupted, after Ctrl-C", function()
    write(dir .. "/Weftfile.lua", [[
task "long" { function() weft.sh("echo $$ > long.pid; exec sleep 30") end }
task "after" { deps = { "long" }, function() end }
default "after"
]])
    local h = cli.start({ "run", "-C", dir, "--plain" })
    wait_for(dir .. "/long.pid")
    h.signal("INT")
    local code = h.wait(15)
    local err = h.stderr()
    h.cleanup()
    assert.equal(130, code)
    assert.matches("\n  long +interrupted", err)
    assert.matches("\n  after +skipped", err)
  end)
end)

describe("globs with [...] classes", function()
  it("match the same paths in weft.fs.glob and in sources", function()
    local dir = tempdir()
    for _, n in ipairs({ "a1.c", "b2.c", "c3.h", "z9.c", ".hidden.c", "x[.c" }) do
      write(dir .. "/" .. n, n)
    end
    local sync = require("weft.incremental").glob
    local function names(list)
      local out = {}
      for i, p in ipairs(list) do out[i] = p:match("[^/]+$") end
      return table.concat(out, " ")
    end
    for pattern, want in pairs({
      ["[ab]*.c"] = "a1.c b2.c", ["[a-c]?.[ch]"] = "a1.c b2.c c3.h", ["[!a-c]*"] = "x[.c z9.c",
      ["x[.c"] = "x[.c", ["*.c"] = "a1.c b2.c x[.c z9.c",
    }) do
      local p = dir .. "/" .. pattern
      assert.equal(want, names(weft.run(function() return weft.fs.glob(p) end)), pattern)
      assert.equal(want, names(sync(p)), pattern)
    end
    sh("rm -rf " .. Q(dir))
  end)

  it("match ** at every depth, once each, in weft.fs.glob and in sources", function()
    local dir = tempdir()
    assert(sh("mkdir -p " .. Q(dir .. "/x/y/z") .. " " .. Q(dir .. "/.h") .. " " .. Q(dir .. "/d.c")))
    for _, n in ipairs({ "a.c", "x/b.c", "x/y/c.c", "x/y/z/e.c", "x/y/f.h", ".h/g.c", "x/y/.i.c" }) do
      write(dir .. "/" .. n, n)
    end
    local sync = require("weft.incremental").glob
    for pattern, want in pairs({
      ["**/*.c"] = "a.c d.c x/b.c x/y/c.c x/y/z/e.c", ["x/**/*.c"] = "x/b.c x/y/c.c x/y/z/e.c",
      ["**/y/*"] = "x/y/c.c x/y/f.h x/y/z", ["**/**/c.c"] = "x/y/c.c",
    }) do
      local p = dir .. "/" .. pattern
      local function rel(list)
        local out = {}
        for i, f in ipairs(list) do out[i] = f:sub(#dir + 2) end
        return table.concat(out, " ")
      end
      assert.equal(want, rel(weft.run(function() return weft.fs.glob(p) end)), pattern)
      assert.equal(want, rel(sync(p)), pattern)
    end
    sh("rm -rf " .. Q(dir))
  end)
end)

describe("weft.fs.hash and the host hashing", function()
  it("returns the XXH3-128 hex digest of a file's content", function()
    local p = os.tmpname()
    write(p, "")
    local h = weft.run(function() return weft.fs.hash(p) end)
    assert.equal("99aa06d3014798d86001c324468d497f", h)   -- XXH3-128 of no bytes
    write(p, "abc")
    local h2 = weft.run(function() return weft.fs.hash(p) end)
    assert.equal(32, #h2)
    assert.not_equal(h, h2)
    assert.equal(h2, weft._hash.string("abc"))
    os.remove(p)
  end)

  it("raises IOError for a missing file or a directory, and checks its argument", function()
    local ok, e = pcall(weft.fs.hash, "/nonexistent/x")
    assert.is_false(ok)
    assert.equal("IOError", e.kind)
    assert.equal("ENOENT", e.code)
    ok, e = pcall(weft.fs.hash, "/")
    assert.equal("EISDIR", e.code)
    assert.matches("bad argument #1 to 'hash'", select(2, pcall(weft.fs.hash, {})), 1, true)
    assert.matches("bad argument #1 to 'file' (string expected, got table)",
      select(2, pcall(function() return weft._hash.file({}) end)), 1, true)
    assert.matches("bad argument #1 to 'stat' (string expected, got no value)",
      select(2, pcall(function() return weft._hash.stat() end)), 1, true)
  end)

  it("has a state binding that reports SQL errors as values and checks its arguments", function()
    local p = os.tmpname()
    local db = assert(weft._statedb.open(p))
    assert.is_nil((db:prepare("not sql")))
    assert.is_true(db:exec("CREATE TABLE t(a, b)"))
    local put = assert(db:prepare("INSERT INTO t VALUES (?, ?)"))
    assert.equal(1, put:run(1, "x"))
    assert.equal(1, put:run(2.5, nil))
    assert.matches("bad argument #2 to 'run' (nil, boolean, number or string expected",
      select(2, pcall(function() return put:run(1, {}) end)), 1, true)
    assert.same({ { 1, "x" }, { 2.5 } }, db:prepare("SELECT a, b FROM t ORDER BY a"):rows())
    db:close()
    assert.matches("database is closed", select(2, pcall(db.exec, db, "SELECT 1")), 1, true)
    assert.matches("bad argument #1 to 'open'",
      select(2, pcall(function() return weft._statedb.open() end)), 1, true)
    os.remove(p)
  end)
end)

describe("examples/data-incremental", function()
  it("reruns only the day whose file changed, and stops where the cleaned bytes are equal", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute(("cp -r examples/data-incremental %s && rm -rf %s/.weft"):format(Q(dir), Q(dir))))
    local function go(args)
      local a = { "run", "-f", dir .. "/Weftfile.lua", "OUT=out", "--explain" }
      for _, x in ipairs(args or {}) do a[#a + 1] = x end
      return cli.run(a, { env = "CI=true" })
    end
    local r = go()
    assert.equal(0, r.code, r.stderr)
    assert.matches("report +| oslo,2%.3", r.stdout)
    r = go()
    assert.equal(0, r.code, r.stderr)
    assert.equal(0, select(2, r.stderr:gsub("explain:", "")))
    write(dir .. "/input/monday.csv", "city,temp\nOslo,  3\nLima,19\noslo,5\n")   -- spacing only
    r = go()
    assert.matches("explain: clean:monday runs: input/monday.csv changed", r.stderr, 1, true)
    assert.equal(1, select(2, r.stderr:gsub("explain:", "")))
    write(dir .. "/input/monday.csv", "city,temp\nOslo,13\nLima,19\noslo,5\n")
    r = go()
    assert.matches("explain: aggregate runs: out/clean/monday.csv changed", r.stderr, 1, true)
    assert.matches("report +| oslo,5%.7", r.stdout)
    os.execute("rm -rf " .. Q(dir))
  end)
end)
