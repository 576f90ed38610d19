-- Pipelines that grow while they run (issue 15): ctx:add(name, spec) in a
-- task body, on weft.run_graph's run:add. Bad input tried: a name already
-- used, an unknown dep, a dep that closes a cycle, a spec that is not a
-- table, ctx:add after the run was cancelled.
local cli = require "support.cli"

local FIX = "spec/fixtures/run/"

local run = cli.weft_run

describe("weft run with ctx:add", function()
  it("runs added tasks, and the adder's dependents after them, in the same order at -j1", function()
    local r = run("-f " .. FIX .. "dynamic.lua -j 1")
    assert.equal(0, r.code, r.stderr)
    assert.equal("process:p1 | processing p1\nprocess:p2 | processing p2\n"
      .. "process:p3 | processing p3\nsummarize  | summarized\nreport     | report after all parts\n",
      r.stdout)
    assert.matches("summary: 6 done", r.stderr, 1, true)
    assert.matches("[0/5] added process:p3", r.stderr, 1, true)
    assert.matches("critical path 0%.0[2-9]s: process:p%d .*%-> report\n", r.stderr)
    for _ = 1, 3 do assert.equal(r.stdout, run("-f " .. FIX .. "dynamic.lua -j 1").stdout) end
  end)

  it("runs added tasks in parallel and still makes the dependents wait", function()
    local r = run("-f " .. FIX .. "dynamic.lua -j 4")
    assert.equal(0, r.code, r.stderr)
    assert.matches("report after all parts\n$", r.stdout)
  end)

  it("fails only the adder, with a clear error, on misuse", function()
    local r = run("-f " .. FIX .. "dynamic_bad.lua -k -j 1")
    assert.equal(1, r.code)
    local f = FIX .. "dynamic_bad.lua"
    assert.matches(('FAILED bad_dup: %s:3: task "report" is declared twice (first at %s:2)')
      :format(f, f), r.stderr, 1, true)
    assert.matches(('FAILED bad_dep: %s:4: task "x" (added by "bad_dep") depends on "nope", '
      .. "which is not a task of this run"):format(f), r.stderr, 1, true)
    assert.matches(('FAILED bad_cycle: %s:5: ctx:add("y"): adding 8 would close a cycle')
      :format(f), r.stderr, 1, true)
    assert.matches(('FAILED bad_spec: %s:7: task "z": expected a table'):format(f), r.stderr, 1, true)
    assert.matches("\n  report +done", r.stderr)
  end)

  it("refuses ctx:add once the run was cancelled", function()
    local r = run("-f " .. FIX .. "dynamic_cancel.lua -j 2")
    assert.equal(1, r.code)
    assert.matches('adder | spec/fixtures/run/dynamic_cancel.lua:5: ctx:add("late"): the run was cancelled',
      r.stdout, 1, true)
  end)

  it("says on --dry-run and --graph that tasks added while running may follow", function()
    for _, flag in ipairs({ "--dry-run", "--graph dot", "--graph mermaid" }) do
      local r = run("-f " .. FIX .. "dynamic.lua " .. flag)
      assert.equal(0, r.code)
      assert.matches("tasks added while running (ctx:add) may follow", r.stderr, 1, true)
      assert.not_matches("process:p1", r.stdout, 1, true)
    end
  end)
end)

describe("weft run --list", function()
  it("shows each task's deps under it", function()
    local r = run("-f spec/fixtures/pipelines/basic.lua --list", "LOG=/dev/null")
    assert.equal(0, r.code)
    assert.matches("\nd       after a, b and c\n        after: a, b, c\n", r.stdout, 1, true)
    assert.matches("\nreport  +%(default%)\n        after: d\n", r.stdout)
    assert.matches("^a       first\nb       \n", r.stdout)
  end)
end)
