-- build/weft's Lua state allocates small blocks from free lists by size
-- (host/alloc.c) instead of malloc: the same programs must give the same
-- results as under stock lua5.4, freed blocks must be reused, and the state
-- must still warn and panic as luaL_newstate's does.
local cli = require "spec.support.cli"
-- under `make check` the CLI uses malloc (ASan must see every block), and
-- AddressSanitizer's quarantine and shadow memory make RSS meaningless
local asan = (os.getenv("WEFT_BUILD") or ""):match("asan") ~= nil

-- prepended to the chunks the CLI runs: a field of /proc/self/status, in KiB
local STATUS_KB = [[
  local function status_kb(field)
    local f = io.open("/proc/self/status")
    local kb = tonumber(f:read("a"):match(field .. ":%s*(%d+)"))
    f:close()
    return kb
  end
]]

describe("the weft CLI's allocator", function()
  it("gives the digest stock lua5.4 gives after churning blocks of every size", function()
    local p = assert(io.popen("lua5.4 spec/fixtures/alloc_churn.lua"))
    local expected = p:read("a")
    p:close()
    assert.matches("^%d+\n$", expected)
    -- a block handed out twice can loop forever: bounded by timeout(1)
    local r = cli.run({ "spec/fixtures/alloc_churn.lua" }, { env = "timeout 120" })
    assert.equal(0, r.code, r.stderr)
    assert.equal(expected, r.stdout)
  end)

  it("reuses freed blocks: churning one size does not grow the process", function()
    local r = cli.run({ "-e", STATUS_KB .. [[
      local function rss() return status_kb("VmRSS") end
      local before
      for round = 1, 30 do
        local t = {}
        for i = 1, 20000 do t[i] = { i, tostring(i) .. "x" } end
        t = nil
        collectgarbage()
        if round == 3 then before = rss() end
      end
      print(rss() - before)
    ]] })
    assert.equal(0, r.code, r.stderr)
    if not asan then
      assert.is_true(tonumber(r.stdout) < 1024, "grew by " .. r.stdout .. " KiB")
    end
  end)

  it("lets memory a burst of tasks freed serve blocks of another size", function()
    -- size-class lists never give a block to another size: with lists up to 768 bytes
    -- (threads' stacks, task objects) the strings below needed all-new memory (peak
    -- +66 MB here, against +16 MB with lists up to 256 bytes)
    if asan then return end
    local r = cli.run({ "-e", STATUS_KB .. [[
      local function peak() return status_kb("VmHWM") end
      weft.run(function()
        local list = {}
        for i = 1, 50000 do list[i] = weft.spawn(weft.yield) end
        weft.gather(list)
      end)
      collectgarbage()
      collectgarbage()
      local before = peak()
      local keep = {}
      for i = 1, 50000 do keep[i] = string.rep("x", 1000) .. i end
      print(peak() - before)
    ]] })
    assert.equal(0, r.code, r.stderr)
    -- the strings take ~52 MB (1 KB blocks); the tasks had freed ~70 MB
    assert.is_true(tonumber(r.stdout) < 40 * 1024, "peak grew by " .. r.stdout .. " KiB")
  end)

  it("warns as lua5.4 does: off by default, -W or @on, pieces joined, @off", function()
    local code = "warn('one ', 'piece'); warn('@off'); warn('hidden'); warn('@on'); warn('two')"
    local r = cli.run({ "-W", "-e", code })
    assert.equal(0, r.code, r.stderr)
    assert.equal("Lua warning: one piece\nLua warning: two\n", r.stderr)
    r = cli.run({ "-e", "warn('hidden'); warn('@on'); warn('shown')" })
    assert.equal("Lua warning: shown\n", r.stderr)
  end)
end)
