-- weft.taskspec's list check (sources, generates, deps): "a name/path or a
-- list of them". A plain list is told by a look at its length and the key
-- after it (issue 13: every task of a Weftfile passes here); the rest, holes
-- and metatables included, by a walk. Bad inputs tried: numbers in the
-- list, string keys beside the list, a list of numbers, a non-table.
local taskspec = require "weft.taskspec"

describe("weft.taskspec list fields", function()
  local check = taskspec.FIELDS.sources.check

  it("takes a string and lists of strings, holes included", function()
    for _, v in ipairs({ "a", {}, { "a" }, { "a", "b" }, { "a", nil, "c" }, { "a", [3] = "c" },
        { [2] = "b" } }) do
      assert.is_true((check(v)))
    end
  end)

  it("refuses other keys and other values, saying what it expects", function()
    for _, v in ipairs({ { x = "a" }, { 1 }, { "a", x = "b" }, { "a", 2 }, 42, true }) do
      local ok, expected = check(v)
      assert.is_false(ok)
      assert.equal("a path or a list of paths", expected)
    end
  end)

  it("reads tables with metatables by their raw contents", function()
    assert.is_true((check(setmetatable({ "a" }, { __len = function() return 5 end }))))
    assert.is_true((check(setmetatable({}, { __index = function() return "z" end }))))
    assert.is_false((check(setmetatable({ 1 }, { __index = function() return "z" end }))))
  end)
end)
