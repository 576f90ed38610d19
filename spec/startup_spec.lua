-- What makes a short `weft` run short (bench/README.md, incremental section,
-- has the times): the stdlib is embedded precompiled but keeps its names and
-- lines, and listing directories starts no threads.
local cli = require "spec.support.cli"

describe("the embedded stdlib", function()
  it("keeps chunk names and line numbers, so tracebacks point into stdlib/weft", function()
    local r = cli.run({ "-e", [[
      local info = debug.getinfo(require("weft.pipeline").load, "S")
      print(info.source, info.linedefined > 0)
      print(select(2, pcall(require("weft.pipeline").load, "/nonexistent/Weftfile.lua")))
      local ok, err = xpcall(weft.fs.read, debug.traceback, 42)
      print(err)
    ]] })
    assert.equal(0, r.code, r.stderr)
    assert.matches("^@stdlib/weft/pipeline.lua\ttrue\n", r.stdout)
    assert.matches("no pipeline file /nonexistent/Weftfile.lua", r.stdout, 1, true)
    -- weft.fs's functions other than glob live in fs_rest.lua (issue 13), named as weft.fs's
    assert.matches("stdlib/weft/fs_rest.lua:%d+: in ", r.stdout)
    assert.matches("in function 'weft.fs.read'", r.stdout, 1, true)
  end)

  -- scripts/embed.lua leaves out local variable names only (issue 13: they
  -- were 2/5 of the strings a no-op run interned while loading the stdlib)
  it("keeps upvalue names, which the definition hash reads to skip _ENV", function()
    local r = cli.run({ "-e", [[
      local names = {}
      for i = 1, math.huge do
        local name = debug.getupvalue(require("weft.pipeline").load, i)
        if not name then break end
        names[#names + 1] = name
      end
      print(table.concat(names, " "))
      print(debug.getlocal(require("weft.pipeline").load, 1))
    ]] })
    assert.equal(0, r.code, r.stderr)
    assert.matches("%f[%w_]_ENV%f[^%w_]", r.stdout)
    assert.not_matches("(no name)", r.stdout, 1, true)
    assert.matches("\nnil\n$", r.stdout)   -- what is gone: a stdlib function's local names
  end)

  it("still names the stdlib line of a bug's error, without the local's name", function()
    local r = cli.run({ "-e", [[
      print(select(2, pcall(require("weft.summary").render, nil)))
    ]] })
    assert.equal(0, r.code, r.stderr)
    assert.matches("^stdlib/weft/summary.lua:%d+: attempt to index a nil value", r.stdout)
  end)
end)

describe("weft.fs.glob", function()
  local function threads_after(code)
    local r = cli.run({ "-e", code .. [[
      local f = io.open("/proc/self/status")
      print(f:read("a"):match("Threads:%s*(%d+)"))
      f:close()
    ]] })
    assert.equal(0, r.code, r.stderr)
    return r.stdout
  end

  it("lists directories without starting libuv's thread pool, inside a task or not", function()
    assert.equal("true\n1\n", threads_after(
      "weft.run(function() print(#weft.fs.glob('host/*.c') > 0) end)"))
    assert.equal("true\n1\n", threads_after("print(#weft.fs.glob('spec/*_spec.lua') > 0)"))
  end)

  it("still starts the pool for the calls that read and write files", function()
    assert.is_not.equal("1\n",
      threads_after("weft.run(function() weft.fs.read('Makefile') end)"))
  end)
end)

describe("a no-op weft run", function()
  local weft = require "weft"
  local Q = cli.quote

  local function write(path, text)
    local f = assert(io.open(path, "wb"))
    f:write(text)
    f:close()
  end

  local function stat_of(path)
    local kind, size, mtime, ino = weft._hash.stat(path)
    return kind and ("%s %d %d %d"):format(kind, size, mtime, ino) or "missing"
  end

  -- a new directory with in.txt and a Weftfile whose task "copy" runs `body`
  local function project(body)
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. Q(dir)))
    write(dir .. "/in.txt", "x\n")
    write(dir .. "/Weftfile.lua", 'task "copy" { sources = { "in.txt" }, generates = { "out.txt" },'
      .. " function()\n" .. body .. '\nend }\ndefault "copy"\n')
    return dir
  end

  it("writes nothing to .weft/ once the recorded files are older than the racy window", function()
    local dir = project([[
  local f = assert(io.open("log", "a")); f:write("copy\n"); f:close()
  weft.sh("cp in.txt out.txt")]])
    local function run()
      local r = cli.run({ "run", "-C", dir }, { env = "CI=true" })
      assert.equal(0, r.code, r.stderr)
      local f = io.open(dir .. "/log")
      local ran = f and f:read("a") or ""
      if f then f:close() end
      os.remove(dir .. "/log")
      return ran
    end
    assert.equal("copy\n", run())
    -- files written a moment ago are hashed again (racy); once they are old,
    -- the stats recorded with the hashes decide
    assert(os.execute(("touch -d '-5 seconds' %s/in.txt %s/out.txt"):format(Q(dir), Q(dir))))
    assert.equal("", run())   -- touched, same content: not run, stats recorded
    local before = stat_of(dir .. "/.weft/state.db")
    local wal_before = stat_of(dir .. "/.weft/state.db-wal")   -- kept between runs, empty
    assert.matches("^file 0 ", wal_before)
    assert.equal("", run())
    assert.equal(before, stat_of(dir .. "/.weft/state.db"))
    assert.equal(wal_before, stat_of(dir .. "/.weft/state.db-wal"))
    write(dir .. "/in.txt", "y\n")   -- and a real change is still seen
    assert.equal("copy\n", run())
    os.execute("rm -rf " .. Q(dir))
  end)

  -- what only a task that runs needs: retries, the text of its definition
  -- (weft.incremental_text), the output layer of the reporter
  it("does not load weft.retry, weft.incremental_text or the output layer on a no-op", function()
    local dir = project('  weft.sh("cp in.txt out.txt")')
    local function loaded_after_run()   -- through the Lua API: the CLI's process ends at once
      local r = cli.run({ "-e", ([[
        local pipeline = require "weft.pipeline"
        weft._sys.chdir(%q)   -- as `weft run` does
        local P = pipeline.load("Weftfile.lua")
        pipeline.run(P, { targets = { "copy" }, reporter = require("weft.reporter.plain").new() })
        for _, m in ipairs({ "weft.retry", "weft.incremental_text", "weft.reporter.output" }) do
          io.write(tostring(package.loaded[m] ~= nil), " ")
        end
      ]]):format(dir) })
      assert.equal(0, r.code, r.stderr)
      return r.stdout
    end
    assert.matches("true true true", loaded_after_run())   -- the task ran
    assert(os.execute(("touch -d '-5 seconds' %s/in.txt %s/out.txt"):format(Q(dir), Q(dir))))
    -- touched: the stats changed, so the content is hashed (the slow check)
    assert.matches("false true false", loaded_after_run())
    assert.matches("false false false", loaded_after_run())   -- the stats decide: up to date
    os.execute("rm -rf " .. Q(dir))
  end)
