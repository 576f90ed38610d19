-- weft.on_signal (API.md "Signals").
local weft = require "weft"
local uv = weft.uv

local function raise(sig) uv.kill(uv.os_getpid(), sig) end

describe("weft.on_signal", function()
  it("runs the handler as a task each time the signal arrives", function()
    local got = weft.run(function()
      local seen, ev = {}, weft.event()
      local h = weft.on_signal("SIGUSR1", function(name)
        seen[#seen + 1] = name .. ":" .. tostring(weft.current() ~= nil)
        if #seen == 2 then ev:set() end
      end)
      raise("sigusr1")
      weft.sleep(0.02)
      raise("sigusr1")
      weft.wait_for(function() ev:wait() end, 5)
      h:close()
      return seen
    end)
    assert.same({ "SIGUSR1:true", "SIGUSR1:true" }, got)
  end)

  it("runs every handler of a signal", function()
    local n = weft.run(function()
      local count = 0
      local a = weft.on_signal("SIGUSR2", function() count = count + 1 end)
      local b = weft.on_signal("SIGUSR2", function() count = count + 10 end)
      raise("sigusr2")
      for _ = 1, 100 do
        if count == 11 then break end
        weft.sleep(0.005)
      end
      a:close(); b:close()
      return count
    end)
    assert.equal(11, n)
  end)

  it("keeps the run alive while a handler is open", function()
    local h = weft.on_signal("SIGHUP", function() end)
    assert.equal(1, weft._stats().handles)
    h:close()
    h:close()
    assert.matches("closed", tostring(h))
    weft.run(function() weft.yield() end)
    assert.equal(0, weft._stats().handles)
  end)

  it("puts the default action back after the last close", function()
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write(([[
      package.cpath = "./%s/?.so;" .. package.cpath
      local weft = require "weft"
      local h = weft.on_signal("SIGUSR1", function() end)
      h:close()
      weft.run(function() weft.yield() end)
      weft.uv.kill(weft.uv.os_getpid(), "sigusr1")
      weft.run(function() weft.sleep(0.5) end)
      print("survived")
    ]]):format(os.getenv("WEFT_BUILD") or "build"))
    f:close()
    local p = io.popen((arg and arg[-1] or "lua5.4") .. " " .. script .. " 2>&1; echo status=$?")
    local out = p:read("a")
    p:close()
    os.remove(script)
    assert.not_matches("survived", out)
    assert.matches("status=138", out)
  end)

  it("checks its arguments", function()
    assert.has_error(function() weft.on_signal("USR1", print) end,
      "bad argument #1 to 'on_signal' (signal name such as \"SIGHUP\" expected, got \"USR1\")")
    assert.has_error(function() weft.on_signal("SIGNOPE", print) end,
      "bad argument #1 to 'on_signal' (unknown signal SIGNOPE)")
    assert.has_error(function() weft.on_signal("SIGUSR1") end,
      "bad argument #2 to 'on_signal' (function expected, got nil)")
  end)
end)
