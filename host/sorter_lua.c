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
** User docs: docs/reference.md "Sorter and graph runner".
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "sorter.h"

#define SORTER_MT "weft.sorter"
#define MAX_SHOWN 12   /* nodes of a cycle spelled out in its message */

enum { UV_MAP = 1, UV_VALS = 2 };

/* Integer nodes, the common case, skip the Lua tables: 'direct' maps keys
   1..dcap to id + 1 (0: not a node) and ival/isint hold each integer
   node's value. The map table (user value 1) holds the other nodes and the
   integers too large or too sparse for the index; the vals table (user
   value 2) holds the values of non-integer nodes. */
typedef struct sorter_ud {
  weft_sorter *core;
  int *direct;
  lua_Integer dcap;
  int nmapped_ints;       /* integer keys in the map table */
  int nsmall_ints;        /* nodes that are integers 1..count */
  lua_Integer *ival;      /* node id -> its value, when isint[id] */
  unsigned char *isint;
  int vcap;
} sorter_ud;

static sorter_ud *checkud(lua_State *L, int idx) {
  return (sorter_ud *)luaL_checkudata(L, idx, SORTER_MT);
}

/* The sorter a method was called on: a metatable pointer compare first
   (add runs once per node), the named check for its error message. */
static sorter_ud *self(lua_State *L) {
  sorter_ud *u = (sorter_ud *)lua_touserdata(L, 1);
  if (u != NULL && lua_getmetatable(L, 1)) {
    int ok = lua_topointer(L, -1) == WEFT_UPRT(L)->sorter_mt;
    lua_pop(L, 1);
    if (ok)
      return u;
  }
  return checkud(L, 1);
}

static weft_sorter *checksorter(lua_State *L, int idx) {
  return checkud(L, idx)->core;
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

/* {======== the node table */

/* Moves the integer keys of the map table (at 'map') that fall in
   lo..hi into the direct index. */
static void migrate(lua_State *L, sorter_ud *u, int map, lua_Integer lo, lua_Integer hi) {
  lua_pushnil(L);
  while (lua_next(L, map)) {
    if (lua_isinteger(L, -2) && lua_tointeger(L, -2) >= lo && lua_tointeger(L, -2) <= hi) {
      u->direct[lua_tointeger(L, -2) - 1] = (int)lua_tointeger(L, -1) + 1;
      u->nmapped_ints--;
      lua_pushvalue(L, -2);
      lua_pushnil(L);
      lua_rawset(L, map);   /* clearing a field during traversal is allowed */
    }
    lua_pop(L, 1);
  }
}

/* Makes the direct index cover keys 1..cap. */
static void direct_reserve(lua_State *L, sorter_ud *u, int map, lua_Integer cap) {
  int *p;
  if (cap <= u->dcap)
    return;
  p = (int *)realloc(u->direct, (size_t)cap * sizeof(int));
  if (p == NULL)
    memory_error(L, WEFT_SORTER_ENOMEM);
  memset(p + u->dcap, 0, (size_t)(cap - u->dcap) * sizeof(int));
  u->direct = p;
  if (u->nmapped_ints > 0)
    migrate(L, u, map, u->dcap + 1, cap);
  u->dcap = cap;
}

/* The largest key the direct index may grow to: about twice the nodes. */
static lua_Integer direct_bound(const sorter_ud *u) {
  return 2 * (lua_Integer)weft__sorter_count(u->core) + 1024;
}

/* Does the direct index cover key k, once grown if the keys are dense
   enough (k at most about twice the number of nodes)? */
static int direct_covers(lua_State *L, sorter_ud *u, int map, lua_Integer k) {
  lua_Integer bound = direct_bound(u), cap;
  if (k >= 1 && k <= u->dcap)
    return 1;
  if (k < 1 || k > bound)
    return 0;
  cap = u->dcap * 2 > k ? u->dcap * 2 : k;
  direct_reserve(L, u, map, cap < bound ? cap : bound);
  return 1;
}

/* Will key k go to the direct index without the map table (no key there
   to move when the index grows)? The bound only grows as nodes are added. */
static int fits_direct(const sorter_ud *u, lua_Integer k) {
  if (k >= 1 && k <= u->dcap)
    return 1;
  return u->nmapped_ints == 0 && k >= 1 && k <= direct_bound(u);
}

/* Makes a node; records its value (the value at idx) in ival or vals. */
static int new_node(lua_State *L, sorter_ud *u, int vals, int idx, lua_Integer k) {
  int id = weft__sorter_node_live(u->core), isint = idx == 0 || lua_isinteger(L, idx);
  if (id < 0)
    return memory_error(L, id);
  if (id >= u->vcap) {
    int cap = u->vcap < 64 ? 64 : u->vcap * 2;
    lua_Integer *iv = (lua_Integer *)realloc(u->ival, (size_t)cap * sizeof *iv);
    unsigned char *ii;
    if (iv == NULL)
      memory_error(L, WEFT_SORTER_ENOMEM);
    u->ival = iv;
    ii = (unsigned char *)realloc(u->isint, (size_t)cap);
    if (ii == NULL)
      memory_error(L, WEFT_SORTER_ENOMEM);
    u->isint = ii;
    u->vcap = cap;
  }
  u->isint[id] = (unsigned char)isint;
  u->ival[id] = k;
  if (!isint) {
    lua_pushvalue(L, idx);
    lua_rawseti(L, vals, (lua_Integer)id + 1);
  }
  return id;
}

/* The id of integer node k, made if new. map and vals are at 'map' and
   'map' + 1; idx holds the value as mentioned (0: the integer k itself). */
static int intern_int(lua_State *L, sorter_ud *u, int map, int idx, lua_Integer k) {
  int id;
  if (direct_covers(L, u, map, k)) {
    if (u->direct[k - 1] != 0)
      return u->direct[k - 1] - 1;
    id = new_node(L, u, map + 1, idx, k);
    u->direct[k - 1] = id + 1;
    u->nsmall_ints++;
    return id;
  }
  if (lua_rawgeti(L, map, k) == LUA_TNUMBER) {
    id = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    return id;
  }
  lua_pop(L, 1);
  id = new_node(L, u, map + 1, idx, k);
  lua_pushinteger(L, id);
  lua_rawseti(L, map, k);
  u->nmapped_ints++;
  return id;
}

/* Is the number at idx an integer or a float with an integer value (the
   same table key as that integer)? Sets *k to it. */
static int integer_key(lua_State *L, int idx, lua_Integer *k) {
  lua_Number n;
  if (lua_isinteger(L, idx)) {
    *k = lua_tointeger(L, idx);
    return 1;
  }
  n = lua_tonumber(L, idx);
  return n == floor(n) && lua_numbertointeger(n, k);
}

/* Returns the id of the node at idx (not nil or NaN), making one if it is
   new. The map and vals tables are at 'map' and 'map' + 1. */
static int intern(lua_State *L, sorter_ud *u, int map, int idx) {
  int id;
  if (lua_isinteger(L, idx))
    return intern_int(L, u, map, idx, lua_tointeger(L, idx));
  lua_pushvalue(L, idx);
  if (lua_rawget(L, map) == LUA_TNUMBER) {
    id = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    return id;
  }
  lua_pop(L, 1);
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer k;
    if (integer_key(L, idx, &k))
      return intern_int(L, u, map, idx, k);
  }
  id = new_node(L, u, map + 1, idx, 0);
  lua_pushvalue(L, idx);
  lua_pushinteger(L, id);
  lua_rawset(L, map);
  return id;
}

