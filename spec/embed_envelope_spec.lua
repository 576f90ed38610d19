-- The safety envelope (issue 17): the plugin host example (examples/embed/
-- pluginhost.c, built against this build's libweft.a) survives hostile
-- plugins and keeps its own 10 ms timer going; the same envelope from Lua
-- (weft.run options) and from the CLI (--max-memory, --step-budget).
local cli = require "support.cli"
local weft = require "weft"

local cbuild = require "support.cbuild"
local sh = cbuild.sh

describe("the plugin host", function()
  local bin = os.tmpname()
  setup(function() cbuild.compile("examples/embed/pluginhost.c", bin) end)
  teardown(function() os.remove(bin) end)

  it("stops each hostile plugin, reports it to its log, and runs the good one", function()
    -- a budget with room: a bomb's step must not look like a spin on a loaded machine
    local code, out = sh(bin .. " --budget-ms 50 examples/embed/plugins/*.lua")
    assert.equal(0, code, out)
    assert.matches("%[escape.lua%] escapes: closed closed closed closed closed closed", out)
    assert.matches("%[escape.lua%] stopped: escape.lua:%d+: escape failed", out)
    assert.matches('%[spin.lua%] stopped: Timeout: step budget exceeded: task "task%-%d+" ran %d+ ms '
      .. "without awaiting %(at spin.lua:3%)", out)
    assert.matches("%[bomb.lua%] stopped: MemoryError: memory limit exceeded %(32.0 MB%)", out)
    local storms = 0
    for _ in out:gmatch("that nobody awaited: storm.lua:3: storm %d+") do storms = storms + 1 end
    assert.equal(20, storms)
    assert.matches("%[storm.lua%] storm over", out)
    assert.matches("%[good.lua%] five naps taken\nlog: %[good.lua%] finished", out)
  end)

  it("keeps its 10 ms timer ticking while a plugin spins (preempted)", function()
    local code, out = sh(bin .. " --preempt --budget-ms 1 --seconds 1 examples/embed/plugins/spin.lua "
      .. "examples/embed/plugins/good.lua")
    assert.equal(0, code, out)
    assert.matches("%[good.lua%] finished", out)             -- the others go on
    assert.matches("%[spin.lua%] stopped: Cancelled", out)    -- shutdown reached it
    local rate = tonumber(out:match("heartbeat %d+ ticks in [%d.]+ s %((%d+)/s%)"))
    -- a loop frozen by the spinner gives 0-1 ticks; the pace itself (83-93/s against the
    -- issue's 80/s) is a timing claim and lives in bench/README.md: on a machine loaded by
    -- other jobs, or under AddressSanitizer, 52-79/s were seen, so the spec holds the
    -- behaviour with a generous bound
    local floor = 30
    assert.is_true(rate >= floor, out)
  end)
end)

describe("weft.run options", function()
  local function spin() while true do end end
  local function bomb()
    local t = {}
    for i = 1, 1e7 do
      t[i] = ("x"):rep(1000) .. i
      weft.yield()                            -- a bomb, not a spinner
    end
  end

  it("stop a spinning task and a memory bomb; the other tasks go on", function()
    -- a budget well above one bomb step, even with a GC cycle of 16 MB on a loaded machine
    local r = weft.run({ max_memory = "16M", step_budget = "200ms" }, function()
      local s, b = weft.spawn(spin), weft.spawn(bomb)
      local good = weft.spawn(function() weft.sleep(0.01) return "fine" end)
      local ok1, e1 = pcall(s.await, s)
      local ok2, e2 = pcall(b.await, b)
      return { ok1, tostring(e1), ok2, tostring(e2), good:await() }
    end)
    assert.is_false(r[1])
    assert.matches('^Timeout: step budget exceeded: task "task%-%d+" ran %d+ ms without awaiting %(at .-embed_envelope_spec.lua:%d+%)', r[2])
    assert.is_false(r[3])
    assert.equal("MemoryError: memory limit exceeded (16.0 MB)", r[4])
    assert.equal("fine", r[5])
  end)

  it("last for their run only", function()
    weft.run({ max_memory = 1e6 }, function() end)
    assert.equal(5e6, weft.run(function() return #(("x"):rep(5e6)) end))
  end)

  it("with preempt, a spinning task yields and others keep their pace", function()
    local ticks = weft.run({ step_budget = 0.002, preempt = true }, function()
      local s = weft.spawn(spin)
      local n = 0
      for _ = 1, 10 do weft.sleep(0.01) n = n + 1 end
      s:cancel()
      pcall(s.await, s)
      return n
    end)
    assert.equal(10, ticks)
  end)

  it("refuse bad values and nesting", function()
    assert.error_matches(function() weft.run({ max_memory = "lots" }, print) end,
      "weft.run: bad option 'max_memory' %(a size")
    assert.error_matches(function() weft.run({ step_budget = {} }, print) end,
      "weft.run: bad option 'step_budget' %(a duration")
    assert.error_matches(function()
      weft.run(function() weft.run({ max_memory = "1M" }, print) end)
    end, "options are for the outermost run only")
  end)
end)

describe("weft --max-memory / --step-budget", function()
  it("stop the script's tasks with MemoryError and Timeout", function()
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
      local s = weft.spawn(function() while true do end end)
      print(pcall(s.await, s))
      local b = weft.spawn(function() local t = {} for i = 1, 1e7 do t[i] = ("x"):rep(1000) .. i weft.yield() end end)
      print(pcall(b.await, b))
      print("after")
    ]])
    f:close()
    local r = cli.run({ "--max-memory", "16M", "--step-budget", "200ms", script })
    os.remove(script)
    assert.equal(0, r.code, r.stderr)
    assert.matches("false\tTimeout: step budget exceeded", r.stdout)
    assert.matches("false\tMemoryError: memory limit exceeded %(16.0 MB%)", r.stdout)
    assert.matches("after", r.stdout)
  end)

  it("reject values that are not sizes or durations (exit 2)", function()
    local r = cli.run({ "--max-memory", "64Q", "-e", "print(1)" })
    assert.equal(2, r.code)
    assert.matches("%-%-max%-memory: '64Q' is not a size", r.stderr)
    r = cli.run({ "--step-budget", "soon", "-e", "print(1)" })
    assert.equal(2, r.code)
    assert.matches("%-%-step%-budget: 'soon' is not a duration", r.stderr)
  end)
end)
