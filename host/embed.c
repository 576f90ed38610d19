/*
** embed.c: the public C API of weft.h for applications: creating a
** runtime on the application's loop or weft's own, loading and running
** code as tasks, stepping, closing, and where reports and print go.
** (C futures are in cfuture.c, beside future.c's Lua ones.)
**
** Ownership: weft_new makes the Lua state and weft_close closes it;
** weft_open leaves the state to the caller and only closes the runtime.
** User docs: docs/embedding.md.
*/
#include <stdio.h>
#include <string.h>

#include <lualib.h>

#include "internal.h"
#include "weft.h"

/* {======== life */

static int open_in_state(lua_State *L) {
  uv_loop_t *loop = (uv_loop_t *)lua_touserdata(L, 1);
  weft_runtime *rt;
  if (weft__runtime_find(L) != NULL)
    return luaL_error(L, "weft_open: weft is already open in this state");
  rt = weft__runtime_create(L, loop);
  rt->may_drive = loop == NULL;
  weft__envelope_embedded(rt);
  weft__watch_start(rt);
  luaL_requiref(L, "weft", luaopen_weft, 1);
  lua_pop(L, 1);
  lua_pushlightuserdata(L, rt);
  return 1;
}

weft_runtime *weft_open(lua_State *L, uv_loop_t *loop) {
  weft_runtime *rt;
  lua_pushcfunction(L, open_in_state);
  lua_pushlightuserdata(L, loop);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    lua_pop(L, 1);
    return NULL;
  }
  rt = (weft_runtime *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  return rt;
}

weft_runtime *weft_new(uv_loop_t *loop) {
  lua_State *L = luaL_newstate();
  weft_runtime *rt;
  if (L == NULL)
    return NULL;
  luaL_openlibs(L);
  rt = weft_open(L, loop);
  if (rt == NULL) {
    lua_close(L);
    return NULL;
  }
  rt->owns_state = 1;
  return rt;
}

static void cancel_all(weft_runtime *rt) {
  weft_queue *q;
  for (q = rt->live.next; q != &rt->live; q = q->next)
    weft__task_cancel(rt->L, weft_queue_data(q, weft_task, live_node), 0);
}

void weft_close(weft_runtime *rt) {
  lua_State *L = rt->L;
  int rounds;
  cancel_all(rt);
  for (rounds = 0; rt->nlive > 0 && rounds < 1000; rounds++) {
    if (rt->may_drive && uv_loop_alive(rt->loop))
      uv_run(rt->loop, UV_RUN_ONCE);
    else if (!weft_queue_empty(&rt->ready))
      weft__runtime_turn(rt);
    else
      break;   /* the rest waits on the application's loop */
  }
  weft__report_unobserved(L, rt);
  if (rt->owns_state)
    lua_close(L);         /* closes the runtime too */
  else
    weft__runtime_destroy(L);
}

lua_State *weft_state(weft_runtime *rt) {
  return rt->L;
}

uv_loop_t *weft_loop(weft_runtime *rt) {
  return rt->loop;
}

/* }======== */

/* {======== running code */

int weft_load(weft_runtime *rt, const char *code, size_t len, const char *name) {
  return luaL_loadbuffer(rt->L, code, len, name);
}

/* Pushes stdlib's weft.sandbox module (also in states without require). */
static void push_sandbox_module(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "weft.sandbox") == LUA_TNIL) {
    lua_pop(L, 1);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_getfield(L, -1, "weft.sandbox");
    lua_remove(L, -2);
    lua_pushliteral(L, "weft.sandbox");
    lua_call(L, 1, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "weft.sandbox");
  }
  lua_remove(L, -2);
}

static int make_sandbox(lua_State *L) {
  const char *const *allow = (const char *const *)lua_touserdata(L, 1);
  int n = 0;
  push_sandbox_module(L);
  lua_getfield(L, -1, "new");
  lua_newtable(L);
  for (; allow != NULL && allow[n] != NULL; n++) {
    lua_pushstring(L, allow[n]);
    lua_rawseti(L, -2, n + 1);
  }
  lua_call(L, 1, 1);
  return 1;
}

int weft_sandbox(weft_runtime *rt, const char *const *allow) {
  lua_State *L = rt->L;
  lua_pushcfunction(L, make_sandbox);
  lua_pushlightuserdata(L, (void *)allow);
  return lua_pcall(L, 1, 1, 0);
}

int weft_load_env(weft_runtime *rt, const char *code, size_t len, const char *name,
                  int env_idx) {
  lua_State *L = rt->L;
  int status;
  env_idx = lua_absindex(L, env_idx);
  status = luaL_loadbufferx(L, code, len, name, "t");
  if (status == LUA_OK) {
    lua_pushvalue(L, env_idx);
    lua_setupvalue(L, -2, 1);   /* a main chunk's one upvalue is _ENV */
  }
  return status;
}

/* Calls weft.<fn> with the function and arguments on top of the stack. */
static int call_module(weft_runtime *rt, const char *fn, int nargs) {
  lua_State *L = rt->L;
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "weft");
  lua_getfield(L, -1, fn);
  lua_replace(L, -3);
  lua_pop(L, 1);
  lua_insert(L, -(nargs + 2));
  return lua_pcall(L, nargs + 1, fn[0] == 's' ? 1 : LUA_MULTRET, 0);
}

int weft_spawn(weft_runtime *rt, int nargs) {
  if (weft__watch_refuses_spawn(rt)) {
    lua_pop(rt->L, nargs + 1);
    lua_pushliteral(rt->L, "weft_spawn: the runtime is shutting down");
    return LUA_ERRRUN;
  }
  return call_module(rt, "spawn", nargs);
}

int weft_run(weft_runtime *rt, int nargs) {
  if (!rt->may_drive) {
    lua_pop(rt->L, nargs + 1);
    lua_pushliteral(rt->L, "weft_run: the application runs this loop; use weft_spawn");
    return LUA_ERRRUN;
  }
  return call_module(rt, "run", nargs);
}

int weft_step(weft_runtime *rt) {
  if (rt->may_drive)
    uv_run(rt->loop, UV_RUN_NOWAIT);
  else {
    if (!weft_queue_empty(&rt->ready))
      weft__runtime_turn(rt);
    weft__watch_turn(rt);
  }
  return rt->nlive;
}

int weft_pending(weft_runtime *rt) {
  return rt->nlive;
}

/* }======== */

/* {======== output */

void weft_set_report(weft_runtime *rt, weft_report_fn fn, void *ud) {
  rt->host_report = fn;
  rt->report_ud = ud;
}

/* print() replacement: the line goes to the host's function. */
static int host_print(lua_State *L) {
  weft_runtime *rt = (weft_runtime *)lua_touserdata(L, lua_upvalueindex(1));
  int n = lua_gettop(L), i;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *s = luaL_tolstring(L, i, &len);
    if (i > 1)
      luaL_addchar(&b, '\t');
    luaL_addvalue(&b);
    (void)s;
    (void)len;
  }
  luaL_addchar(&b, '\n');
  luaL_pushresult(&b);
  rt->print(lua_tostring(L, -1), rt->print_ud);
  return 0;
}

void weft_set_print(weft_runtime *rt, weft_report_fn fn, void *ud) {
  rt->print = fn;
  rt->print_ud = ud;
  lua_pushlightuserdata(rt->L, rt);
  lua_pushcclosure(rt->L, host_print, 1);
  lua_setglobal(rt->L, "print");
}

/* }======== */
