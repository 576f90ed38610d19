-- The end of `weft run` (issue 15): failures one can act on and a summary
-- that scales (counts, slowest 5, critical path; the table with
-- --summary full or for small runs).
local cli = require "support.cli"

local FIX = "spec/fixtures/run/"

local run = cli.weft_run

describe("weft run failures", function()
  local r
  setup(function() r = run("-f " .. FIX .. "failures.lua -k -j 1") end)

  it("name the task, exit code, chain of targets, stderr tail and a rerun command", function()
    assert.equal(1, r.code)
    assert.matches("FAILED compile: ProcessError: exit code 2: echo compiling;", r.stderr, 1, true)
    assert.matches("\n  needed by: link %-> package\n", r.stderr)
    assert.matches("\n  compile !| foo.c:3: error: expected ;\n  compile !| second error line\n",
      r.stderr, 1, true)
    assert.matches("\n  rerun: weft run %-f spec/fixtures/run/failures%.lua compile\n", r.stderr)
  end)

  it("say which signal killed a process", function()
    assert.matches("FAILED crash: ProcessError: killed by signal 9 (SIGKILL): kill -9 $$", r.stderr, 1, true)
    assert.matches("FAILED crash[^\n]*\n  needed by: package\n", r.stderr)
  end)

  it("show a Lua error with a traceback trimmed of weft's own frames", function()
    assert.matches("FAILED lua: spec/fixtures/run/failures.lua:7: nil value in config", r.stderr, 1, true)
    local block = r.stderr:match("FAILED lua:.-\n  rerun:[^\n]*")
    assert.matches("in upvalue 'helper'", block, 1, true)
    assert.matches("failures.lua:8", block, 1, true)
    assert.not_matches("weft/", block, 1, true)
    assert.not_matches("[C]: in function 'xpcall'", block, 1, true)
  end)

  it("print table errors as tables or through __tostring", function()
    assert.matches('FAILED tbl: {code = 7, why = "bad input"}', r.stderr, 1, true)
    assert.matches("FAILED custom: custom error text", r.stderr, 1, true)
    assert.not_matches("table: 0x", r.stderr, 1, true)
  end)

  it("print counts by status", function()
    assert.matches("summary: 5 failed, 2 skipped", r.stderr, 1, true)
  end)
end)

describe("weft run summary", function()
  local function many(n, slow)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    for i = 1, n do
      f:write(("task \"t%03d\" { function() weft.sleep(%s) end }\n"):format(i,
        slow[i] and tostring(slow[i]) or "0"))
    end
    local all = {}
    for i = 1, n do all[i] = ("%q"):format(("t%03d"):format(i)) end
    f:write("task \"all\" { deps = {", table.concat(all, ","), "} }\ndefault \"all\"\n")
    f:close()
    return path
  end

  it("scales: counts, the slowest 5 and the critical path instead of a 500-line table", function()
    local path = many(500, { [7] = 0.5, [100] = 0.4, [200] = 0.3, [300] = 0.25, [400] = 0.2, [450] = 0.1 })
    local r = run("-f " .. path .. " -j 8")
    assert.equal(0, r.code, r.stderr)
    local summary = r.stderr:match("summary:.*")
    assert.matches("^summary: 501 done\n", summary)
    assert.matches("\nslowest: t007 0%.5%ds, t100 0%.4%ds, t200 0%.3%ds, t300 0%.2%ds, t400 0%.2%ds\n", summary)
    assert.matches("critical path 0%.5%ds: t007 %-> all", summary)
    local _, lines = summary:gsub("\n", "")
    assert.is_true(lines <= 5, summary)
    r = run("-f " .. path .. " -j 8 --summary full")
    assert.matches("\n  t250 +done", r.stderr)
    os.remove(path)
  end)

  it("shows the full table for a small run", function()
    local path = many(3, {})
    local r = run("-f " .. path)
    assert.matches("\n  t002 +done", r.stderr)
    os.remove(path)
  end)
end)

describe("weft.summary.slowest", function()
  local summary = require "weft.summary"

  it("gives the n longest tasks that ran, slowest first, ties in task order", function()
    math.randomseed(7)
    for _, n in ipairs({ 0, 1, 5, 40 }) do
      local list = {}
      for i = 1, 30 do
        local ran = math.random() < 0.8
        list[i] = { index = i, name = "t" .. i, start = ran and 10 or nil,
          finish = ran and 10 + math.random(0, 6) / 4 or nil }
      end
      local want = {}
      for _, rec in ipairs(list) do if rec.start then want[#want + 1] = rec end end
      table.sort(want, function(a, b)
        local da, db = a.finish - a.start, b.finish - b.start
        if da ~= db then return da > db end
        return a.index < b.index
      end)
      want = { table.unpack(want, 1, math.min(n, #want)) }
      assert.same(want, summary.slowest({ list = list }, n))
    end
  end)
end)
