/*
** io.c: opens the I/O parts of the module: weft.uv (uvbind.c), weft.json
** (json.c), streams (stream.c), weft.net (net.c), weft.thread (thread.c),
** weft.http (http.c). The parts written in Lua (weft.fs, weft.on_signal)
** live in stdlib/ and are attached lazily, as is weft.uv (luv, through its
** package.preload loader): the module table gets an __index that requires
** them on first access (package.preload is filled only after the open
** functions have run) and stores the result.
*/
#include <string.h>

#include "io.h"

/* name in the module -> stdlib module, and the field of it (or whole) */
static const char *const lazy[][3] = {
  {"fs", "weft.fs", NULL},
  {"on_signal", "weft.signal", "on_signal"},
  {"uv", "luv", NULL},   /* opened on first use: uvbind.c */
  {NULL, NULL, NULL}
};

static int module_index(lua_State *L) {
  const char *key = lua_tostring(L, 2);
  int i;
  if (key == NULL)
    return 0;
  for (i = 0; lazy[i][0] != NULL; i++) {
    if (strcmp(key, lazy[i][0]) != 0)
      continue;
    lua_getglobal(L, "require");
    lua_pushstring(L, lazy[i][1]);
    lua_call(L, 1, 1);
    if (lazy[i][2] != NULL)
      lua_getfield(L, -1, lazy[i][2]);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);
    return 1;
  }
  return 0;
}

/* Finalised before the runtime (it is newer): lets luv callbacks that run
   while the loop closes report without the runtime. */
static int io_gc(lua_State *L) {
  weft__uv_close_all(L);
  return 0;
}

int weft__open_io(lua_State *L, weft_runtime *rt) {
  int i;
  weft__open_uv(L, rt);
  weft__open_json(L, rt);
  weft__open_stream(L, rt);
  weft__open_net(L, rt);
  weft__open_thread(L, rt);
  weft__open_http(L, rt);
  lua_newuserdatauv(L, 1, 0);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, io_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, "weft.io");
  lua_createtable(L, 0, 1);
  lua_newtable(L);   /* the names served, as an upvalue: REPL completion lists them */
  for (i = 0; lazy[i][0] != NULL; i++) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, lazy[i][0]);
  }
  lua_pushcclosure(L, module_index, 1);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  return 0;
}
