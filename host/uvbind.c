/*
** uvbind.c: weft.uv, Debian's luv opened on weft's own loop. Nothing of
** libuv is bound twice: this file only sets luv's loop and callback hook.
**
** Either order works under stock lua5.4. When weft comes first, luv is
** opened with luv_set_loop(weft's loop) and registered as package.loaded.luv.
** When luv came first, its loop is adopted: the runtime, still idle at
** require time, moves its two handles onto luv's loop (see adopt_loop; the
** runtime should rather be created on that loop).
**
** Errors in luv callbacks go through luv_set_callback to uv_pcall, which
** prints them like an unobserved task error and counts them in
** rt->nreported. The runtime is found through luv's ctx->extra, cleared
** when weft's I/O state is finalised.
**
** Exit safety: luv 1.44 frees a handle's memory in __gc when the handle is
** closing, even if libuv has not run its close callback yet: the process
** crashed at exit. Every luv handle metatable gets a __gc that, for such a
** handle, lets the close callback free it instead. User docs: docs/io.md
** (weft.uv).
*/
#include <stdio.h>
#include <stdlib.h>

/* luv.h declares one function without a prototype */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <luv/luv.h>
#include <luv/lhandle.h>
#pragma GCC diagnostic pop

#include "io.h"

/* libuv's internal "close callback has run" flag (uv-common.h, stable in
   1.x): a closing handle without it is still in the loop's closing list. */
#define UV_HANDLE_CLOSED_FLAG 0x00000002

static int has_luv_context(lua_State *L) {
  int has;
  lua_pushliteral(L, "luv_context");
  has = lua_rawget(L, LUA_REGISTRYINDEX) == LUA_TUSERDATA;
  lua_pop(L, 1);
  return has;
}

/* {======== callback errors */

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL)
    msg = luaL_tolstring(L, 1, NULL);
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* luv's cb_pcall: function and nargs on the stack; returns the number of
   results left, or minus the status (nothing left) after an error. */
static int uv_pcall(lua_State *L, int nargs, int nresults, int flags) {
  int base = lua_gettop(L) - nargs, status, top;
  weft_runtime *rt = (weft_runtime *)luv_context(L)->extra;
  (void)flags;
  lua_pushcfunction(L, traceback);
  lua_insert(L, base);
  status = lua_pcall(L, nargs, nresults, base);
  if (status == LUA_OK) {
    lua_remove(L, base);
    top = lua_gettop(L);
    return top - base + 1;
  }
  lua_pushfstring(L, "weft: error in a luv callback: %s\n",
                  lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error object)");
  if (rt != NULL) {
    weft__report(rt, lua_tostring(L, -1));
    rt->nreported++;
  } else {
    fputs(lua_tostring(L, -1), stderr);
  }
  lua_settop(L, base - 1);
  return -status;
}

/* }======== */

/* {======== handle memory at exit */

static void free_when_closed(uv_handle_t *h) {
  luv_handle_t *data = (luv_handle_t *)h->data;
  if (data != NULL) {
    if (data->extra_gc)
      data->extra_gc(data->extra);
    free(data);
  }
  free(h);
}

/* __gc of luv handles: upvalue 1 is luv's own. */
static int safe_handle_gc(lua_State *L) {
  uv_handle_t **udata = (uv_handle_t **)lua_touserdata(L, 1);
  uv_handle_t *h = udata ? *udata : NULL;
  if (h != NULL && uv_is_closing(h) && !(h->flags & UV_HANDLE_CLOSED_FLAG)) {
    h->close_cb = free_when_closed;   /* libuv calls it on the next turn */
    *udata = NULL;
    return 0;
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 1);
  lua_call(L, 1, 0);
  return 0;
}

static void patch_handle_gc(lua_State *L) {
  static const char *const types[] = {
#define XX(uc, lc) "uv_" #lc,
    UV_HANDLE_TYPE_MAP(XX)
#undef XX
    NULL
  };
  int i;
  for (i = 0; types[i] != NULL; i++) {
    if (luaL_getmetatable(L, types[i]) == LUA_TTABLE &&
        lua_getfield(L, -1, "__gc") == LUA_TFUNCTION &&
        lua_tocfunction(L, -1) != safe_handle_gc) {
      lua_pushcclosure(L, safe_handle_gc, 1);
      lua_setfield(L, -2, "__gc");
      lua_pop(L, 1);
      continue;
    }
    lua_pop(L, 2);
  }
}

/* }======== */

/* Moves an idle runtime from its own loop onto luv's. Returns 0, or -1 if
   the runtime is already in use. */
/* The runtime's own handles, to move them to luv's loop. */
typedef struct handle_set {
  uv_handle_t *h[16];
  int n, bad;
} handle_set;

