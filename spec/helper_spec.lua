-- spec/helper.lua itself: a spec whose task reported an error nobody
-- observed fails, run on a fixture through busted as scripts/test.sh does
-- (under `make check` with the sanitized lua host beside the build).
local cli = require "support.cli"
local json = require "cjson"

local function interpreter()
  local host = (os.getenv("WEFT_BUILD") or "build") .. "/luahost"
  local f = io.open(host)
  if f then f:close() return host end
  return "lua5.4"
end

describe("spec/helper.lua", function()
  it("fails a spec that leaves an unobserved task error, and only that one", function()
    local busted = assert(io.popen("command -v busted")):read("l")
    local p = assert(io.popen(("%s %s --helper=spec/helper.lua --pattern=unobserved -o json %s 2>/dev/null")
      :format(interpreter(), cli.quote(busted), "spec/fixtures/helper/unobserved.lua")))
    local report = json.decode(p:read("a"))
    p:close()
    assert.equal(1, #report.failures)
    assert.equal("a spec whose task failed unobserved fails through the helper",
      report.failures[1].name)
    assert.equal("1 task error nobody observed (see stderr)", report.failures[1].message)
  end)
end)
