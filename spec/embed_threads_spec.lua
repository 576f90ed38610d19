-- Threads and the runtime (issue 17): 8 threads post to C futures while the
-- runtime closes (every post is delivered or refused and freed, nothing
-- leaks), and weft_interrupt from another thread. `make tsan` runs this spec
-- against a ThreadSanitizer build (halt_on_error: any race fails it).
local build = os.getenv("WEFT_BUILD") or "build"
local san = build:match("asan") and "-fsanitize=address,undefined -fno-omit-frame-pointer"
  or build:match("tsan") and "-fsanitize=thread" or "-fsanitize=address"

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"exit:$?\"")
  local out = p:read("a")
  p:close()
  local code = tonumber(out:match("exit:(%d+)%s*$"))
  return code, out:gsub("exit:%d+%s*$", "")
end

local function build_fixture(name, out)
  local cc = ("cc -std=c11 -pedantic -D_DEFAULT_SOURCE -Wall -Wextra -Werror -g %s -Ihost "
    .. "$(pkg-config --cflags lua5.4 libuv) -o %s spec/fixtures/embed/%s.c %s/libweft.a "
    .. "-llua5.4-luv -llua5.4-cjson $(pkg-config --libs lua5.4 libuv) -lm -ldl -lpthread")
    :format(san, out, name, build)
  local code, o = sh(cc)
  assert(code == 0, "building " .. name .. " failed: " .. o)
end

describe("threads and the runtime", function()
  local threads, api = os.tmpname(), os.tmpname()
  setup(function()
    build_fixture("threads", threads)
    build_fixture("api", api)
  end)
  teardown(function()
    os.remove(threads)
    os.remove(api)
  end)

  it("8 threads post while the runtime closes: each post delivered or refused, none lost", function()
    for _ = 1, 3 do
      local code, out = sh(threads)
      assert.equal(0, code, out)
      local posts, pushed, refused = out:match("posts (%d+), pushed (%d+), refused (%d+)")
      assert.equal(tonumber(posts), tonumber(pushed) + tonumber(refused))
      assert.is_nil(out:find("WARNING: ThreadSanitizer"), out)
      assert.is_nil(out:find("LeakSanitizer"), out)
    end
  end)

  it("weft_interrupt from another thread stops the running task", function()
    local code, out = sh(api .. " interrupt")
    assert.equal(0, code, out)
    assert.matches("run: Cancelled: interrupted", out)
    assert.is_nil(out:find("WARNING: ThreadSanitizer"), out)
  end)
end)