end)

describe("weft._hash.verify", function()
  local weft = require "weft"
  local H = weft._hash

  -- A temporary file holding "abc": its path, size, mtime and inode.
  local function abc_file()
    local p = os.tmpname()
    local f = assert(io.open(p, "wb"))
    f:write("abc")
    f:close()
    return p, select(2, H.stat(p))
  end

  it("is true when every recorded file has its recorded stat, hashed after the racy window", function()
    local p, size, mtime, ino = abc_file()
    local function line(path, h, sz, mt, i, checked)
      return table.concat({ path, h, sz, mt, i, checked }, "\t")
    end
    local late = mtime + 2000000000
    assert.is_true(H.verify(line(p, "h", size, mtime, ino, late), 1000000000))
    assert.is_true(H.verify("", 1000000000))
    -- hashed within the racy window of its mtime: the stat proves nothing
    assert.same({ false, 1 }, { H.verify(line(p, "h", size, mtime, ino, mtime + 10), 1000000000) })
    assert.same({ false, 2 }, { H.verify(line(p, "h", size, mtime, ino, late) .. "\n"
      .. line(p, "h", size + 1, mtime, ino, late), 1000000000) })
    assert.same({ false, 1 }, { H.verify(line(p, "-", 0, 0, 0, 0), 1000000000) })
    assert.is_true(H.verify(line(p .. ".none", "-", 0, 0, 0, 0), 1000000000))
    assert.same({ false, 1 }, { H.verify(line("/", "h", size, mtime, ino, late), 1000000000) })
    -- malformed lines are "not verified", never an error
    for _, bad in ipairs({ "x", "p\th", p .. "\th\t1\t2\t3", p .. "\th\ta\t2\t3\t4",
        p .. "\th\t1\t2\t3\t99999999999999999999" }) do
      assert.same({ false, 1 }, { H.verify(bad, 1000000000) }, bad)
    end
    assert.matches("bad argument #1 to 'verify' (string expected, got table)",
      select(2, pcall(function() return H.verify({}, 1) end)), 1, true)
    assert.matches("bad argument #2 to 'verify' (number expected, got no value)",
      select(2, pcall(function() return H.verify("") end)), 1, true)
    os.remove(p)
  end)

  it("with a stat cache, takes a line it verified as verified, and nothing else", function()
    local p, size, mtime, ino = abc_file()
    local function line(sz, checked)
      return table.concat({ p, "h", sz, mtime, ino, checked }, "\t")
    end
    local good, late = line(size, mtime + 2000000000), mtime + 2000000000
    local cache = H.stat_cache()
    assert.is_true(H.verify(good, 1000000000, cache))
    assert.is_true(H.verify(good .. "\n" .. good, 1000000000, cache))
    -- the same path in another line is judged on its own fields
    assert.same({ false, 2 }, { H.verify(good .. "\n" .. line(size, mtime + 10), 1000000000, cache) })
    assert.same({ false, 1 }, { H.verify(line(size + 1, late), 1000000000, cache) })
    assert.same({ false, 1 }, { H.verify(good .. "x", 1000000000, cache) })
    assert.same({ false, 1 }, { H.verify(line(size + 1, late), 1000000000, cache) })
    assert.is_true(H.verify(good, 1000000000, cache))
    -- a rewrite is seen by a new cache only (incremental.lua makes one when a task runs)
    local f = assert(io.open(p, "wb"))
    f:write("abcd")
    f:close()
    assert.is_true(H.verify(good, 1000000000, cache))
    assert.same({ false, 1 }, { H.verify(good, 1000000000, H.stat_cache()) })
    assert.matches("bad argument #3 to 'verify' (weft.stat_cache expected, got table)",
      select(2, pcall(function() return H.verify("", 1, {}) end)), 1, true)
    os.remove(p)
  end)

  it("has a state statement :first() that returns one row's columns without a table", function()
    local p = os.tmpname()
    local db = assert(weft._statedb.open(p))
    assert.is_true(db:exec("CREATE TABLE t(a, b); INSERT INTO t VALUES (1, 'x')"))
    local get = assert(db:prepare("SELECT a, b FROM t WHERE a = ?"))
    assert.same({ true, 1, "x" }, { get:first(1) })
    assert.same({ false }, { get:first(2) })
    local bad = assert(db:prepare("SELECT abs(?)"))
    assert.same({ true, 3 }, { bad:first(-3) })
    get:finalize()
    assert.matches("statement is finalized", select(2, pcall(get.first, get, 1)), 1, true)
    db:close()
    os.remove(p)
  end)
end)

