/*
** sorter_lua.c: weft.sorter, Python's graphlib.TopologicalSorter for Lua
** values, over the integer core in sorter.c.
**
** A sorter is a userdata holding the core; user value 1 maps each node
** (any Lua value but nil and NaN; tables by identity) to its id, user value
** 2 is the array id + 1 -> node. Ids are given in order of first mention,
** so ready nodes come out in that order. A graph table is read keys-first
** in a reproducible order: the integer keys 1..#graph, then the other
** numbers ascending, the strings ascending, and any other key in table
** order. Errors name the node as Lua would print it (strings quoted).
** Also serves graph.c (weft__sorter_push_graph and friends, sorter.h).
** Implements API.md "Topological sorter".
*/
#include <math.h>
#include <string.h>

#include "internal.h"
#include "sorter.h"

#define SORTER_MT "weft.sorter"
#define MAX_SHOWN 12   /* nodes of a cycle spelled out in its message */

enum { UV_MAP = 1, UV_VALS = 2 };

typedef struct sorter_ud {
  weft_sorter *core;
} sorter_ud;

static weft_sorter *checksorter(lua_State *L, int idx) {
  sorter_ud *u = (sorter_ud *)luaL_checkudata(L, idx, SORTER_MT);
  return u->core;
}

/* Pushes the value at idx as messages show a node: strings quoted. */
static void push_repr(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING)
    lua_pushfstring(L, "\"%s\"", lua_tostring(L, idx));
  else
    luaL_tolstring(L, idx, NULL);
}

static int memory_error(lua_State *L, int rc) {
  if (rc == WEFT_SORTER_ETOOBIG)
    return luaL_error(L, "weft.sorter: too many nodes or edges");
  return luaL_error(L, "weft.sorter: not enough memory");
}

static int bad_node(lua_State *L, int idx) {
  return lua_isnil(L, idx) || (lua_type(L, idx) == LUA_TNUMBER &&
                               isnan(lua_tonumber(L, idx)));
}

/* Returns the id of the node at idx, making one if 'map' lacks it. The
   map and vals tables are at 'map' and 'map' + 1. */
static int intern(lua_State *L, weft_sorter *s, int map, int idx) {
  int id, isint = lua_isinteger(L, idx);
  lua_Integer k = isint ? lua_tointeger(L, idx) : 0;
  if (isint ? lua_rawgeti(L, map, k) : (lua_pushvalue(L, idx), lua_rawget(L, map))) {
    id = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    return id;
  }
  lua_pop(L, 1);
  id = weft__sorter_node(s);
  if (id < 0)
    return memory_error(L, id);
  lua_pushinteger(L, id);
  if (isint)
    lua_rawseti(L, map, k);
  else {
    lua_pushvalue(L, idx);
    lua_insert(L, -2);
    lua_rawset(L, map);
  }
  lua_pushvalue(L, idx);
  lua_rawseti(L, map + 1, (lua_Integer)id + 1);
  return id;
}

/* Returns the id of the node at idx, or -1 if it was never added. */
static int lookup(lua_State *L, int ud, int idx) {
  int id = -1;
  lua_getiuservalue(L, ud, UV_MAP);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) == LUA_TNUMBER)
    id = (int)lua_tointeger(L, -1);
  lua_pop(L, 2);
  return id;
}

void weft__sorter_push_node(lua_State *L, int ud, int id) {
  lua_getiuservalue(L, ud, UV_VALS);
  lua_rawgeti(L, -1, (lua_Integer)id + 1);
  lua_remove(L, -2);
}

void weft__sorter_push_values(lua_State *L, int ud) {
  lua_getiuservalue(L, ud, UV_VALS);
}

