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
    assert.matches("stdlib/weft/fs.lua:%d+: in ", r.stdout)
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