/* Returns the id of the node at idx, or -1 if it was never added. */
int weft__sorter_lookup(lua_State *L, int ud, int idx) {
  sorter_ud *u = (sorter_ud *)lua_touserdata(L, ud);
  int id = -1;
  lua_Integer k;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TNUMBER && integer_key(L, idx, &k) && k >= 1 && k <= u->dcap)
    return u->direct[k - 1] - 1;
  lua_getiuservalue(L, ud, UV_MAP);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) == LUA_TNUMBER)
    id = (int)lua_tointeger(L, -1);
  lua_pop(L, 2);
  return id;
}

int weft__sorter_intern_live(lua_State *L, int ud, int idx) {
  sorter_ud *u = (sorter_ud *)lua_touserdata(L, ud);
  int map, id;
  idx = lua_absindex(L, idx);
  lua_getiuservalue(L, ud, UV_MAP);
  map = lua_gettop(L);
  lua_getiuservalue(L, ud, UV_VALS);
  id = intern(L, u, map, idx);
  lua_pop(L, 2);
  return id;
}

void weft__sorter_push_table(lua_State *L, int ud) {
  sorter_ud *u = (sorter_ud *)lua_touserdata(L, ud);
  int n = weft__sorter_count(u->core);
  /* the nodes are 1..n exactly when n of them are direct keys <= n */
  int dense = u->nsmall_ints == n && u->dcap >= n && n > 0 && u->direct[n - 1] != 0;
  lua_createtable(L, dense ? n : 0, dense ? 0 : n);
}

/* Pushes node id's value; u is the sorter userdata at 'ud'. */
static void push_id(lua_State *L, const sorter_ud *u, int ud, int id) {
  if (u->isint[id]) {
    lua_pushinteger(L, u->ival[id]);
    return;
  }
  lua_getiuservalue(L, ud, UV_VALS);
  lua_rawgeti(L, -1, (lua_Integer)id + 1);
  lua_remove(L, -2);
}