static weft_sorter *push_sorter(lua_State *L) {
  sorter_ud *u = (sorter_ud *)lua_newuserdatauv(L, sizeof *u, 2);
  u->core = NULL;
  luaL_setmetatable(L, SORTER_MT);
  lua_newtable(L);
  lua_setiuservalue(L, -2, UV_MAP);
  lua_newtable(L);
  lua_setiuservalue(L, -2, UV_VALS);
  u->core = weft__sorter_new();
  if (u->core == NULL)
    luaL_error(L, "weft.sorter: not enough memory");
  return u->core;
}

/* {======== reading a graph table */

/* Adds node 'key' (at idx, value preds at idx + 1), as add(key, preds...).
   map and vals are at 'map' and 'map' + 1. */
static void add_entry(lua_State *L, weft_sorter *s, int map, int idx) {
  int id, pid, rc;
  lua_Integer i, n;
  if (lua_type(L, idx + 1) != LUA_TTABLE) {
    push_repr(L, idx);
    luaL_error(L, "weft.sorter: graph[%s] must be an array of predecessors, not a %s",
               lua_tostring(L, -1), luaL_typename(L, idx + 1));
  }
  id = intern(L, s, map, idx);
  n = (lua_Integer)lua_rawlen(L, idx + 1);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, idx + 1, i);
    if (bad_node(L, -1)) {
      push_repr(L, idx);
      luaL_error(L, "weft.sorter: graph[%s][%d] is %s, which cannot be a node",
                 lua_tostring(L, -1), (int)i, lua_isnil(L, -2) ? "nil" : "NaN");
    }
    pid = intern(L, s, map, lua_gettop(L));
    lua_pop(L, 1);
    if ((rc = weft__sorter_edge(s, pid, id)) != 0)
      memory_error(L, rc);
  }
}

/* Is the array at idx in ascending order? */
static int sorted(lua_State *L, int idx) {
  lua_Integer i, n = (lua_Integer)lua_rawlen(L, idx);
  int ok = 1;
  for (i = 1; i < n && ok; i++) {
    lua_rawgeti(L, idx, i);
    lua_rawgeti(L, idx, i + 1);
    ok = lua_compare(L, -2, -1, LUA_OPLE);
    lua_pop(L, 2);
  }
  return ok;
}

static void sort_array(lua_State *L, int idx) {
  if (sorted(L, idx))
    return;
  lua_getglobal(L, "table");
  if (lua_type(L, -1) == LUA_TTABLE && lua_getfield(L, -1, "sort") == LUA_TFUNCTION) {
    lua_pushvalue(L, idx);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 2);   /* no table library: table order it is */
}

/* Pushes three arrays of the keys of the graph at 'graph' outside 1..border:
   numbers, strings, others. */
static void collect_keys(lua_State *L, int graph, lua_Integer border) {
  lua_Integer nk[3] = {0, 0, 0};
  int base = lua_gettop(L) + 1, k;
  lua_newtable(L);
  lua_newtable(L);
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, graph)) {
    lua_pop(L, 1);
    if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1 && lua_tointeger(L, -1) <= border)
      continue;
    k = lua_type(L, -1) == LUA_TNUMBER ? 0 : lua_type(L, -1) == LUA_TSTRING ? 1 : 2;
    lua_pushvalue(L, -1);
    lua_rawseti(L, base + k, ++nk[k]);
  }
  sort_array(L, base);
  sort_array(L, base + 1);
}

/* Adds every entry of the graph at 'graph'; map and vals at 'map'. */
static void add_graph(lua_State *L, weft_sorter *s, int graph, int map) {
  lua_Integer i, n, border = 0;
  int k, keys;
  while (lua_rawgeti(L, graph, border + 1) != LUA_TNIL) {
    lua_pushinteger(L, ++border);
    lua_insert(L, -2);
    add_entry(L, s, map, lua_gettop(L) - 1);
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  collect_keys(L, graph, border);
  keys = lua_gettop(L) - 2;
  for (k = 0; k < 3; k++) {
    n = (lua_Integer)lua_rawlen(L, keys + k);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, keys + k, i);
      lua_pushvalue(L, -1);
      lua_rawget(L, graph);
      add_entry(L, s, map, lua_gettop(L) - 1);
      lua_pop(L, 2);
    }
  }
  lua_pop(L, 3);
}

