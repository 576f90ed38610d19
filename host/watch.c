/*
** watch.c: what an embedded runtime checks once per loop turn, when no
** weft.run drives the loop (the application's loop, weft_step): errors of
** failed tasks that nobody observed within one turn are reported, a
** deadlock among weft's tasks is reported, and a shutdown asked with
** weft_shutdown ends with its callback once every task has finished.
** One uv_check handle per runtime, unreferenced and started only for
** runtimes of the C API, calls weft__watch_turn.
**
** A failed task counts as unobserved at a turn's check when it was already
** unobserved at the previous check, or when no task is ready (nothing can
** come to take its error).
*/
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "weft.h"

typedef struct watch {
  uv_check_t check;
  int generation_ref;         /* light task -> true: unobserved at the last check */
  uint64_t deadlock_turn;     /* rt->turns when the deadlock was reported, +1 */
  int shutting_down;
  weft_shutdown_fn done;
  void *done_ud;
} watch;

static watch *watch_of(weft_runtime *rt) {
  return (watch *)rt->watch;
}

/* {======== unobserved errors */

/* Reports the unobserved failures that were already there last time (all
   of them when no task is ready), and remembers the rest. */
static void report_old_failures(lua_State *L, weft_runtime *rt, watch *w) {
  int all = weft_queue_empty(&rt->ready), unobserved, old, fresh, n = 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->unobserved_ref);
  unobserved = lua_gettop(L);
  lua_pushnil(L);
  if (!lua_next(L, unobserved)) {
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 2);
  lua_rawgeti(L, LUA_REGISTRYINDEX, w->generation_ref);
  old = lua_gettop(L);
  lua_newtable(L);                                   /* due now */
  lua_newtable(L);                                   /* next generation */
  fresh = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, unobserved)) {                /* t, task */
    int due = all;
    if (!due) {
      lua_pushvalue(L, -2);
      due = lua_rawget(L, old) != LUA_TNIL;
      lua_pop(L, 1);
    }
    lua_pushvalue(L, -2);
    if (due) {
      lua_pushvalue(L, -2);
      lua_rawset(L, fresh - 1);                      /* due[t] = task */
      n++;
    } else {
      lua_pushboolean(L, 1);
      lua_rawset(L, fresh);                          /* next[t] = true */
    }
    lua_pop(L, 1);
  }
  lua_pushvalue(L, fresh);
  lua_rawseti(L, LUA_REGISTRYINDEX, w->generation_ref);
  if (n > 0) {
    /* weft__report_unobserved reports a whole table: give it the due ones */
    int keep = rt->unobserved_ref;
    lua_pushnil(L);
    while (lua_next(L, fresh - 1)) {
      lua_pop(L, 1);
      lua_pushvalue(L, -1);
      lua_pushnil(L);
      lua_rawset(L, unobserved);
    }
    lua_pushvalue(L, fresh - 1);
    rt->unobserved_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    weft__report_unobserved(L, rt);
    luaL_unref(L, LUA_REGISTRYINDEX, rt->unobserved_ref);
    rt->unobserved_ref = keep;
  }
  lua_settop(L, unobserved - 1);
}

/* }======== */

/* {======== deadlock on the application's loop */

/* Waits that only another weft task can end. */
static int weft_only_wait(const char *on) {
  static const char *const kinds[] = {
    "event", "lock", "semaphore", "condition", "queue", "task", "group", "gather",
    "wait", "run_graph", NULL
  };
  int i;
  for (i = 0; on != NULL && kinds[i] != NULL; i++)
    if (strcmp(on, kinds[i]) == 0)
      return 1;
  return 0;
}

