--- C programs in specs (the embed specs): run shell commands, and build a C
-- file with -std=c11 -pedantic against this build's libweft.a, with the
-- sanitizer of the build under test (WEFT_BUILD=build/asan, build/tsan).
local M = {}

M.build = os.getenv("WEFT_BUILD") or "build"
M.asan = M.build:match("asan") ~= nil
M.san = M.asan and "-fsanitize=address,undefined -fno-omit-frame-pointer"
  or M.build:match("tsan") and "-fsanitize=thread" or ""

--- Runs cmd through the shell. @return exit code, stdout and stderr together
function M.sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"exit:$?\"")
  local out = p:read("a")
  p:close()
  local code = tonumber(out:match("exit:(%d+)%s*$"))
  return code, out:gsub("exit:%d+%s*$", "")
end

--- Compiles src into the program out (raises with the compiler's output).
-- @tparam[opt] string san sanitizer flags for a plain build (default none)
function M.compile(src, out, san)
  local flags = M.san ~= "" and M.san or san or ""
  local code, o = M.sh(("cc -std=c11 -pedantic -D_DEFAULT_SOURCE -Wall -Wextra -Werror -g %s -Ihost "
    .. "$(pkg-config --cflags lua5.4 libuv) -o %s %s %s/libweft.a "
    .. "-llua5.4-luv -llua5.4-cjson -lxxhash -lsqlite3 $(pkg-config --libs lua5.4 libuv) -lm -ldl -lpthread")
    :format(flags, out, src, M.build))
  assert(code == 0, "building " .. src .. " failed: " .. o)
end

return M
