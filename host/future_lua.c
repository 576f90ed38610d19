/*
** future_lua.c: weft.future, a value some task or callback provides later.
** set/fail/cancel complete it once; await suspends until then. The waiter
** list and outcome are a weft_completion (future.c), as a task's. Also the
** C side's view of it (weft__future_push_c, weft__future_complete), which
** cfuture.c uses. It sits above the scheduler (await suspends through
** sched.c); nothing below calls it.
**
** Ownership: the "file:line" where it was created is user value 1 (wait
** descriptions read it there), its results (or error) user value 2.
** User docs: docs/reference.md "Primitives" (weft.future).
*/
#include <string.h>

#include "internal.h"

typedef struct weft_future {
  weft_runtime *rt;
  weft_completion done;
  weft_cfuture_hook *hook;   /* the C side of a future C resolves, or NULL */
} weft_future;

enum { FUTURE_UV_RESULT = 2, FUTURE_UV_WHERE = 1, FUTURE_NUV = 2 };

static weft_future *checkfuture(lua_State *L, int idx) {
  return (weft_future *)luaL_checkudata(L, idx, WEFT_FUTURE_MT);
}

static int future_new(lua_State *L) {
  weft_future *f = (weft_future *)lua_newuserdatauv(L, sizeof *f, FUTURE_NUV);
  f->rt = WEFT_UPRT(L);
  f->hook = NULL;
  weft__completion_init(&f->done);
  luaL_setmetatable(L, WEFT_FUTURE_MT);
  weft__where(L, 1);
  lua_setiuservalue(L, -2, FUTURE_UV_WHERE);
  return 1;
}

static weft_future *checkpending(lua_State *L, const char *what) {
  weft_future *f = checkfuture(L, 1);
  if (f->done.state != WEFT_PENDING)
    luaL_error(L, "future:%s: the future is already done", what);
  return f;
}

/* Tells the C side (if any) that the future will not be resolved by it. */
static void cancel_hook(weft_future *f) {
  weft_cfuture_hook *hook = f->hook;
  if (hook != NULL) {
    f->hook = NULL;
    hook->cancelled(hook);
  }
}

static void complete(lua_State *L, weft_future *f, int state, int nres) {
  /* stack: future, values... (nres of them) */
  if (nres == 1) {
    lua_pushvalue(L, 2);
  } else if (nres > 1) {
    int i;
    lua_createtable(L, nres, 0);
    for (i = 1; i <= nres; i++) {
      lua_pushvalue(L, 1 + i);
      lua_rawseti(L, -2, i);
    }
  } else {
    lua_pushnil(L);
  }
  lua_setiuservalue(L, 1, FUTURE_UV_RESULT);
  f->done.nresults = nres;
  f->done.state = (unsigned char)state;
  weft__completion_wake_all(&f->done);
}

static int future_set(lua_State *L) {
  weft_future *f = checkpending(L, "set");
  complete(L, f, WEFT_DONE, lua_gettop(L) - 1);
  return 0;
}

static int future_fail(lua_State *L) {
  weft_future *f = checkpending(L, "fail");
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  complete(L, f, WEFT_FAILED, 1);
  return 0;
}

static int future_cancel(lua_State *L) {
  weft_future *f = checkfuture(L, 1);
  if (f->done.state != WEFT_PENDING) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_settop(L, 2);
  if (lua_isnil(L, 2))
    weft__error_new(L, "Cancelled", "future was cancelled");
  else
    weft__error_new(L, "Cancelled", "%s", luaL_tolstring(L, 2, NULL));
  lua_replace(L, 2);
  lua_settop(L, 2);
  complete(L, f, WEFT_CANCELLED, 1);
  cancel_hook(f);
  lua_pushboolean(L, 1);
  return 1;
}