weft_sorter *weft__sorter_push_graph(lua_State *L, int graph) {
  weft_sorter *s;
  int ud, map;
  graph = lua_absindex(L, graph);
  luaL_checkstack(L, 12, NULL);
  s = push_sorter(L);
  ud = lua_gettop(L);
  lua_getiuservalue(L, ud, UV_MAP);
  map = lua_gettop(L);
  lua_getiuservalue(L, ud, UV_VALS);
  add_graph(L, s, graph, map);
  lua_settop(L, ud);
  return s;
}

/* }======== */

/* {======== prepare and CycleError */

/* Pushes CycleError for the sorter at ud. */
static void push_cycle_error(lua_State *L, int ud, weft_sorter *s) {
  const int *path;
  int n = weft__sorter_cycle(s, &path), i;
  luaL_Buffer b;
  lua_createtable(L, n, 0);
  for (i = 0; i < n; i++) {
    weft__sorter_push_node(L, ud, path[i]);
    lua_rawseti(L, -2, i + 1);
  }
  luaL_buffinit(L, &b);
  for (i = 0; i < n; i++) {
    if (i > 0)
      luaL_addstring(&b, " -> ");
    if (i == MAX_SHOWN && i < n - 1) {
      luaL_addstring(&b, "...");
      i = n - 2;
      continue;
    }
    weft__sorter_push_node(L, ud, path[i]);
    push_repr(L, -1);
    lua_remove(L, -2);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  weft__error_new(L, "CycleError", "nodes are in a cycle: %s", lua_tostring(L, -1));
  lua_remove(L, -2);
  lua_insert(L, -2);
  lua_setfield(L, -2, "cycle");
}

void weft__sorter_prepare_or_raise(lua_State *L, int ud) {
  sorter_ud *u = (sorter_ud *)luaL_checkudata(L, ud, SORTER_MT);
  int rc = weft__sorter_prepare(u->core);
  if (rc == 0)
    return;
  if (rc == WEFT_SORTER_ECYCLE) {
    push_cycle_error(L, lua_absindex(L, ud), u->core);
    lua_error(L);
  }
  if (rc == WEFT_SORTER_EPREPARED)
    luaL_error(L, "prepare: cannot prepare() more than once");
  memory_error(L, rc);
}

/* }======== */

/* {======== methods */

static void check_prepared(lua_State *L, weft_sorter *s, const char *what) {
  if (!weft__sorter_prepared(s))
    luaL_error(L, "%s: prepare() must be called first", what);
}

static int sorter_add(lua_State *L) {
  weft_sorter *s = checksorter(L, 1);
  int top = lua_gettop(L), i, id, rc, map;
  if (weft__sorter_prepared(s))
    return luaL_error(L, "add: nodes cannot be added after prepare()");
  luaL_checkany(L, 2);
  for (i = 2; i <= top; i++)
    if (bad_node(L, i))
      luaL_argerror(L, i - 1, lua_isnil(L, i) ? "a node cannot be nil"
                                               : "a node cannot be NaN");
  lua_getiuservalue(L, 1, UV_MAP);
  map = lua_gettop(L);
  lua_getiuservalue(L, 1, UV_VALS);
  id = intern(L, s, map, 2);
  for (i = 3; i <= top; i++) {
    int pid = intern(L, s, map, i);
    if ((rc = weft__sorter_edge(s, pid, id)) != 0)
      return memory_error(L, rc);
  }
  return 0;
}

static int sorter_prepare(lua_State *L) {
  checksorter(L, 1);
  weft__sorter_prepare_or_raise(L, 1);
  return 0;
}

static int sorter_get_ready(lua_State *L) {
  weft_sorter *s = checksorter(L, 1);
  int n, i;
  check_prepared(L, s, "get_ready");
  n = weft__sorter_nready(s);
  lua_createtable(L, n, 0);
  lua_getiuservalue(L, 1, UV_VALS);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, (lua_Integer)weft__sorter_pop_ready(s) + 1);
    lua_rawseti(L, -3, i);
  }
  lua_pop(L, 1);
  return 1;
}

