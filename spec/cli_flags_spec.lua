-- The lua(1) flags of the CLI that change the environment of a run: -E
-- (defect 11 of issue 14) and -W. Tried: LUA_PATH, LUA_PATH_5_4,
-- LUA_CPATH pointing at a directory with a module of the same name.
local cli = require "support.cli"

describe("weft -E", function()
  local dir
  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir " .. dir)
    local f = assert(io.open(dir .. "/weftenvmod.lua", "w"))
    f:write("return 'from LUA_PATH'")
    f:close()
  end)
  after_each(function() os.execute("rm -rf " .. dir) end)

  local code = "print(pcall(require, 'weftenvmod')); print(package.path); print(package.cpath)"

  it("without -E, LUA_PATH is honoured", function()
    local r = cli.run({ "-e", code }, { env = "LUA_PATH=" .. dir .. "/?.lua" })
    assert.equal(0, r.code, r.stderr)
    assert.matches("true\tfrom LUA_PATH", r.stdout, 1, true)
  end)

  it("with -E, LUA_PATH, LUA_PATH_5_4 and LUA_CPATH are ignored", function()
    for _, var in ipairs { "LUA_PATH", "LUA_PATH_5_4", "LUA_CPATH", "LUA_CPATH_5_4" } do
      local r = cli.run({ "-E", "-e", code }, { env = var .. "=" .. dir .. "/?.lua" })
      assert.equal(0, r.code, r.stderr)
      assert.matches("^false", r.stdout)
      assert.not_matches(dir, r.stdout, 1, true)
    end
  end)

  it("with -E, a script still runs and require of weft works", function()
    local r = cli.run({ "-E", "-e", "print(require('weft') == weft)" }, { env = "LUA_PATH=/nowhere/?.lua" })
    assert.equal(0, r.code, r.stderr)
    assert.equal("true\n", r.stdout)
  end)
end)

describe("weft -W", function()
  it("turns warnings on", function()
    local r = cli.run({ "-W", "-e", "warn('hello')" })
    assert.equal(0, r.code)
    assert.matches("hello", r.stderr, 1, true)
    r = cli.run({ "-e", "warn('hello')" })
    assert.not_matches("hello", r.stderr, 1, true)
  end)
end)

describe("the man page", function()
  it("documents every option the usage messages list", function()
    local man = cli.read_file("docs/weft.1"):gsub("\\%-", "-"):gsub("\\f[BIRP]", "")
    local usage = cli.run({ "--no-such-option" }).stderr .. cli.run({ "run", "--help" }).stdout
    local n = 0
    for opt in usage:gmatch("%s(%-%-?[%a][%w%-]*)") do
      n = n + 1
      assert.is_truthy(man:find(opt, 1, true), opt .. " is not in docs/weft.1")
    end
    assert.is_true(n > 15, "only " .. n .. " options found in the usage")
  end)
end)
