-- weft.json over lua-cjson (API.md "JSON").
local weft = require "weft"
local json = weft.json

describe("weft.json", function()
  it("round-trips nested values", function()
    local v = { name = "weft", list = { 1, 2, 3 }, nested = { ok = true, pi = 3.25 } }
    assert.same(v, json.decode(json.encode(v)))
  end)

  it("decodes integral numbers as Lua integers", function()
    local v = json.decode("[1, 2.5, 2.0, 1e3, -7]")
    assert.same({ 1, 2.5, 2, 1000, -7 }, v)
    assert.equal("integer", math.type(v[1]))
    assert.equal("integer", math.type(v[3]))
    assert.equal("integer", math.type(v[4]))
    assert.equal("float", math.type(v[2]))
    assert.equal("integer", math.type(json.decode("42")))
  end)

  it("keeps integers past 2^53 as floats", function()
    assert.equal("float", math.type(json.decode("[1e300]")[1]))
  end)

  it("encodes an empty table as {}", function()
    assert.equal("{}", json.encode({}))
  end)

  it("encodes large integers and fractions without rounding", function()
    assert.equal("[9007199254740993]", json.encode({ 9007199254740993 }))
    assert.equal(1 / 3, json.decode(json.encode({ 1 / 3 }))[1])
    assert.equal("[0.1]", json.encode({ 0.1 }))
  end)

  it("has null", function()
    assert.equal(json.null, json.decode("[null]")[1])
    assert.equal("[null]", json.encode({ json.null }))
  end)

  it("raises on invalid JSON with the position", function()
    local ok, err = pcall(json.decode, '{"a": }')
    assert.is_false(ok)
    assert.matches("character 7", err)
  end)

  it("raises on values JSON cannot hold", function()
    assert.has_error(function() json.encode({ f = print }) end,
      "bad argument #1 to 'encode' (Cannot serialise function: type not supported)")
    assert.has_error(function() json.encode(0 / 0) end,
      "bad argument #1 to 'encode' (Cannot serialise number: must not be NaN or Inf)")
  end)

  it("checks its arguments", function()
    assert.has_error(function() json.decode() end,
      "bad argument #1 to 'decode' (string expected, got no value)")
    assert.has_error(function() json.encode() end, "bad argument #1 to 'encode' (value expected)")
  end)
end)