void weft__sorter_push_node(lua_State *L, int ud, int id) {
  push_id(L, (const sorter_ud *)lua_touserdata(L, ud), ud, id);
}

/* t[node id] = the value on top (popped), t at index 'tab': an integer
   node is a lua_rawseti, without pushing the key (run_graph's results). */
void weft__sorter_set_at_node(lua_State *L, int ud, int tab, int id) {
  const sorter_ud *u = (const sorter_ud *)lua_touserdata(L, ud);
  tab = lua_absindex(L, tab);
  if (u->isint[id]) {
    lua_rawseti(L, tab, u->ival[id]);
    return;
  }
  push_id(L, u, ud, id);
  lua_insert(L, -2);
  lua_rawset(L, tab);
}

/* 'hint' is how many nodes are expected: room for them is made at once. */
static sorter_ud *push_sorter(lua_State *L, int hint) {
  sorter_ud *u = (sorter_ud *)lua_newuserdatauv(L, sizeof *u, 2);
  memset(u, 0, sizeof *u);
  luaL_setmetatable(L, SORTER_MT);
  lua_newtable(L);
  lua_setiuservalue(L, -2, UV_MAP);
  lua_newtable(L);
  lua_setiuservalue(L, -2, UV_VALS);
  u->core = weft__sorter_new();
  if (u->core == NULL)
    luaL_error(L, "weft.sorter: not enough memory");
  if (hint > 0) {
    if (weft__sorter_reserve(u->core, hint) != 0)
      memory_error(L, WEFT_SORTER_ENOMEM);
    lua_getiuservalue(L, -1, UV_MAP);
    direct_reserve(L, u, lua_gettop(L), hint);
    lua_pop(L, 1);
  }
  return u;
}

/* }======== */

/* {======== reading a graph table */

/* The graph is argument 1 of both weft.sorter and weft.run_graph: errors
   in it are argument errors of whichever was called. */
#define GRAPH_ARG 1

/* Adds the edges from the predecessors in the array at 'preds' to node id,
   as add(node, preds...). map and vals are at 'map' and 'map' + 1. */
static void add_preds(lua_State *L, sorter_ud *u, int map, int preds, int id) {
  int pid = 0, rc, top = lua_gettop(L) + 1;
  lua_Integer i, n = (lua_Integer)lua_rawlen(L, preds);
  for (i = 1; i <= n; i++) {
    int isint;
    lua_Integer k;
    /* (a float with an integer value is that integer too, as intern says) */
    if (lua_rawgeti(L, preds, i) == LUA_TNUMBER && (k = lua_tointegerx(L, -1, &isint), isint)) {
      pid = intern_int(L, u, map, top, k);
    } else if (bad_node(L, -1)) {
      weft__sorter_push_node(L, map - 1, id);
      push_repr(L, -1);
      luaL_argerror(L, GRAPH_ARG, lua_pushfstring(L, "graph[%s][%d] is %s, which cannot be a node",
                    lua_tostring(L, -1), (int)i, lua_isnil(L, top) ? "nil" : "NaN"));
    } else {
      pid = intern(L, u, map, top);
    }
    lua_settop(L, top - 1);
    if ((rc = weft__sorter_edge(u->core, pid, id)) != 0)
      memory_error(L, rc);
  }
}

static void check_preds(lua_State *L, int key, int preds) {
  if (lua_type(L, preds) != LUA_TTABLE) {
    push_repr(L, key);
    luaL_argerror(L, GRAPH_ARG, lua_pushfstring(L, "graph[%s] must be an array of predecessors, not a %s",
                  lua_tostring(L, -1), luaL_typename(L, preds)));
  }
}

/* Adds node 'key' (at idx, value preds at idx + 1), as add(key, preds...).
   map and vals are at 'map' and 'map' + 1. */
static void add_entry(lua_State *L, sorter_ud *u, int map, int idx) {
  check_preds(L, idx, idx + 1);
  add_preds(L, u, map, idx + 1, intern(L, u, map, idx));
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
static void add_graph(lua_State *L, sorter_ud *u, int graph, int map) {
  lua_Integer i, n, border = 0;
  int k, keys;
  while (lua_rawgeti(L, graph, border + 1) != LUA_TNIL) {
    int preds = lua_gettop(L);
    border++;
    if (lua_type(L, preds) != LUA_TTABLE) {
      lua_pushinteger(L, border);
      check_preds(L, preds + 1, preds);
    }
    add_preds(L, u, map, preds, intern_int(L, u, map, 0, border));
    lua_pop(L, 1);
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
      add_entry(L, u, map, lua_gettop(L) - 1);
      lua_pop(L, 2);
    }
  }
  lua_pop(L, 3);
}

/* How many nodes the graph at idx has at least: its border, when its keys
   are 1..n (capped: a hint must not allocate what the graph lacks). */
