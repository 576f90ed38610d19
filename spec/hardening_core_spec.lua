-- Hardening of the core (issue 14): huge deadlines, cancellations that must
-- not be lost or mistaken, waits that absorb an interruption and must still
-- end in Deadlock, nested weft.run, virtual time. Each block names the defect.
local weft = require "weft"
local cli = require "spec.support.cli"

-- CPU seconds a process has used (utime + stime), from /proc.
local function cpu_seconds(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  local fields = {}
  for w in s:match("%) (.*)"):gmatch("%S+") do fields[#fields + 1] = w end
  return (tonumber(fields[12]) + tonumber(fields[13])) / 100
end

describe("huge deadlines (defect 1)", function()
  it("weft.sleep(math.huge) arms no timer: with nothing else to wait for, a Deadlock", function()
    local ok, err = pcall(weft.run, function() weft.sleep(math.huge) end)
    assert.is_false(ok)
    assert.equal("Deadlock", err.kind)
    assert.matches("waits on sleep", err.message)
    assert.is_false(weft._stats().timer)
  end)

  it("a finite huge sleep waits (its timer armed) and can be cancelled", function()
    for _, s in ipairs({ 1e17, math.maxinteger, 2^64 / 1000, 2^70, 1e300 }) do
      weft.run(function()
        local t = weft.spawn(weft.sleep, s)
        weft.sleep(0.01)
        assert.equal("pending", t:status())
        t:cancel()
        assert.is_false(pcall(t.await, t))
      end)
    end
  end)

  it("timeout, wait_for and wait with a huge or infinite deadline", function()
    for _, s in ipairs({ math.huge, 1e17, math.maxinteger, 2^70 }) do
      local r = weft.run(function()
        local a = weft.timeout(s, function() weft.sleep(0.01) return "a" end)
        local b = weft.wait_for(function() weft.sleep(0.01) return "b" end, s)
        local t = weft.spawn(weft.sleep, 0.01)
        local done = weft.wait({ t }, { timeout = s })
        return a .. b .. #done
      end)
      assert.equal("ab1", r)
    end
  end)

  it("the CLI does not spin on weft.sleep(math.huge) and SIGTERM still ends it", function()
    local h = cli.start({ "-e", [[
      weft.uv.new_timer():start(600000, 0, function() end)  -- keeps the loop alive
      weft.spawn(function() weft.sleep(math.huge) end)
      weft.sleep(0.1) print "x" io.stdout:flush()
      weft.sleep(math.maxinteger)]] })
    local ok, err = pcall(function()
      assert.is_true(h.wait_output("x", 10))
      local before = cpu_seconds(h.pid)
      cli.sleep(0.5)
      local used = cpu_seconds(h.pid) - before
      assert.is_true(used < 0.2, "the loop spins: " .. used .. " s of CPU in 0.5 s")
      h.signal("TERM")
      assert.equal(143, h.wait(10))
    end)
    if cli.alive(h.pid) then os.execute("kill -KILL " .. h.pid) end
    h.cleanup()
    assert(ok, err)
  end)

  it("under virtual time an infinite sleep is a Deadlock, a huge one jumps", function()
    local ok, err = pcall(weft.run_virtual, function() weft.sleep(math.huge) end)
    assert.is_false(ok)
    assert.equal("Deadlock", err.kind)
    local now = weft.run_virtual(function() weft.sleep(1e17) return weft.now() end)
    assert.equal(1e17, now)
  end)
end)
