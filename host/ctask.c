/*
** ctask.c: tasks seen from C (weft.h "tasks from C"): borrowed and held
** task pointers, cancel, status, result with its traceback, and a done
** callback.
**
** Ownership: a weft_task pointer is the task's own memory, kept alive by
** its Lua value. Three registry tables find that value from the pointer:
** 'seen' (weak values) for pointers C got from weft_totask, 'held' for
** weft_task_hold (with the counts in 'holds'), and an unfinished task's
** own registry ref. A done callback is a userdata linked into the task's
** wait list like an awaiting task, anchored (with the task) until it ran.
*/
#include <string.h>

#include "internal.h"
#include "weft.h"

static char tables_key;
enum { SEEN = 1, HELD, HOLDS, CALLBACKS };

/* Pushes table 'which' of t's state, made on first use. */
static void push_table(lua_State *L, int which) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &tables_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 4, 0);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawseti(L, -2, SEEN);
    lua_newtable(L);
    lua_rawseti(L, -2, HELD);
    lua_newtable(L);
    lua_rawseti(L, -2, HOLDS);
    lua_newtable(L);
    lua_rawseti(L, -2, CALLBACKS);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &tables_key);
  }
  lua_rawgeti(L, -1, which);
  lua_remove(L, -2);
}

weft_runtime *weft_from_state(lua_State *L) {
  return weft__runtime_find(L);
}

weft_task *weft_totask(lua_State *L, int idx) {
  weft_task *t = weft__totask(L, idx);
  if (t != NULL) {
    idx = lua_absindex(L, idx);
    push_table(L, SEEN);
    lua_pushvalue(L, idx);
    lua_rawsetp(L, -2, t);
    lua_pop(L, 1);
  }
  return t;
}

/* Pushes t's Lua value, or nil when C lost it (finished and not held). */
void weft_task_push(lua_State *L, weft_task *t) {
  push_table(L, HELD);
  if (lua_rawgetp(L, -1, t) == LUA_TNIL) {
    lua_pop(L, 2);
    push_table(L, SEEN);
    if (lua_rawgetp(L, -1, t) == LUA_TNIL && t->state != WEFT_T_FINISHED) {
      lua_pop(L, 1);
      weft__push_task(L, t);
    }
  }
  lua_remove(L, -2);
}

weft_task *weft_task_hold(weft_task *t) {
  lua_State *L = t->rt->L;
  lua_Integer n;
  push_table(L, HOLDS);
  lua_rawgetp(L, -1, t);
  n = lua_tointeger(L, -1) + 1;
  lua_pop(L, 1);
  lua_pushinteger(L, n);
  lua_rawsetp(L, -2, t);
  lua_pop(L, 1);
  if (n == 1) {
    push_table(L, HELD);
    weft_task_push(L, t);
    lua_rawsetp(L, -2, t);
    lua_pop(L, 1);
  }
  return t;
}

void weft_task_drop(weft_task *t) {
  lua_State *L = t->rt->L;
  lua_Integer n;
  push_table(L, HOLDS);
  lua_rawgetp(L, -1, t);
  n = lua_tointeger(L, -1) - 1;
  lua_pop(L, 1);
  if (n > 0)
    lua_pushinteger(L, n);
  else
    lua_pushnil(L);
  lua_rawsetp(L, -2, t);
  lua_pop(L, 1);
  if (n <= 0) {
    push_table(L, HELD);
    lua_pushnil(L);
    lua_rawsetp(L, -2, t);
    lua_pop(L, 1);
  }
}

int weft_task_cancel(weft_task *t) {
  return weft__task_cancel(t->rt->L, t, 0);
}

int weft_task_status(weft_task *t) {
  if (t->state == WEFT_T_RUNNING)
    return WEFT_TASK_RUNNING;
  if (t->state != WEFT_T_FINISHED)
    return WEFT_TASK_PENDING;
  return t->done.state == WEFT_DONE ? WEFT_TASK_DONE
       : t->done.state == WEFT_FAILED ? WEFT_TASK_FAILED : WEFT_TASK_CANCELLED;
}

int weft_task_result(weft_task *t, lua_State *L, int *n) {
  int obj, i, count;
  *n = 0;
  if (t->state != WEFT_T_FINISHED)
    return -1;
  weft_task_push(L, t);
  obj = lua_gettop(L);
  weft__mark_observed(L, t);
  lua_getiuservalue(L, obj, WEFT_TASK_UV_RESULTS);
  if (t->done.state != WEFT_DONE) {
    weft__task_getuv(L, obj, WEFT_TASK_MORE_TRACEBACK);
    lua_remove(L, obj);
    *n = 2;
    return LUA_ERRRUN;
  }
  count = t->done.nresults;
  if (count > 1) {
    luaL_checkstack(L, count, "too many results");
    for (i = 1; i <= count; i++)
      lua_rawgeti(L, obj + 1, i);
    lua_remove(L, obj + 1);
  } else if (count == 0) {
    lua_pop(L, 1);
  }
  lua_remove(L, obj);
  *n = count;
  return LUA_OK;
}

/* {======== done callbacks */

typedef struct done_cb {
  weft_waiter waiter;         /* first: in the task's wait list */
  weft_task *t;
  weft_task_fn cb;
  void *ud;
} done_cb;

static void done_wake(weft_waiter *w, int reason) {
  done_cb *d = (done_cb *)w;
  lua_State *L = d->t->rt->L;
  (void)reason;
  d->cb(d->t, d->ud);
  push_table(L, CALLBACKS);
  lua_pushnil(L);
  lua_rawsetp(L, -2, d);      /* the record and the task may go now */
  lua_pop(L, 1);
}

int weft_task_on_done(weft_task *t, weft_task_fn cb, void *ud) {
  lua_State *L = t->rt->L;
  done_cb *d;
  if (t->state == WEFT_T_FINISHED) {
    cb(t, ud);
    return 0;
  }
  push_table(L, CALLBACKS);
  d = (done_cb *)lua_newuserdatauv(L, sizeof *d, 1);
  memset(d, 0, sizeof *d);
  d->t = t;
  d->cb = cb;
  d->ud = ud;
  d->waiter.wake = done_wake;
  weft__push_task(L, t);
  lua_setiuservalue(L, -2, 1);
  lua_rawsetp(L, -2, d);
  lua_pop(L, 1);
  weft_queue_insert_tail(&t->done.waiters, &d->waiter.node);
  return 0;
}

/* }======== */
