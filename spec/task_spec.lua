local weft = require "weft"

describe("weft.run", function()
  it("runs a function as a task and returns its results", function()
    assert.same({1, 2, 3}, {weft.run(function(a, b) return a, b, 3 end, 1, 2)})
  end)

  it("raises the task's error unchanged", function()
    local ok, err = pcall(weft.run, function() error({code = 7}) end)
    assert.is_false(ok)
    assert.same({code = 7}, err)
  end)
end)
