-- The examples a user learns from (issue 15): examples/data and examples/ci
-- run as documented, with grouped output and a graph that grows.
local cli = require "support.cli"

local run = cli.weft_run

describe("examples", function()
  it("examples/data grades each joined row in a task added while running", function()
    local r = run("-f examples/data/Weftfile.lua --output grouped -j 4")
    assert.equal(0, r.code, r.stderr)
    for _, name in ipairs({ "alice", "bob", "carol" }) do
      assert.matches("\ngrade:" .. name .. " +| " .. name .. ": %a+\n", r.stdout)
    end
    assert.matches("write +| grades:\nwrite +| alice,retry\nwrite +| bob,pass\n", r.stdout)
    assert.matches("summary: 10 done", r.stderr, 1, true)
  end)

  it("examples/ci prints one block per task and groups them under GitHub Actions", function()
    local a = { "run", "-f", "examples/ci/Weftfile.lua", "--output", "grouped", "-j", "2" }
    local r = cli.run(a, { env = "env CI=true GITHUB_ACTIONS=true" })
    assert.equal(0, r.code, r.stderr)
    assert.matches("::group::cc:host/task.c\ncc:host/task.c +| checked host/task.c\n::endgroup::\n",
      r.stdout)
    assert.matches("::group::deploy\ndeploy +| deployed to ", r.stdout)
    local _, opens = r.stdout:gsub("::group::", "")
    local _, closes = r.stdout:gsub("::endgroup::", "")
    assert.equal(opens, closes)
  end)
end)
