-- weft.uv: luv on weft's own loop (API.md "The event loop and I/O").
local weft = require "weft"
local build = os.getenv("WEFT_BUILD") or "build"

-- Runs a Lua snippet in a fresh lua5.4 (the same interpreter as busted)
-- with weft's build on the cpath; returns its output and exit status.
local function lua(code)
  local interp = arg and arg[-1] or "lua5.4"
  local path = os.tmpname()   -- a fresh file: specs may run side by side
  local f = assert(io.open(path, "w"))
  f:write(('package.cpath = "./%s/?.so;" .. package.cpath\n'):format(build), code)
  f:close()
  local p = io.popen(interp .. " " .. path .. " 2>&1; echo \"exit=$?\"")
  local out = p:read("a")
  p:close()
  os.remove(path)
  return out
end

describe("weft.uv", function()
  it("is luv itself", function()
    assert.equal(require "luv", weft.uv)
    assert.is_function(weft.uv.new_timer)
  end)

  it("runs luv timers on weft's loop while tasks wait", function()
    local fired = weft.run(function()
      local ev = weft.event()
      local t = weft.uv.new_timer()
      t:start(5, 0, function() t:close(); ev:set() end)
      ev:wait()
      return true
    end)
    assert.is_true(fired)
  end)

  it("lets a luv callback spawn tasks and resolve futures", function()
    local got = weft.run(function()
      local f = weft.future()
      local t = weft.uv.new_timer()
      t:start(1, 0, function()
        t:close()
        weft.spawn(function() f:set("from a task") end)
      end)
      return f:await()
    end)
    assert.equal("from a task", got)
  end)

  it("keeps the run alive while a referenced luv handle is active", function()
    local out = lua([[
      local weft = require "weft"
      local t = weft.uv.new_timer()
      t:start(30, 0, function() print("fired"); t:close() end)
      weft.run(function() end)
      weft.uv.run()
    ]])
    assert.matches("fired", out)
  end)

  it("shares one loop and module whichever is required first", function()
    local out = lua([[
      local uv = require "luv"
      local weft = require "weft"
      print(weft.uv == uv)
      local t = uv.new_timer()
      local n = 0
      t:start(1, 0, function() n = n + 1; t:close() end)
      weft.run(function() weft.sleep(0.02) end)
      print("n=" .. n)
    ]])
    assert.matches("true\nn=1\nexit=0", out, 1, true)
  end)

  it("does not crash at exit with handles closed but never given a loop turn", function()
    local out = lua([[
      local weft = require "weft"
      local uv = weft.uv
      uv.new_timer():close()
      local t = uv.new_timer(); t:start(100000, 0, function() end); t:unref()
      uv.new_idle()
      print("done")
    ]])
    assert.matches("done\nexit=0", out, 1, true)
  end)

  it("does not crash at exit when luv came first either", function()
    local out = lua([[
      local uv = require "luv"
      local weft = require "weft"
      uv.new_timer():close()
      weft.run(function()
        _G.server = weft.net.listen("127.0.0.1", 0, function() end)
      end)
      print("done")
    ]])
    assert.matches("done\nexit=0", out, 1, true)
  end)

  it("reports an error in a luv callback like an unobserved task error", function()
    local out = lua([[
      local weft = require "weft"
      local t = weft.uv.new_timer()
      t:start(1, 0, function() t:close(); error("boom in callback") end)
      weft.run(function() weft.sleep(0.02); print("still running") end)
    ]])
    assert.matches("error in a luv callback: .-boom in callback", out)
    assert.matches("still running", out)
  end)

  it("does not count an unref'd luv handle as keeping the run alive", function()
    local t = weft.uv.new_timer()
    t:start(100000, 0, function() end)
    t:unref()
    assert.equal(0, weft._stats().handles)
    t:close()
    weft.run(function() weft.yield() end)
  end)
end)

-- issue 13: luv is opened on the first use of weft.uv (or `require "luv"`),
-- not by `require "weft"`: a no-op `weft run` never pays for its functions.
describe("weft.uv opened on first use", function()
  local cli = require "support.cli"

  it("is not open before its first use, in weft.so", function()
    local out = lua([[
      local weft = require "weft"
      print("before", rawget(weft, "uv"), package.loaded.luv)
      local t = weft.uv.new_timer()
      print("same", rawget(weft, "uv") == package.loaded.luv, require("luv") == weft.uv)
      weft.run(function()
        local ev = weft.event()
        t:start(5, 0, function() t:close(); ev:set() end)
        ev:wait()
        print("fired")
      end)
    ]])
    assert.matches("before\tnil\tnil", out, 1, true)
    assert.matches("same\ttrue\ttrue", out, 1, true)
    assert.matches("fired", out)
    assert.matches("exit=0", out)
  end)

  it("is opened once: require \"luv\" after package.loaded.luv was cleared gives it back", function()
    local out = lua([[
      local weft = require "weft"
      local uv = weft.uv
      package.loaded.luv = nil   -- as busted's insulate does between spec files
      print("once", require("luv") == uv, weft.uv == uv)
    ]])
    assert.matches("once\ttrue\ttrue", out, 1, true)
  end)

  it("opens in a task whose callbacks run after the task has ended, in build/weft", function()
    local r = cli.run({ "-e", [[
      print("before", rawget(weft, "uv"), package.loaded.luv)
      local done = weft.future()
      weft.spawn(function()
        local t = weft.uv.new_timer()   -- luv's first use, inside a task
        t:start(20, 0, function()
          collectgarbage(); collectgarbage()
          t:close()
          weft.spawn(function() done:set("callback ran") end)
        end)
      end):await()
      collectgarbage(); collectgarbage()
      print(done:await(), require("luv") == weft.uv)
    ]] })
    assert.equal(0, r.code, r.stderr)
    assert.matches("before\tnil\tnil", r.stdout, 1, true)
    assert.matches("callback ran\ttrue", r.stdout, 1, true)
  end)

  it("is not opened by a no-op weft run", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir .. "/src"))
    local f = assert(io.open(dir .. "/src/a.txt", "w"))
    f:write("a\n")
    f:close()
    f = assert(io.open(dir .. "/Weftfile.lua", "w"))
    f:write([[
      local files = weft.fs.glob("src/*.txt")
      task "copy" {
        sources = { "src/**/*.txt" }, generates = { "out.txt" },
        function() weft.sh("cat src/a.txt > out.txt") end,
      }
      task "report" {
        deps = { "copy" },
        function() print("luv open:", package.loaded.luv ~= nil, #files) end,
      }
    ]])
    f:close()
    local first = cli.run({ "run", "-C", dir, "copy" })
    assert.equal(0, first.code, first.stderr)
    local r = cli.run({ "run", "-C", dir, "report" })
    os.execute("rm -rf " .. dir)
    assert.equal(0, r.code, r.stderr)
    assert.matches("copy%s+up to date", r.stderr .. r.stdout)
    assert.matches("luv open:%s+false%s+1", r.stdout)
  end)
end)