static int push_outcome(lua_State *L, weft_future *f) {
  int n = f->done.nresults;
  f->done.observed = 1;
  lua_getiuservalue(L, 1, FUTURE_UV_RESULT);
  if (f->done.state != WEFT_DONE)
    return lua_error(L);
  return weft__unpack_results(L, n);
}

static int finish_await(lua_State *L, int status, lua_KContext ctx) {
  weft_task *self = WEFT_UPRT(L)->current;
  weft_future *f = checkfuture(L, 1);
  (void)status;
  (void)ctx;
  if (self->deliver) {
    if (f->done.state == WEFT_PENDING)
      cancel_hook(f);     /* a C operation nobody waits for any more stops */
    return weft__raise_pending(L, self);
  }
  return push_outcome(L, f);
}

static int future_await(lua_State *L) {
  weft_runtime *rt = WEFT_UPRT(L);
  weft_future *f = checkfuture(L, 1);
  weft_task *self;
  if (f->done.state != WEFT_PENDING && rt->current == NULL)
    return push_outcome(L, f);
  self = weft__current(L, rt, "future:await");
  lua_settop(L, 1);
  if (f->done.state != WEFT_PENDING)
    return push_outcome(L, f);
  weft_queue_insert_tail(&f->done.waiters, &self->wait.node);
  return weft__suspend(L, self, "future", 1, 0, finish_await);
}

static int future_done(lua_State *L) {
  lua_pushboolean(L, checkfuture(L, 1)->done.state != WEFT_PENDING);
  return 1;
}

static int future_result(lua_State *L) {
  weft_future *f = checkfuture(L, 1);
  if (f->done.state == WEFT_PENDING)
    return luaL_error(L, "future:result: the future is not done yet");
  lua_settop(L, 1);
  return push_outcome(L, f);
}

static int future_tostring(lua_State *L) {
  weft_future *f = checkfuture(L, 1);
  static const char *const names[] = {"pending", "done", "failed", "cancelled"};
  lua_getiuservalue(L, 1, FUTURE_UV_WHERE);
  lua_pushfstring(L, "weft.future created at %s (%s)", lua_tostring(L, -1),
                  names[f->done.state]);
  return 1;
}

/* {======== for the C side (cfuture.c) */

/* Pushes a new pending future whose C side is 'hook'. */
void weft__future_push_c(lua_State *L, weft_runtime *rt, weft_cfuture_hook *hook) {
  lua_pushlightuserdata(L, rt);
  lua_pushcclosure(L, future_new, 1);
  lua_call(L, 0, 1);
  ((weft_future *)lua_touserdata(L, -1))->hook = hook;
}

/* Completes the future at fidx with the nres values on top of L (popped),
   as set (WEFT_DONE) or fail (WEFT_FAILED, one value). Returns -1 if it
   was no longer pending. */
int weft__future_complete(lua_State *L, int fidx, int state, int nres) {
  weft_future *f = checkfuture(L, fidx);
  if (f->done.state != WEFT_PENDING) {
    lua_pop(L, nres);
    return -1;
  }
  f->hook = NULL;
  fidx = lua_absindex(L, fidx);
  lua_pushcfunction(L, state == WEFT_DONE ? future_set : future_fail);
  lua_pushvalue(L, fidx);
  lua_rotate(L, -(nres + 2), 2);             /* set, future, values... */
  lua_call(L, nres + 1, 0);
  return 0;
}

/* }======== */

static const luaL_Reg future_methods[] = {
  {"set", future_set},
  {"fail", future_fail},
  {"cancel", future_cancel},
  {"await", future_await},
  {"done", future_done},
  {"result", future_result},
  {NULL, NULL}
};

static const luaL_Reg future_funcs[] = {
  {"future", future_new},
  {NULL, NULL}
};

int weft__open_future(lua_State *L, weft_runtime *rt) {
  weft__new_class(L, rt, WEFT_FUTURE_MT, future_methods, future_tostring);
  lua_pushlightuserdata(L, rt);
  luaL_setfuncs(L, future_funcs, 1);
  return 0;
}
