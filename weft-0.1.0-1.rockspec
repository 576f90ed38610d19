-- luarocks make weft-0.1.0-1.rockspec: builds build/weft.so with the
-- project's Makefile and installs it as the Lua module "weft".
rockspec_format = "3.0"
package = "weft"
version = "0.1.0-1"
source = {
  url = "git+file://.",
}
description = {
  summary = "Tasks, cancellation, task graphs and I/O for Lua 5.4 on a libuv loop",
  detailed = [[
weft is asyncio + graphlib for Lua: tasks as coroutines scheduled by C on a libuv
event loop, with cancellation, timeouts, task groups, locks, queues, a topological
sorter and graph runner, processes, sockets, files and HTTP.]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
external_dependencies = {
  LIBUV = { header = "uv.h" },
  XXHASH = { header = "xxhash.h" },     -- incremental pipelines: content hashes
  SQLITE3 = { header = "sqlite3.h" },   -- and their state in .weft/
}
build = {
  type = "make",
  build_target = "build/weft.so",
  install_target = "install-lua",
  install_variables = {
    LUA_LIBDIR = "$(LIBDIR)",
  },
}