describe("weft._hash.defhash", function()
  local H = require("weft")._hash
  local NAMES = { "deps", "sources" }

  local function body_with(v)
    return function() return v end
  end

  it("digests fields and the body with what it captures, deeply, whatever the pairs' order", function()
    local cfg1 = { flags = { "-O2", "-g" }, cc = "cc", n = 1 }
    local cfg2 = {}
    for _, k in ipairs({ "n", "cc", "flags" }) do cfg2[k] = cfg1[k] end
    local h = H.defhash({ sources = { "a.c" } }, NAMES, body_with(cfg1))
    assert.equal(32, #h)
    assert.equal(h, H.defhash({ sources = { "a.c" } }, NAMES, body_with(cfg2)))
    local changed = {
      H.defhash({ sources = { "b.c" } }, NAMES, body_with(cfg1)),
      H.defhash({ sources = { "a.c" }, deps = { "x" } }, NAMES, body_with(cfg1)),
      H.defhash({ sources = { "a.c" } }, NAMES, body_with({ flags = { "-O0", "-g" }, cc = "cc", n = 1 })),
      H.defhash({ sources = { "a.c" } }, NAMES, body_with({ flags = { "-g", "-O2" }, cc = "cc", n = 1 })),
      H.defhash({ sources = { "a.c" } }, NAMES, body_with({ flags = { "-O2", "-g" }, cc = "cc", n = 1.0 })),
      H.defhash({ sources = { "a.c" } }, NAMES, function() return cfg1, 1 end),
      H.defhash({ sources = { "a.c" } }, NAMES, nil),
    }
    local seen = { [h] = true }
    for i, c in ipairs(changed) do
      assert.is_nil(seen[c], "variant " .. i)
      seen[c] = true
    end
    -- fields not named (desc is not part of the key) do not count
    assert.equal(h, H.defhash({ sources = { "a.c" }, desc = "x" }, NAMES, body_with(cfg1)))
  end)

  -- string.dump(f, true) with every prototype's linedefined and
  -- lastlinedefined written as 0: the bytecode defhash digests, read in Lua
  -- as lundump.c reads Lua 5.4's format (the reference the C rewrite is held to).
  local dump54 = dofile("scripts/dump54.lua")
  local function without_lines(code)
    return dump54.rewrite(code, { no_lines = true })
  end

  -- The digest is XXH3-128 of the bytes the walk writes; this pins them, so
  -- a faster walk cannot change the key recorded in .weft/ by earlier runs.
  -- (The lines a function is defined at were part of them until the sixth
  -- session: an upgrade across it reruns each task once.)
  it("digests the same bytes as ever: tags, native sizes, the stripped bytecode", function()
    local function str(s) return "s" .. string.pack("T", #s) .. s end
    local long = string.rep("0123456789", 1000)   -- more than the walk's first buffer
    assert.equal(H.string("k" .. str("sources") .. "A" .. string.pack("j", 2) .. str("a.c") .. str(long)),
      H.defhash({ sources = { "a.c", long } }, NAMES))
    local n = 7
    local function body() return long, n end
    assert.equal(H.string("BF" .. without_lines(string.dump(body, true)) .. "ulong\0" .. str(long)
      .. "un\0i" .. string.pack("j", 7)), H.defhash({}, NAMES, body))
  end)

  it("does not count the lines a body and the functions it captures are defined at", function()
    local src = "local helper = function(x) return x .. '!' end\n"
      .. "return function() local t = { 1.5, 2, 'k', true } return helper(tostring(t)) end\n"
    local at_top = load(src)()
    local lower = load(("\n"):rep(40) .. src)()
    assert.equal(H.defhash({}, NAMES, at_top), H.defhash({}, NAMES, lower))
    -- the same digest of the code alone names a body in the stored text
    assert.equal(H.code(at_top), H.code(lower))
    assert.equal(H.string(without_lines(string.dump(at_top, true))), H.code(at_top))
    assert.is_nil(H.code(string.len))
    assert.matches("bad argument #1", select(2, pcall(H.code, "x")))
    assert.not_equal(H.defhash({}, NAMES, at_top),
      H.defhash({}, NAMES, load(src:gsub("'!'", "'?'"))()))
    -- nested prototypes (the helper inside the body) lose their lines too
    local nested = "return function() local function inner() return 1 end return inner() end"
    assert.equal(H.defhash({}, NAMES, load(nested)()), H.defhash({}, NAMES, load("\n\n" .. nested)()))
    -- the C rewrite and the reference read the same bytes on many shapes
    -- (bodies capturing nothing but _ENV: the digest is then the bytecode's)
    for i, body in ipairs({ load(nested)(), load("\n\n" .. nested)(), function() end, string.len,
        function(...) return select("#", ...), 2^53, -0.0, math.mininteger, ("x"):rep(300) end }) do
      if debug.getinfo(body, "S").what ~= "C" then
        assert.equal(H.string("BF" .. without_lines(string.dump(body, true))),
          H.defhash({}, NAMES, body), i)
      end
    end
  end)

  it("digests a function captured by many definitions as its own bytecode each time", function()
    local function expected(body, helper)
      return H.string("BF" .. without_lines(string.dump(body, true)) .. "uhelper\0F"
        .. without_lines(string.dump(helper, true)))
    end
    local helper = load("return 1")
    local function body() return helper() end
    assert.equal(expected(body, helper), H.defhash({}, NAMES, body))
    assert.equal(expected(body, helper), H.defhash({}, NAMES, body))   -- kept, the same
    -- another function, maybe at the address of a collected one: its own bytecode
    for i = 1, 50 do
      helper = load("return " .. i)
      assert.equal(expected(body, helper), H.defhash({}, NAMES, body), i)
      collectgarbage()
    end
  end)

  it("stops at cycles, objects and C functions, and checks its arguments", function()
    local t = { 1 }
    t.self = t
    local obj = setmetatable({ big = string.rep("x", 10) }, {})
    local f = function() return t, obj, print end
    local before = H.defhash({}, {}, f)
    assert.equal(before, H.defhash({}, {}, f))
    obj.big = "changed"   -- an object counts as "an object", not by content
    assert.equal(before, H.defhash({}, {}, f))
    t[2] = "more"         -- a table met again is a cycle; the rest of it counts
    assert.not_equal(before, H.defhash({}, {}, f))
    assert.matches("bad argument #1 to 'defhash' (table expected, got nil)",
      select(2, pcall(function() return H.defhash(nil, {}) end)), 1, true)
    assert.matches("bad argument #3 to 'defhash' (function expected, got number)",
      select(2, pcall(function() return H.defhash({}, {}, 1) end)), 1, true)
  end)
end)

describe("weft run's collector while the Weftfile loads", function()
  -- main.c makes the collector's pause 400 until the Weftfile has loaded
  it("still collects: a Weftfile making 250 MB of garbage peaks far below it", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. cli.quote(dir)))
    local f = assert(io.open(dir .. "/Weftfile.lua", "wb"))
    f:write([[
local keep = {}
for i = 1, 2000000 do
  local t = { i, tostring(i) }
  if i % 100 == 0 then keep[#keep + 1] = t end
end
local f = io.open("/proc/self/status")
print(f:read("a"):match("VmHWM:%s*(%d+)"))
f:close()
task "t" { function() end }
default "t"
]])
    f:close()
    local r = cli.run({ "run", "-C", dir })
    os.execute("rm -rf " .. cli.quote(dir))
    assert.equal(0, r.code, r.stderr)
    local peak_kib = tonumber(r.stdout:match("^(%d+)\n"))
    -- AddressSanitizer's quarantine and shadow memory make RSS meaningless
    -- there: the bound is checked on the plain build
    if not (os.getenv("WEFT_BUILD") or ""):match("asan") then
      assert.is_true(peak_kib < 64 * 1024, "peak " .. tostring(peak_kib) .. " KiB")
    end
  end)
end)
