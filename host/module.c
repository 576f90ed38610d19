/*
** module.c: luaopen_weft, the one entry point of the Lua module. It creates
** (or finds) the runtime of the state, lets each host file add its functions
** to the module table, serves the embedded stdlib through package.preload,
** and runs stdlib/weft/core.lua, which adds what is naturally Lua.
*/
#include <string.h>

#include "internal.h"

typedef struct weft_stdlib_entry {
  const char *name;        /* module name, "weft.pipeline" */
  const char *path;        /* source path, for chunk names */
  const unsigned char *src;
  size_t len;
  const unsigned char *code;   /* the same compiled by scripts/embed.lua, with debug info */
  size_t code_len;
} weft_stdlib_entry;

extern const weft_stdlib_entry weft__stdlib[];   /* generated: build/stdlib.c */

static char module_key;

static const weft_stdlib_entry *find_stdlib(const char *name) {
  const weft_stdlib_entry *e;
  for (e = weft__stdlib; e->name != NULL; e++)
    if (strcmp(e->name, name) == 0)
      return e;
  return NULL;
}

/* Bytecode is valid only for the Lua release that wrote it: the one whose
   headers this file was compiled with (the interpreter that ran embed.lua
   comes from the same package). Another liblua at run time gets the source. */
static int same_lua_release(void) {
  return strstr(lua_ident, LUA_RELEASE " ") != NULL;
}

static int load_entry(lua_State *L, const weft_stdlib_entry *e) {
  lua_pushfstring(L, "@%s", e->path);
  if (e->code != NULL && same_lua_release()) {
    if (luaL_loadbufferx(L, (const char *)e->code, e->code_len, lua_tostring(L, -1), "b") == LUA_OK) {
      lua_remove(L, -2);
      return 1;
    }
    lua_pop(L, 1);
  }
  if (luaL_loadbufferx(L, (const char *)e->src, e->len, lua_tostring(L, -1), "t") != LUA_OK)
    return lua_error(L);
  lua_remove(L, -2);
  return 1;
}

/* Pushes what the embedded stdlib module 'name' returns, loading it now
   (not through package.loaded: host files use it while luaopen_weft runs,
   before package.preload serves the stdlib). Raises if there is none. */
void weft__stdlib_require(lua_State *L, const char *name) {
  const weft_stdlib_entry *e = find_stdlib(name);
  if (e == NULL)
    luaL_error(L, "weft: no embedded module '%s'", name);
  load_entry(L, e);
  lua_pushstring(L, name);
  lua_call(L, 1, 1);
}

/* package.preload loader: upvalue 1 is the entry. */
static int stdlib_loader(lua_State *L) {
  const weft_stdlib_entry *e = (const weft_stdlib_entry *)lua_touserdata(L, lua_upvalueindex(1));
  load_entry(L, e);
  lua_pushstring(L, e->name);
  lua_call(L, 1, 1);
  return 1;
}

static void install_preloads(lua_State *L) {
  const weft_stdlib_entry *e;
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (e = weft__stdlib; e->name != NULL; e++) {
    if (strcmp(e->name, "weft.core") == 0)
      continue;
    lua_pushlightuserdata(L, (void *)e);
    lua_pushcclosure(L, stdlib_loader, 1);
    lua_setfield(L, -2, e->name);
  }
  lua_pop(L, 1);
}

/* Runs weft.core with the module table and the metatables it extends. */
static void run_core(lua_State *L, int module) {
  static const char *const classes[] = {
    WEFT_TASK_MT, WEFT_FUTURE_MT, WEFT_EVENT_MT, WEFT_LOCK_MT, WEFT_SEMAPHORE_MT,
    WEFT_CONDITION_MT, WEFT_QUEUE_MT, WEFT_GROUP_MT, WEFT_ERROR_MT, NULL
  };
  const weft_stdlib_entry *e = find_stdlib("weft.core");
  int i;
  if (e == NULL)
    return;
  load_entry(L, e);
  lua_pushvalue(L, module);
  lua_newtable(L);
  for (i = 0; classes[i] != NULL; i++) {
    luaL_getmetatable(L, classes[i]);
    lua_setfield(L, -2, classes[i]);
  }
  lua_call(L, 2, 0);
}

#include "weft.h"

LUAMOD_API int luaopen_weft(lua_State *L) {
  weft_runtime *rt;
  int module;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &module_key) == LUA_TTABLE)
    return 1;
  lua_pop(L, 1);
  rt = weft__runtime(L);
  lua_createtable(L, 0, 48);   /* sized for its fields (44): no rehash as they come */
  module = lua_gettop(L);
  weft__open_errors(L, rt);
  weft__open_runtime(L, rt);
  weft__open_sched(L, rt);
  weft__open_envelope(L, rt);
  weft__open_task(L, rt);
  weft__open_future(L, rt);
  weft__open_sync(L, rt);
  weft__open_queue(L, rt);
  weft__open_combine(L, rt);
  weft__open_instrument(L, rt);
  weft__open_sorter(L, rt);
  weft__open_graph(L, rt);
  weft__open_spawn(L, rt);
  weft__open_exec(L, rt);
  weft__open_io(L, rt);
  weft__open_process(L, rt);   /* after io: its pipes are streams */
  weft__open_coro(L, rt);
  weft__open_hash(L, rt);
  weft__open_statedb(L, rt);
  weft__open_sys(L, rt);
  lua_pushliteral(L, WEFT_VERSION);
  lua_setfield(L, module, "version");
  install_preloads(L);
  lua_pushvalue(L, module);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &module_key);
  run_core(L, module);
  return 1;
}
