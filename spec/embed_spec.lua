-- Embedding (API.md "C embedding", docs/embedding.md): install weft into a
-- temporary prefix, build the example application and the docs' minimal
-- example against it with pkg-config, and run them: awaitables completed by
-- a uv timer and from a worker thread, the cancel callback, closing with
-- tasks still running, stepping from the application's loop, two runtimes
-- in one process; the rockspec installs the module with luarocks.
local cli = require "support.cli"

local cbuild = require "support.cbuild"
local build, asan, san, sh = cbuild.build, cbuild.asan, cbuild.san, cbuild.sh

describe("embedding weft in C", function()
  local prefix, bin, env

  setup(function()
    prefix = os.tmpname()
    os.remove(prefix)
    bin = prefix .. "/test-bin"
    local make = ("make --no-print-directory install PREFIX=%s BUILD=%s %s"):format(prefix, build,
      asan and ('OPT=-O1 SAN="' .. san .. '"') or "")
    local code, out = sh(make)
    assert(code == 0, "make install failed: " .. out)
    assert(sh("mkdir -p " .. bin) == 0)
    env = ("PKG_CONFIG_PATH=%s/lib/pkgconfig LD_LIBRARY_PATH=%s/lib"):format(prefix, prefix)
    for _, name in ipairs({ "cmdserver", "two_runtimes" }) do
      local cc = ("%s cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g %s "
        .. "$(%s pkg-config --cflags weft) -o %s/%s examples/embed/%s.c "
        .. "$(%s pkg-config --libs weft)"):format(env, san, env, bin, name, name, env)
      local c, o = sh(cc)
      assert(c == 0, "building " .. name .. " failed: " .. o)
    end
  end)

  teardown(function()
    if prefix then sh("rm -rf " .. prefix) end
  end)

  local function app(input, args)
    return sh(("printf '%%s\\n' %s | %s %s/cmdserver %s examples/embed/scripts")
      :format(cli.quote(input), env, bin, args or ""))
  end

  it("installs the CLI, libraries, header, pkg-config file, Lua module and man page", function()
    for _, f in ipairs({ "bin/weft", "lib/libweft.a", "lib/libweft.so.0", "lib/libweft.so",
      "include/weft.h", "lib/pkgconfig/weft.pc", "lib/pkgconfig/weft-static.pc", "lib/lua/5.4/weft.so",
      "share/man/man1/weft.1", "share/doc/weft/embedding.md" }) do
      assert.is_truthy(cli.read_file(prefix .. "/" .. f), f .. " missing")
    end
    local code, out = sh(env .. " pkg-config --modversion weft")
    assert.equal(0, code)
    assert.equal("0.1.0\n", out)
    local _, soname = sh("objdump -p " .. prefix .. "/lib/libweft.so.0.1.0 | grep SONAME")
    assert.matches("libweft.so.0", soname)
  end)

  it("runs scripts that await a timer and a worker-thread result on the app's loop", function()
    local code, out = app("run hello world\nrun fanout")
    assert.equal(0, code, out)
    assert.matches("script: hello world: checksum 93c86525 after 0%.%d%ds", out)
    assert.matches("script: fanout: 5 delays of 0%.1s took 0%.1s", out)   -- concurrent
    assert.matches("app: closing with 0 tasks still running", out)
  end)

  it("tells the C side when the awaiting task is cancelled", function()
    local code, out = app("run impatient")
    assert.equal(0, code, out)
    assert.matches("app: delay cancelled, timer stopped", out)
    assert.matches("script: impatient: Timeout: timed out after 0%.05 s", out)
  end)

  it("closes the runtime with tasks still running: they are cancelled, nothing leaks", function()
    local code, out = sh(("(echo 'run forever'; sleep 0.3; echo quit) | %s %s/cmdserver examples/embed/scripts")
      :format(env, bin))
    assert.equal(0, code, out)
    assert.matches("script: forever: waiting", out)
    assert.matches("app: closing with 1 tasks still running", out)
    assert.matches("app: delay cancelled, timer stopped", out)
    assert.matches("app: every task finished its cleanup", out)   -- weft_shutdown's callback
  end)

  it("is driven one step at a time from the application's own loop", function()
    local code, out = app("run hello stepper", "--step")
    assert.equal(0, code, out)
    assert.matches("script: hello stepper: checksum 93c86525", out)
    assert.matches("app: drove weft in many steps", out)
  end)

  it("reports unknown scripts through the application", function()
    local code, out = app("run no_such_script")
    assert.equal(0, code)
    assert.matches("app: cannot open examples/embed/scripts/no_such_script.lua", out)
  end)

  it("keeps two runtimes in one process independent", function()
    local code, out = sh(("%s %s/two_runtimes"):format(env, bin))
    assert.equal(0, code, out)
    assert.equal("first 6\nsecond 6\nfirst-again 6\nb sees who = second\npending 0 0\n", out)
  end)

  it("compiles and runs the minimal example of docs/embedding.md", function()
    local doc = cli.read_file("docs/embedding.md")
    local src = doc:match("```c\n(.-)```")
    local path = bin .. "/minimal.c"
    local f = assert(io.open(path, "w"))
    f:write(src)
    f:close()
    local c, o = sh(("%s cc -std=c11 -pedantic -Wall -Wextra -Werror %s $(%s pkg-config --cflags weft) "
      .. "-o %s/minimal %s $(%s pkg-config --libs weft)"):format(env, san, env, bin, path, env))
    assert.equal(0, c, o)
    local code, out = sh(("%s %s/minimal"):format(env, bin))
    assert.equal(0, code, out)
    assert.equal("3 waits, 0.1 s\n", out)
  end)

  it("links statically against libweft.a with pkg-config weft-static", function()
    local c, o = sh(("%s cc -std=c11 %s $(%s pkg-config --cflags weft-static) -o %s/two_static "
      .. "examples/embed/two_runtimes.c $(%s pkg-config --static --libs weft-static)")
      :format(env, san, env, bin, env))
    assert.equal(0, c, o)
    local code, out = sh(bin .. "/two_static")   -- no LD_LIBRARY_PATH: libweft.so not needed
    assert.equal(0, code, out)
    assert.matches("first 6", out)
    local _, needed = sh("objdump -p " .. bin .. "/two_static | grep NEEDED")
    assert.is_nil(needed:find("libweft"), needed)
  end)

  it("weft.h compiles with -std=c11 -pedantic alone, after other headers too", function()
    local path = bin .. "/pedantic.c"
    local f = assert(io.open(path, "w"))
    f:write('#include <stdio.h>\n#include <weft.h>\n'
      .. 'int main(void) { weft_runtime *rt = weft_new(NULL); weft_close(rt); puts("ok"); return 0; }\n')
    f:close()
    local c, o = sh(("cc -std=c11 -pedantic -Wall -Wextra -Werror -I%s/include $(pkg-config --cflags lua5.4) "
      .. "-c %s -o %s/pedantic.o"):format(prefix, path, bin))
    assert.equal(0, c, o)
  end)

  it("libweft.so exports only weft_ and luaopen_ symbols", function()
    local _, out = sh("nm -D --defined-only " .. prefix .. "/lib/libweft.so.0.1.0")
    local n = 0
    for name in out:gmatch("%x+ %a ([%w_]+)") do
      n = n + 1
      assert.is_truthy(name:match("^weft_%l") or name:match("^luaopen_"), name)
    end
    assert.is_true(n > 20)
  end)

  it("the man page points to the C API guide", function()
    local man = cli.read_file(prefix .. "/share/man/man1/weft.1")
    assert.matches("C API", man)
    assert.matches("embedding.md", man)
  end)

  it("uninstalls what it installed", function()
    local tmp = os.tmpname()
    os.remove(tmp)
    assert.equal(0, (sh(("make --no-print-directory install PREFIX=%s BUILD=%s %s"):format(tmp, build,
      asan and ('OPT=-O1 SAN="' .. san .. '"') or ""))))
    assert.equal(0, (sh(("make --no-print-directory uninstall PREFIX=%s BUILD=%s"):format(tmp, build))))
    local _, left = sh("find " .. tmp .. " -type f -o -type l")
    sh("rm -rf " .. tmp)
    assert.equal("", left)
  end)
end)

describe("the rockspec", function()
  it("luarocks make builds and installs the Lua module into a tree", function()
    if build ~= "build" then
      pending("runs against the default build only")
      return
    end
    local tree = os.tmpname()
    os.remove(tree)
    -- Debian's luarocks targets Lua 5.1 by default: a clear error, no 5.1 install
    local c0, o0 = sh(("luarocks --lua-version 5.1 make --tree %s --deps-mode none weft-0.1.0-1.rockspec")
      :format(tree))
    assert.is_true(c0 ~= 0, o0)
    assert.matches("run 'luarocks %-%-lua%-version 5.4 make'", o0)
    sh("rm -rf " .. tree)
    local code, out = sh(("luarocks --lua-version 5.4 make --tree %s --deps-mode none weft-0.1.0-1.rockspec")
      :format(tree))
    assert.equal(0, code, out)
    local c2, o2 = sh(("lua5.4 -e 'package.cpath=\"%s/lib/lua/5.4/?.so;\"..package.cpath' "
      .. "-e 'local w = require \"weft\" print(w.run(function() w.sleep(0.01) return \"ok\" end))'")
      :format(tree))
    sh("rm -rf " .. tree)
    assert.equal(0, c2, o2)
    assert.equal("ok\n", o2)
  end)
end)
