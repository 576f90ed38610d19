-- Threads and the runtime (issue 17): 8 threads post to C futures while the
-- runtime closes (every post is delivered or refused and freed, nothing
-- leaks), weft_interrupt from another thread, and the step budget's watchdog
-- thread. `make tsan` runs this spec
-- against a ThreadSanitizer build (halt_on_error: any race fails it).
local cbuild = require "support.cbuild"
local sh = cbuild.sh

describe("threads and the runtime", function()
  local threads, api = os.tmpname(), os.tmpname()
  setup(function()
    -- a plain build gets AddressSanitizer here: a lost post is a leak
    cbuild.compile("spec/fixtures/embed/threads.c", threads, "-fsanitize=address")
    cbuild.compile("spec/fixtures/embed/api.c", api, "-fsanitize=address")
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

  it("the step budget's watchdog thread stops a spinning task", function()
    local code, out = sh(api .. " budget")
    assert.equal(0, code, out)
    assert.matches('run: Timeout: step budget exceeded: task "task%-2" ran %d+ ms without awaiting %(at spinner:1%)', out)
    assert.is_nil(out:find("WARNING: ThreadSanitizer"), out)
  end)
end)
