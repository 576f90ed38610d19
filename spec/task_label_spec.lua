-- Output attribution (issue 15): a task's label is an integer children
-- inherit when they are spawned (weft.spawn, gather, group, run_graph's
-- nodes), read and set with weft._label. The pipeline runner sets it to a
-- task record's index, so a print in any child carries the task's name.
local weft = require "weft"

describe("weft._label", function()
  it("is 0 in a fresh task and outside any task it is nil", function()
    assert.is_nil(weft._label())
    weft.run(function() assert.equal(0, weft._label()) end)
  end)

  it("is set for the current task and inherited by weft.spawn", function()
    local seen = weft.run(function()
      weft._label(7)
      local child = weft.spawn(function()
        local grandchild = weft.spawn(function() return weft._label() end)
        return weft._label(), grandchild:await()
      end)
      return { child:await() }
    end)
    assert.same({ 7, 7 }, seen)
  end)

  it("is inherited by gather's functions, group:spawn and run_graph's nodes", function()
    local got = weft.run(function()
      weft._label(3)
      local g = weft.gather({ function() return weft._label() end })
      local grp
      weft.group(function(group)
        grp = group:spawn(function() return weft._label() end)
      end)
      local r = weft.run_graph({ a = {}, b = { "a" } }, function() return weft._label() end)
      return { g[1], grp:result(), r.a, r.b }
    end)
    assert.same({ 3, 3, 3, 3 }, got)
  end)

  it("does not leak from a child back to its parent", function()
    local got = weft.run(function()
      weft._label(1)
      weft.spawn(function() weft._label(9) end):await()
      return weft._label()
    end)
    assert.equal(1, got)
  end)

  it("rejects a label that is not an integer", function()
    weft.run(function()
      assert.error_matches(function() weft._label("x") end,
        "bad argument #1 to '_label' %(number expected")
      assert.error_matches(function() weft._label(1.5) end, "bad argument #1 to '_label'")
    end)
  end)
end)
