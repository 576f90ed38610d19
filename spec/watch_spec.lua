-- `weft run --watch` (API.md "Incremental runs ... watch") with real file
-- changes under a temporary directory. Each test is bounded: every wait has a
-- deadline, and the watcher (and the sleep its task may run) is stopped by
-- pid on every path. Bad input tried: a Weftfile edited into a syntax error.
local cli = require "support.cli"

local Q = cli.quote
local read = cli.read_file

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function count(text, pattern)
  local n = 0
  for _ in (text or ""):gmatch(pattern) do n = n + 1 end
  return n
end

-- Waits until `pred()` is true (at most `secs`); returns its last value.
local function eventually(pred, secs)
  local deadline = os.time() + (secs or 10)
  repeat
    local v = pred()
    if v then return v end
    os.execute("sleep 0.05")
  until os.time() > deadline
  return pred()
end

local WEFTFILE = [[
local function get(p) local f = assert(io.open(p)); local s = f:read("a"); f:close(); return s end
task "cat" { sources = { "src/*.txt" }, generates = { "out.txt" }, function()
  local f = assert(io.open("log", "a")); f:write("cat\n"); f:close()
  local parts = {}
  for _, p in ipairs(weft.fs.glob("src/*.txt")) do parts[#parts + 1] = get(p) end
  weft.sh("echo $$ > sleeper.pid; exec sleep " .. get("delay"))
  f = assert(io.open("out.txt", "w")); f:write(table.concat(parts)); f:close()
end }
default "cat"
]]

describe("weft run --watch", function()
  local dir, h
  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. Q(dir .. "/src"))
    write(dir .. "/Weftfile.lua", WEFTFILE)
    write(dir .. "/delay", "0")
    write(dir .. "/src/a.txt", "a")
  end)
  after_each(function()
    if h then
      if not h.code then h.signal("KILL"); h.wait(5) end
      h.cleanup()
      h = nil
    end
    local pid = tonumber((read(dir .. "/sleeper.pid") or ""):match("%d+"))
    if pid then os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
    os.execute("rm -rf " .. Q(dir))
  end)

  local function runs() return count(read(dir .. "/log"), "cat\n") end

  it("reruns after a change, also to a new file matching a glob, and ends with 130", function()
    h = cli.start({ "run", "-C", dir, "--watch", "--plain" })
    assert.equal(1, eventually(function() return runs() == 1 and 1 end))
    assert.equal("a", eventually(function() return read(dir .. "/out.txt") end))
    eventually(function() return h.stderr():find("watching") end)
    write(dir .. "/src/b.txt", "b")   -- a file the glob now matches
    assert.equal("ab", eventually(function()
      local s = read(dir .. "/out.txt"); return s == "ab" and s end))
    assert.equal(2, runs())
    write(dir .. "/src/a.txt", "A")
    assert.equal("Ab", eventually(function()
      local s = read(dir .. "/out.txt"); return s == "Ab" and s end))
    os.execute("touch " .. Q(dir .. "/src/b.txt"))   -- no change of content: nothing runs
    os.execute("sleep 0.5")
    assert.equal(3, runs())
    h.signal("INT")
    assert.equal(130, h.wait(10))
  end)

  it("cancels a running task whose source changed and runs it again in the same run", function()
    write(dir .. "/delay", "30")
    h = cli.start({ "run", "-C", dir, "--watch", "--plain" })
    local first = eventually(function()
      return tonumber((read(dir .. "/sleeper.pid") or ""):match("%d+"))
    end)
    assert.is_number(first)
    write(dir .. "/delay", "0")
    write(dir .. "/src/a.txt", "changed")
    assert.equal("changed", eventually(function()
      local s = read(dir .. "/out.txt"); return s == "changed" and s end, 15))
    assert.is_false(cli.alive(first), "the first run's process survived")
    assert.equal(2, runs())
    assert.matches("src/a.txt changed: restarting cat", h.stderr(), 1, true)
    assert.not_matches("interrupted", h.stderr(), 1, true)   -- restarted in the same run
    h.signal("INT")
    assert.equal(130, h.wait(10))
  end)

  it("watches a tree of 2000 files and keeps a change made while another task runs", function()
    assert(os.execute(("cd %s && for d in $(seq 1 40); do mkdir -p tree/d$d/e; "
      .. "for f in $(seq 1 25); do echo $d.$f > tree/d$d/f$f.txt; echo $f > tree/d$d/e/g$f.txt; "
      .. "done; done"):format(Q(dir))))
    write(dir .. "/Weftfile.lua", [[
local function mark(n) local f = assert(io.open("log", "a")); f:write(n, "\n"); f:close() end
task "slow" { sources = { "delay" }, generates = { "slow.out" }, function()
  mark("slow")
  weft.sh("echo $$ > sleeper.pid; exec sleep $(cat delay)")
  local f = assert(io.open("slow.out", "w")); f:write("s"); f:close()
end }
task "many" { sources = { "tree/**/*.txt" }, generates = { "many.out" }, function()
  mark("many")
  local n = 0
  for _, p in ipairs(weft.fs.glob("tree/**/*.txt")) do
    local f = assert(io.open(p)); n = n + #f:read("a"); f:close()
  end
  local f = assert(io.open("many.out", "w")); f:write(n); f:close()
end }
default { "slow", "many" }
]])
    write(dir .. "/delay", "1.5")
    h = cli.start({ "run", "-C", dir, "--watch", "--plain", "-j2" })
    local before = eventually(function() return read(dir .. "/many.out") end)
    assert.truthy(before)
    assert.truthy(eventually(function() return (read(dir .. "/log") or ""):find("slow") end))
    write(dir .. "/tree/d37/e/g25.txt", "a longer line than before\n")   -- while slow runs
    local after = eventually(function()
      local s = read(dir .. "/many.out"); return s ~= before and s end, 15)
    assert.truthy(after, "the change made during the run was missed")
    assert.equal(tonumber(before) + 23, tonumber(after))
    assert.equal(1, count(read(dir .. "/log"), "slow\n"))   -- slow was not redone
    h.signal("INT")
    assert.equal(130, h.wait(10))
  end)

  it("keeps the last good Weftfile when it is edited into a syntax error", function()
    h = cli.start({ "run", "-C", dir, "--watch", "--plain" })
    eventually(function() return runs() == 1 end)
    eventually(function() return h.stderr():find("watching") end)
    write(dir .. "/Weftfile.lua", WEFTFILE .. "\ntask 'broken' {\n")
    assert.truthy(eventually(function()
      return h.stderr():find("keeping the last good pipeline", 1, true) end))
    write(dir .. "/src/a.txt", "still watching")
    assert.equal("still watching", eventually(function()
      local s = read(dir .. "/out.txt"); return s == "still watching" and s end))
    h.signal("INT")
    assert.equal(130, h.wait(10))
  end)
end)
