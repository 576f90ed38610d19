-- `weft run`'s options come from one table (issue 15): every option the
-- help shows is accepted, -n and -l are documented, values may be attached
-- (--jobs=2, -j2). Bad input tried: unknown options, a value given to a
-- flag, a missing value, bad values for --graph, --output, --summary, -j.
local cli = require "support.cli"

local function run(args)
  return cli.run(args, { env = "env CI=true" })
end

describe("weft run options", function()
  local help
  setup(function() help = run({ "run", "--help" }).stdout end)

  it("are all documented in --help, -n and -l included", function()
    for _, opt in ipairs({ "NAME=VALUE", "-C, --directory", "-B, --always", "--explain", "--watch",
                           "-f, --file", "-j, --jobs", "-k, --keep-going", "-n, --dry-run",
                           "-l, --list", "--graph", "--trace", "--report", "--timeout",
                           "--plain", "--output", "--summary", "-h, --help" }) do
      assert.matches("\n  " .. opt, help, 1, true)
    end
  end)

  it("accept every option --help shows", function()
    local seen = 0
    for line in help:gmatch("[^\n]+") do
      local head = line:match("^  (%-%S.-)%s%s") or line:match("^  (%-%S.*)$")
      if head then
        local names, arg = {}, ""
        for word in head:gmatch("[^%s,]+") do
          if word:sub(1, 1) == "-" then names[#names + 1] = word else arg = word end
        end
        for _, opt in ipairs(names) do
          seen = seen + 1
          if opt == "--watch" then goto next end   -- runs until Ctrl-C (spec/watch_spec.lua)
          local args = { "run", "-f", "spec/fixtures/run/modes.lua", opt }
          if arg ~= "" then
            args[#args + 1] = ({ ["dot|mermaid"] = "dot", MODE = "grouped", ["full|short"] = "full",
              N = "2", S = "5", DIR = ".", ["local|slurm"] = "local", FILE = "spec/fixtures/run/modes.lua" })[arg] or os.tmpname()
          end
          local r = run(args)
          assert.not_matches("unknown option", r.stderr, 1, true)
          assert.not_equal(2, r.code, opt .. ": " .. r.stderr)
          ::next::
        end
      end
    end
    assert.equal(29, seen, "options found in --help")
  end)

  it("take attached values and refuse bad ones", function()
    local r = run({ "run", "-f", "spec/fixtures/run/modes.lua", "--jobs=2", "--output=interleaved" })
    assert.equal(0, r.code, r.stderr)
    assert.equal("a1\nb1\na2\nb2\n", r.stdout)
    for _, bad in ipairs({ { "--bogus", "unknown option --bogus" },
                           { "--plain=yes", "option --plain takes no value" },
                           { "--graph", "option --graph needs a value" },
                           { "--graph=png", "--graph expects dot or mermaid, got png" },
                           { "-j0", "-j expects a positive number, got 0" },
                           { "--summary=long", "--summary expects full or short, got long" } }) do
      r = run({ "run", "-f", "spec/fixtures/run/modes.lua", bad[1] })
      assert.equal(2, r.code, bad[1])
      assert.matches(bad[2], r.stderr, 1, true)
    end
  end)
end)