static int done_error(lua_State *L, int idx, int rc) {
  push_repr(L, idx);
  switch (rc) {
    case WEFT_SORTER_EUNKNOWN:
      return luaL_error(L, "done: node %s was not added using add()", lua_tostring(L, -1));
    case WEFT_SORTER_ENOTOUT:
      return luaL_error(L, "done: node %s was not passed out (still not ready)",
                        lua_tostring(L, -1));
    default:
      return luaL_error(L, "done: node %s was already marked done", lua_tostring(L, -1));
  }
}

static int sorter_done(lua_State *L) {
  weft_sorter *s = checksorter(L, 1);
  int top = lua_gettop(L), i;
  check_prepared(L, s, "done");
  for (i = 2; i <= top; i++) {
    int rc = weft__sorter_done(s, lookup(L, 1, i));
    if (rc != 0)
      return done_error(L, i, rc);
  }
  return 0;
}

static int sorter_is_active(lua_State *L) {
  weft_sorter *s = checksorter(L, 1);
  check_prepared(L, s, "is_active");
  lua_pushboolean(L, weft__sorter_is_active(s) > 0);
  return 1;
}

static int sorter_static_order(lua_State *L) {
  weft_sorter *s = checksorter(L, 1);
  int n = weft__sorter_count(s), i, *order;
  lua_settop(L, 1);
  weft__sorter_prepare_or_raise(L, 1);
  lua_createtable(L, n, 0);                                  /* 2 result */
  order = (int *)lua_newuserdatauv(L, (size_t)n * sizeof(int) + 1, 0);
  lua_getiuservalue(L, 1, UV_VALS);                          /* 4 vals */
  /* prepared above, so this only fills the order */
  n = 0;
  while (weft__sorter_nready(s) > 0) {
    int first = n;
    while (weft__sorter_nready(s) > 0)
      order[n++] = weft__sorter_pop_ready(s);
    for (i = first; i < n; i++) {
      weft__sorter_done(s, order[i]);
      lua_rawgeti(L, 4, (lua_Integer)order[i] + 1);
      lua_rawseti(L, 2, i + 1);
    }
  }
  lua_settop(L, 2);
  return 1;
}

static int sorter_tostring(lua_State *L) {
  weft_sorter *s = checksorter(L, 1);
  lua_pushfstring(L, "weft.sorter (%d nodes%s)", weft__sorter_count(s),
                  weft__sorter_prepared(s) ? ", prepared" : "");
  return 1;
}

static int sorter_gc(lua_State *L) {
  sorter_ud *u = (sorter_ud *)luaL_checkudata(L, 1, SORTER_MT);
  weft__sorter_free(u->core);
  u->core = NULL;
  return 0;
}

/* weft.sorter([graph]) */
static int sorter_new(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    weft__sorter_push_graph(L, 1);
    return 1;
  }
  push_sorter(L);
  return 1;
}

/* }======== */

static const luaL_Reg sorter_methods[] = {
  {"add", sorter_add},
  {"prepare", sorter_prepare},
  {"get_ready", sorter_get_ready},
  {"done", sorter_done},
  {"is_active", sorter_is_active},
  {"static_order", sorter_static_order},
  {NULL, NULL}
};

static const luaL_Reg sorter_funcs[] = {
  {"sorter", sorter_new},
  {NULL, NULL}
};

int weft__open_sorter(lua_State *L, weft_runtime *rt) {
  weft__new_class(L, rt, SORTER_MT, sorter_methods, sorter_tostring);
  luaL_getmetatable(L, SORTER_MT);
  lua_pushcfunction(L, sorter_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_pushlightuserdata(L, rt);
  luaL_setfuncs(L, sorter_funcs, 1);
  return 0;
}
