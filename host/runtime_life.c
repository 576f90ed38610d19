/*
** runtime_life.c: a runtime's life: created on first use (weft__runtime)
** or by an embedder on its loop (weft__runtime_create), with its parts
** (the safety envelope, the watch), and closed from the __gc of its box in
** the registry (or weft__runtime_destroy): the parts closed, C futures cut
** loose (through rt->cfutures_close, which cfuture.c sets, so that
** cfuture.c, which creates the runtime on first use, is not called back by
** import), weft's handles closed, an owned loop run until they have.
** It sits above every file it sets up; runtime.c below holds the clock,
** the deadlines and weft__runtime_find (docs/internals.md "Who calls whom").
*/
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void handle_closed(uv_handle_t *h) {
  weft__handle_closed((weft_runtime *)h->data);
}

/* Closes weft's handles; an owned loop is run until they have closed (luv
   and libuv both need that turn before memory goes away). */
static void runtime_close(weft_runtime *rt) {
  rt->closing = 1;
  weft__envelope_close(rt);
  weft__watch_close(rt);
  if (rt->cfutures_close != NULL)
    rt->cfutures_close(rt);
  uv_close((uv_handle_t *)&rt->idle, handle_closed);
  uv_close((uv_handle_t *)&rt->timer, handle_closed);
  uv_close((uv_handle_t *)&rt->prepare, handle_closed);
  uv_close((uv_handle_t *)&rt->check, handle_closed);
  if (!rt->owns_loop)
    return;
  while (rt->nhandles_open > 0)
    uv_run(rt->loop, UV_RUN_NOWAIT);
  uv_loop_close(rt->loop);
  weft__runtime_free(rt);
}

static int runtime_gc(lua_State *L) {
  weft_runtime **box = (weft_runtime **)lua_touserdata(L, 1);
  if (*box != NULL) {
    runtime_close(*box);
    *box = NULL;
  }
  return 0;
}

static void new_ref_table(lua_State *L, int *ref, const char *mode) {
  lua_newtable(L);
  if (mode != NULL) {
    lua_createtable(L, 0, 1);
    lua_pushstring(L, mode);
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
  }
  *ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* Creates the runtime of L's state on 'loop', or on a loop of its own. */
weft_runtime *weft__runtime_create(lua_State *L, uv_loop_t *loop) {
  weft_runtime **box;
  weft_runtime *rt = (weft_runtime *)calloc(1, sizeof *rt);
  if (rt == NULL)
    luaL_error(L, "weft: out of memory");
  box = (weft_runtime **)lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, runtime_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  if (loop == NULL) {
    if (uv_loop_init(&rt->own_loop) != 0) {
      free(rt);
      luaL_error(L, "weft: cannot create an event loop");
    }
    loop = &rt->own_loop;
    rt->owns_loop = 1;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  rt->L = lua_tothread(L, -1);
  lua_pop(L, 1);
  rt->loop = loop;
  uv_idle_init(loop, &rt->idle);
  uv_timer_init(loop, &rt->timer);
  uv_prepare_init(loop, &rt->prepare);
  uv_check_init(loop, &rt->check);
  uv_unref((uv_handle_t *)&rt->prepare);
  uv_unref((uv_handle_t *)&rt->check);
  rt->idle.data = rt;
  rt->timer.data = rt;
  rt->prepare.data = rt;
  rt->check.data = rt;
  rt->nhandles_open = 4;
  rt->timer_armed_for = -1;
  weft_queue_init(&rt->ready);
  weft_queue_init(&rt->live);
  rt->next_id = 1;
  rt->may_drive = 1;
  rt->report = weft__report_stderr;
  new_ref_table(L, &rt->anchor_ref, NULL);
  new_ref_table(L, &rt->unobserved_ref, NULL);
  new_ref_table(L, &rt->instruments_ref, NULL);
  weft__envelope_open(rt);
  weft__watch_open(L, rt);
  {
    const char *dbg = getenv("WEFT_DEBUG");
    rt->debug = dbg != NULL && *dbg != '\0' && strcmp(dbg, "0") != 0;
  }
  *box = rt;
  lua_rawsetp(L, LUA_REGISTRYINDEX, &weft__runtime_key);
  return rt;
}

weft_runtime *weft__runtime(lua_State *L) {
  weft_runtime *rt = weft__runtime_find(L);
  if (rt == NULL)
    rt = weft__runtime_create(L, NULL);
  return rt;
}

void weft__runtime_destroy(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &weft__runtime_key);
  if (lua_isuserdata(L, -1)) {
    lua_pushcfunction(L, runtime_gc);
    lua_insert(L, -2);
    lua_call(L, 1, 0);
  } else {
    lua_pop(L, 1);
  }
}
