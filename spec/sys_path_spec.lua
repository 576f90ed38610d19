-- weft._sys.path and weft._sys.where (host/sys.c): the C forms of what
-- weft.incremental's path normalization and weft.pipeline's declaration
-- sites did with string library calls (issue 13). The normal form is
-- checked against the Lua it replaced, on fixed cases and on random paths
-- (seeds 1-5; every failure found is kept below as a fixed case).
-- Bad inputs tried: a number, nil, a table, a negative level.
local weft = require "weft"

-- The Lua that weft.incremental ran before (its reference).
local function lua_normal(p)
  local n = p
  if n:find("//", 1, true) or n:sub(1, 2) == "./" or n:find("/./", 1, true) then
    n = n:gsub("/+", "/"):gsub("^%./", "")
    while n:find("/./", 1, true) do n = n:gsub("/%./", "/") end
  end
  return n
end

local function lua_wild(p)
  return (p:find("*", 1, true) or p:find("?", 1, true) or p:find("[", 1, true)) ~= nil
end

local FIXED = {
  "", ".", "./", "/", "//", "/./a", "././a", "a/./././b", "./a//b/./c/.", "a/./", "a/.",
  ".//a", "a//./b", "../a/./b", "/..//./x", "a/.b/./c", "a/../b", "*.c", "src/**/[ab]?.lua",
  "a\0/./b", "///./././", "x/./",
}

describe("weft._sys.path", function()
  it("gives the normal form the string library gave, and whether there is a wildcard", function()
    for _, p in ipairs(FIXED) do
      local n, wild = weft._sys.path(p)
      assert.equal(lua_normal(p), n, ("%q"):format(p))
      assert.equal(lua_wild(p), wild, ("%q"):format(p))
    end
  end)

  it("agrees with the string library on random paths", function()
    local pieces = { "/", ".", "..", "a", "bc", "*", "?", "[", "\0", "//", "./", "/./", " " }
    for seed = 1, 5 do
      math.randomseed(seed)
      for _ = 1, 20000 do
        local t = {}
        for i = 1, math.random(0, 12) do t[i] = pieces[math.random(#pieces)] end
        local p = table.concat(t)
        local n, wild = weft._sys.path(p)
        if n ~= lua_normal(p) or wild ~= lua_wild(p) then
          error(("seed %d: %q -> %q %s, want %q %s"):format(seed, p, n, wild, lua_normal(p),
            lua_wild(p)))
        end
      end
    end
  end)

  it("returns a path that is already normal unchanged", function()
    local p = "host/" .. ("x"):rep(100) .. ".c"
    assert.equal(p, (weft._sys.path(p)))
  end)

  it("raises naming the argument for what is not a string", function()
    for _, bad in ipairs({ {}, true }) do
      local ok, err = pcall(weft._sys.path, bad)
      assert.is_false(ok)
      assert.matches("bad argument #1", err)
    end
    assert.matches("bad argument #1", select(2, pcall(weft._sys.path)))
  end)
end)

describe("weft._sys.where", function()
  local function site() return weft._sys.where(2) end   -- 0: where, 1: site, 2: its caller

  it("names the file and line of the caller at the level asked", function()
    local line = debug.getinfo(1, "l").currentline + 1
    local at = site()
    assert.equal(("spec/sys_path_spec.lua:%d"):format(line), at)
  end)

  it("passes over C functions such as pcall", function()
    local line = debug.getinfo(1, "l").currentline + 1
    local ok, at = pcall(site)
    assert.is_true(ok)
    -- level 2 is pcall (C): the first Lua function above it is this one
    assert.equal(("spec/sys_path_spec.lua:%d"):format(line), at)
  end)

  it("is ? past the top of the stack, and raises for a negative level", function()
    assert.equal("?", weft._sys.where(1000))
    assert.matches("bad argument #1.*negative", select(2, pcall(weft._sys.where, -1)))
    assert.matches("bad argument #1", select(2, pcall(weft._sys.where, "x")))
  end)
end)