static void collect(uv_handle_t *h, void *arg) {
  handle_set *set = (handle_set *)arg;
  if (set->n == 16 || uv_is_active(h) || uv_is_closing(h))
    set->bad = 1;
  else
    set->h[set->n++] = h;
}

/* Re-creates an inactive handle of the runtime on another loop. */
static int reinit(uv_loop_t *loop, uv_handle_t *h, int ref) {
  void *data = h->data;
  int rc;
  switch (h->type) {
    case UV_IDLE: rc = uv_idle_init(loop, (uv_idle_t *)h); break;
    case UV_TIMER: rc = uv_timer_init(loop, (uv_timer_t *)h); break;
    case UV_PREPARE: rc = uv_prepare_init(loop, (uv_prepare_t *)h); break;
    case UV_CHECK: rc = uv_check_init(loop, (uv_check_t *)h); break;
    default: return -1;
  }
  h->data = data;
  if (!ref)
    uv_unref(h);
  return rc;
}

/* Moves an idle runtime from its own loop onto luv's: its handles (none
   active at require time) are closed and made again there. Returns 0, or
   -1 if the runtime is already in use. A stopgap: see the header. */
static int adopt_loop(weft_runtime *rt, uv_loop_t *loop) {
  handle_set set;
  int refs[16], i;
  if (!rt->owns_loop || rt->nlive > 0 || !weft_queue_empty(&rt->ready) ||
      rt->deadlines.n > 0)
    return -1;
  set.n = set.bad = 0;
  uv_walk(&rt->own_loop, collect, &set);
  for (i = 0; i < set.n && !set.bad; i++)
    if (set.h[i]->type != UV_IDLE && set.h[i]->type != UV_TIMER &&
        set.h[i]->type != UV_PREPARE && set.h[i]->type != UV_CHECK)
      set.bad = 1;
  if (set.bad)
    return -1;
  for (i = 0; i < set.n; i++) {
    refs[i] = uv_has_ref(set.h[i]);
    uv_close(set.h[i], NULL);
  }
  uv_run(&rt->own_loop, UV_RUN_NOWAIT);
  if (uv_loop_close(&rt->own_loop) != 0)
    return -1;
  for (i = 0; i < set.n; i++)
    reinit(loop, set.h[i], refs[i]);
  rt->loop = loop;
  rt->owns_loop = 0;
  rt->timer_armed_for = -1;
  return 0;
}

/* Pushes the luv module table, opening luv on rt's loop if needed. */
static void open_luv(lua_State *L, weft_runtime *rt) {
  if (has_luv_context(L) && luv_loop(L) != NULL) {
    if (luv_loop(L) != rt->loop && adopt_loop(rt, luv_loop(L)) != 0)
      luaL_error(L, "weft: luv runs on another loop and weft is already in use");
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (lua_getfield(L, -1, "luv") != LUA_TTABLE) {
      lua_pop(L, 1);
      luaL_requiref(L, "luv", luaopen_luv, 0);
    }
    lua_remove(L, -2);
  } else {
    luv_set_loop(L, rt->loop);
    luaL_requiref(L, "luv", luaopen_luv, 0);
  }
  luv_set_callback(L, uv_pcall);
  luv_context(L)->extra = rt;
}

/* Called when weft's I/O state is finalised: luv callbacks that still run
   (while the loop closes) report on stderr. */
void weft__uv_close_all(lua_State *L) {
  if (has_luv_context(L))
    luv_context(L)->extra = NULL;
}

/* package.preload.luv: luv opened on weft's loop (upvalue 1, the runtime),
   by `require "luv"` or the first use of weft.uv (io.c). It may run in a
   task: luv's callbacks run on the main thread, not on that coroutine. */
static int luv_loader(lua_State *L) {
  weft_runtime *rt = (weft_runtime *)lua_touserdata(L, lua_upvalueindex(1));
  /* once only: package.loaded.luv may be gone (busted's insulate restores
     package.loaded) while weft.uv keeps the table */
  if (lua_getfield(L, LUA_REGISTRYINDEX, "weft.luv") == LUA_TTABLE)
    return 1;
  lua_pop(L, 1);
  open_luv(L, rt);
  patch_handle_gc(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  luv_context(L)->L = lua_tothread(L, -1);
  lua_pop(L, 1);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, "weft.luv");
  return 1;
}

/* luv is opened on first use (its 300 functions were a tenth of a no-op
   `weft run`, issue 13), except when it is already open in this state:
   then its loop is adopted now, while the runtime is still idle. */
int weft__open_uv(lua_State *L, weft_runtime *rt) {
  if (has_luv_context(L) && luv_loop(L) != NULL) {
    open_luv(L, rt);
    patch_handle_gc(L);
    lua_setfield(L, -2, "uv");
    return 0;
  }
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushlightuserdata(L, rt);
  lua_pushcclosure(L, luv_loader, 1);
  lua_setfield(L, -2, "luv");
  lua_pop(L, 1);
  return 0;
}