static int deadlocked(weft_runtime *rt) {
  weft_queue *q;
  if (rt->nlive == 0 || !weft_queue_empty(&rt->ready) || rt->deadlines.n > 0 ||
      rt->cfutures_pending > 0)
    return 0;
  if (rt->may_drive)
    return !uv_loop_alive(rt->loop);
  for (q = rt->live.next; q != &rt->live; q = q->next) {
    weft_task *t = weft_queue_data(q, weft_task, live_node);
    if (t->state != WEFT_T_SUSPENDED || !weft_only_wait(t->on))
      return 0;
  }
  return 1;
}

static void report_deadlock(lua_State *L, weft_runtime *rt, watch *w) {
  if (w->deadlock_turn == rt->turns + 1 || !deadlocked(rt))
    return;
  w->deadlock_turn = rt->turns + 1;   /* once, until some task runs again */
  weft__push_deadlock(L, rt);
  lua_pushfstring(L, "weft: %s\n", luaL_tolstring(L, -1, NULL));
  weft__report(rt, lua_tostring(L, -1));
  lua_pop(L, 3);
}

/* }======== */

/* {======== shutdown */

static void cancel_all(weft_runtime *rt, int only_new) {
  weft_queue *q;
  for (q = rt->live.next; q != &rt->live; q = q->next) {
    weft_task *t = weft_queue_data(q, weft_task, live_node);
    if (!only_new || (t->cancel_requests == 0 && !t->deliver))
      weft__task_cancel(rt->L, t, 0);
  }
}

static void finish_shutdown(weft_runtime *rt, watch *w) {
  if (rt->nlive > 0) {
    cancel_all(rt, 1);   /* spawned by cleanup code */
    return;
  }
  weft__report_unobserved(rt->L, rt);
  w->shutting_down = 2;
  if (w->done != NULL)
    w->done(rt, w->done_ud);
}

int weft_shutdown(weft_runtime *rt, weft_shutdown_fn done, void *ud) {
  watch *w = watch_of(rt);
  if (w == NULL || w->shutting_down)
    return -1;
  w->shutting_down = 1;
  w->done = done;
  w->done_ud = ud;
  cancel_all(rt, 0);
  if (rt->nlive == 0)
    finish_shutdown(rt, w);
  return 0;
}

int weft__watch_refuses_spawn(weft_runtime *rt) {
  watch *w = watch_of(rt);
  return w != NULL && w->shutting_down;
}

/* }======== */

void weft__watch_turn(weft_runtime *rt) {
  watch *w = watch_of(rt);
  lua_State *L = rt->L;
  if (w == NULL || rt->driving > 0 || rt->closing)
    return;
  report_old_failures(L, rt, w);
  report_deadlock(L, rt, w);
  if (w->shutting_down == 1)
    finish_shutdown(rt, w);
}

static void check_cb(uv_check_t *h) {
  weft__watch_turn((weft_runtime *)h->data);
}

void weft__watch_open(lua_State *L, weft_runtime *rt) {
  watch *w = (watch *)calloc(1, sizeof *w);
  if (w == NULL)
    return;   /* no reports between runs: the end of each weft.run still has them */
  lua_newtable(L);
  w->generation_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  uv_check_init(rt->loop, &w->check);
  w->check.data = rt;
  uv_unref((uv_handle_t *)&w->check);
  rt->watch = w;
  rt->nhandles_open++;
}

/* Runtimes of the C API watch every turn; the Lua module's are driven by
   weft.run, which reports at its end (and an inactive handle lets uvbind.c
   move the runtime onto luv's loop). */
void weft__watch_start(weft_runtime *rt) {
  watch *w = watch_of(rt);
  if (w != NULL)
    uv_check_start(&w->check, check_cb);
}

static void watch_closed(uv_handle_t *h) {
  weft_runtime *rt = (weft_runtime *)h->data;
  free(h);   /* the check is the struct's first member */
  weft__handle_closed(rt);
}

void weft__watch_close(weft_runtime *rt) {
  watch *w = watch_of(rt);
  if (w == NULL)
    return;
  rt->watch = NULL;
  uv_close((uv_handle_t *)&w->check, watch_closed);
}
