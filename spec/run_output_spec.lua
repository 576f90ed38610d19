-- `weft run` output (issue 15): attribution of every line to its task,
-- output modes, stderr marking, control characters, odd bytes, CI markers.
-- Each test runs build/weft on a fixture in spec/fixtures/run.
local cli = require "support.cli"

local FIX = "spec/fixtures/run/"

local function run(args, env)
  local a = { "run", "-f" }
  for w in args:gmatch("%S+") do a[#a + 1] = w end
  return cli.run(a, { env = "env -u GITHUB_ACTIONS -u GITLAB_CI CI=true " .. (env or "") })
end

describe("weft run output", function()
  it("attributes prints of gather, spawn and group children to their task", function()
    local r = run(FIX .. "attribution.lua -j 2")
    assert.equal(0, r.code, r.stderr)
    assert.matches("fan   | from gather child\n", r.stdout, 1, true)
    assert.matches("fan   | from a gather child process\n", r.stdout, 1, true)
    assert.matches("fan   | from group child\n", r.stdout, 1, true)
    assert.matches("other | from spawned child\n", r.stdout, 1, true)
    assert.not_matches("? |", r.stdout, 1, true)
  end)
end)