static int size_hint(lua_State *L, int idx) {
  lua_Unsigned n = lua_rawlen(L, idx);
  return n > (1u << 26) ? 1 << 26 : (int)n;
}

weft_sorter *weft__sorter_push_graph(lua_State *L, int graph) {
  sorter_ud *u;
  int ud, map;
  graph = lua_absindex(L, graph);
  luaL_checkstack(L, 12, NULL);
  u = push_sorter(L, size_hint(L, graph));
  ud = lua_gettop(L);
  lua_getiuservalue(L, ud, UV_MAP);
  map = lua_gettop(L);
  lua_getiuservalue(L, ud, UV_VALS);
  add_graph(L, u, graph, map);
  lua_settop(L, ud);
  return u->core;
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

#define ADD_FAST_MAX 16   /* add() calls with more nodes take the general path */

static int sorter_add(lua_State *L) {
  sorter_ud *u = self(L);
  weft_sorter *s = u->core;
  lua_Integer keys[ADD_FAST_MAX];   /* the integer arguments, for the fast path */
  int top = lua_gettop(L), i, id, rc, map, direct = top - 1 <= ADD_FAST_MAX;
  if (weft__sorter_prepared(s))
    return luaL_error(L, "add: nodes cannot be added after prepare()");
  luaL_checkany(L, 2);
  for (i = 2; i <= top; i++) {
    if (lua_isinteger(L, i)) {
      if (direct) {
        keys[i - 2] = lua_tointeger(L, i);
        direct = fits_direct(u, keys[i - 2]);
      }
    } else if (bad_node(L, i)) {
      luaL_argerror(L, i, lua_isnil(L, i) ? "a node cannot be nil"
                                               : "a node cannot be NaN");
    } else {
      direct = 0;
    }
  }
  if (direct) {   /* the common case: no Lua table is needed (map 0 is never read) */
    id = intern_int(L, u, 0, 0, keys[0]);
    for (i = 1; i < top - 1; i++)
      if ((rc = weft__sorter_edge(s, intern_int(L, u, 0, 0, keys[i]), id)) != 0)
        return memory_error(L, rc);
    return 0;
  }
  lua_getiuservalue(L, 1, UV_MAP);
  map = lua_gettop(L);
  lua_getiuservalue(L, 1, UV_VALS);
  id = intern(L, u, map, 2);
  for (i = 3; i <= top; i++) {
    int pid = intern(L, u, map, i);
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
  weft_sorter *s = self(L)->core;
  int n, i;
  check_prepared(L, s, "get_ready");
  n = weft__sorter_nready(s);
  lua_createtable(L, n, 0);
  for (i = 1; i <= n; i++) {
    weft__sorter_push_node(L, 1, weft__sorter_pop_ready(s));
    lua_rawseti(L, -2, i);
  }
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
  weft_sorter *s = self(L)->core;
  int top = lua_gettop(L), i;
  check_prepared(L, s, "done");
  for (i = 2; i <= top; i++) {
    int rc = weft__sorter_done(s, weft__sorter_lookup(L, 1, i));
    if (rc != 0)
      return done_error(L, i, rc);
  }
  return 0;
}

static int sorter_is_active(lua_State *L) {
  weft_sorter *s = self(L)->core;
  check_prepared(L, s, "is_active");
  lua_pushboolean(L, weft__sorter_is_active(s) > 0);
  return 1;
}

static int sorter_static_order(lua_State *L) {
  sorter_ud *u = self(L);
  weft_sorter *s = u->core;
  int n = weft__sorter_count(s), i, *order;
  lua_settop(L, 1);
  weft__sorter_prepare_or_raise(L, 1);
  lua_createtable(L, n, 0);                                  /* 2 result */
  order = (int *)lua_newuserdatauv(L, (size_t)n * sizeof(int) + 1, 0);
  /* prepared above, so this only fills the order */
  n = 0;
  while (weft__sorter_nready(s) > 0) {
    int first = n;
    while (weft__sorter_nready(s) > 0)
      order[n++] = weft__sorter_pop_ready(s);
    for (i = first; i < n; i++) {
      weft__sorter_done(s, order[i]);
      push_id(L, u, 1, order[i]);
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
  sorter_ud *u = checkud(L, 1);
  weft__sorter_free(u->core);
  free(u->direct);
  free(u->ival);
  free(u->isint);
  memset(u, 0, sizeof *u);
  return 0;
}

/* weft.sorter([graph]) */
static int sorter_new(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    weft__sorter_push_graph(L, 1);
    return 1;
  }
  push_sorter(L, 0);
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
  rt->sorter_mt = lua_topointer(L, -1);
  lua_pushcfunction(L, sorter_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_pushlightuserdata(L, rt);
  luaL_setfuncs(L, sorter_funcs, 1);
  return 0;
}
