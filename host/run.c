/*
** run.c: the runtime as Lua sees it: weft.run and weft.run_virtual, the
** drive loop (weft__drive, weft__drive_all) with deadlock detection, the
** Deadlock error (weft__push_deadlock), the report of errors nobody
** observed (weft__report_unobserved), and weft.now, weft._hrtime and
** weft._stats. It sits above the scheduler: it spawns, suspends and names
** tasks (sched.c, task.c) and moves runtime.c's clock; none of them calls
** it (docs/internals.md "Who calls whom").
** User docs: docs/reference.md "Running and tasks" (run, now) and
** "Deadlock"; weft.run_virtual in docs/debugging.md.
*/
#include <stdlib.h>

#include "internal.h"

/* {======== reports */

/* Pushes " (spawned at x.lua:3)" for the task at idx in debug mode, else "". */
static void push_spawn_site(lua_State *L, int idx) {
  if (weft__task_getuv(L, idx, WEFT_TASK_MORE_CREATED) == LUA_TSTRING) {
    lua_pushfstring(L, " (spawned at %s)", lua_tostring(L, -1));
    lua_remove(L, -2);
  } else {
    lua_pop(L, 1);
    lua_pushliteral(L, "");
  }
}

static int by_task_id(const void *a, const void *b) {
  const weft_task *x = *(weft_task *const *)a, *y = *(weft_task *const *)b;
  return (x->id > y->id) - (x->id < y->id);
}

/* Reports, oldest first, every failed task whose error nobody took, and
   forgets them. Returns how many. */
int weft__report_unobserved(lua_State *L, weft_runtime *rt) {
  weft_task **list = NULL;
  int n = 0, cap = 0, i;
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->unobserved_ref);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pop(L, 1);
    if (n == cap) {
      weft_task **grown;
      cap = cap ? cap * 2 : 8;
      grown = (weft_task **)realloc(list, (size_t)cap * sizeof *list);
      if (grown == NULL)
        break;
      list = grown;
    }
    list[n++] = (weft_task *)lua_touserdata(L, -1);
  }
  if (n > 1)
    qsort(list, (size_t)n, sizeof *list, by_task_id);
  for (i = 0; i < n; i++) {
    int task;
    lua_rawgetp(L, -1, list[i]);
    task = lua_gettop(L);
    lua_pushnil(L);
    lua_rawsetp(L, -3, list[i]);          /* forget it */
    list[i]->done.observed = 1;
    lua_pushliteral(L, "weft: error in task ");
    weft__push_task_name(L, task);
    push_spawn_site(L, task);
    lua_pushliteral(L, " that nobody awaited: ");
    lua_getiuservalue(L, task, WEFT_TASK_UV_RESULTS);
    luaL_tolstring(L, -1, NULL);
    lua_remove(L, -2);
    lua_pushliteral(L, "\n");
    if (weft__task_getuv(L, task, WEFT_TASK_MORE_TRACEBACK) != LUA_TSTRING) {
      lua_pop(L, 1);
      lua_pushliteral(L, "");
    } else {
      lua_pushliteral(L, "\n");
      lua_concat(L, 2);
    }
    lua_concat(L, 7);
    weft__report(rt, lua_tostring(L, -1));
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  free(list);
  rt->nreported += n;
  return n;
}

/* }======== */

/* {======== deadlock */

/* Pushes a Deadlock error naming every waiting task and what it waits on. */
void weft__push_deadlock(lua_State *L, weft_runtime *rt) {
  weft_queue *q;
  int n = 0, i;
  lua_newtable(L);                                 /* waiting */
  for (q = rt->live.next; q != &rt->live; q = q->next) {
    weft_task *t = weft_queue_data(q, weft_task, live_node);
    if (t->state != WEFT_T_SUSPENDED)
      continue;
    lua_createtable(L, 0, 2);
    weft__push_task(L, t);
    lua_setfield(L, -2, "task");
    weft__describe_wait(L, t);
    lua_setfield(L, -2, "on");
    lua_rawseti(L, -2, ++n);
  }
  /* the message, built from the records so both say the same */
  lua_pushliteral(L, "no task can make progress");
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, -2, i);
    lua_pushliteral(L, "\n  task ");
    lua_getfield(L, -2, "task");
    weft__push_task_name(L, -1);
    push_spawn_site(L, -2);
    lua_remove(L, -3);
    lua_pushliteral(L, " waits on ");
    lua_getfield(L, -5, "on");
    lua_remove(L, -6);                             /* the record */
    lua_concat(L, 6);
  }
  weft__error_new(L, "Deadlock", "%s", lua_tostring(L, -1));
  lua_remove(L, -2);
  lua_insert(L, -2);
  lua_setfield(L, -2, "waiting");                  /* error */
}

/* }======== */

/* {======== driving the loop */

/* Runs the loop until task t has finished. When nothing can ever wake the
   waiting tasks, a Deadlock is delivered to t at its await point. */
int weft__drive(lua_State *L, weft_runtime *rt, weft_task *t) {
  rt->driving++;
  while (t->state != WEFT_T_FINISHED) {
    if (weft__virtual_jump(rt))
      continue;
    if (!weft__loop_alive(rt)) {
      weft_task *target = t;
      /* a script runs the same nested (the CLI) or not: the innermost
         weft.run gets the Deadlock */
      while (target->run_child != NULL && target->run_child->state != WEFT_T_FINISHED)
        target = target->run_child;
      if (target->state == WEFT_T_SUSPENDED) {
        weft__push_deadlock(L, rt);
        weft__task_interrupt(L, target);
      }
      continue;
    }
    uv_run(rt->loop, UV_RUN_ONCE);
  }
  rt->driving--;
  return 0;
}

/* Runs until no task is left and nothing keeps the loop alive. Returns 0,
   or 1 with a Deadlock error pushed when tasks wait with nothing to wake them. */
int weft__drive_all(lua_State *L, weft_runtime *rt) {
  rt->driving++;
  for (;;) {
    if (rt->stop_driving) {   /* open servers and watchers no longer count */
      rt->stop_driving = 0;
      break;
    }
    if (weft__virtual_jump(rt))
      continue;
    if (!weft__loop_alive(rt)) {
      if (rt->nlive == 0)
        break;
      rt->driving--;
      weft__push_deadlock(L, rt);
      return 1;
    }
    uv_run(rt->loop, UV_RUN_ONCE);
  }
  rt->driving--;
  return 0;
}

static void check_can_drive(lua_State *L, weft_runtime *rt, const char *what) {
  if (!rt->may_drive)
    luaL_error(L, "%s: the application runs this loop; spawn tasks instead", what);
  if (rt->driving && rt->current == NULL)
    luaL_error(L, "%s: the loop is already running (called from a luv callback?)", what);
}

/* Stack of a nested run: 1 the inner task, 2 the caller's error to raise
   once the inner task has finished. */
enum { RUN_WAIT = 0, RUN_DRAIN = 1 };

/* weft.run(fn, ...): outside a task, spawn and drive; inside, spawn and await. */
static int finish_run(lua_State *L, int status, lua_KContext ctx);

static int rt_run(lua_State *L) {
  weft_runtime *rt = WEFT_UPRT(L);
  weft_task *t;
  luaL_checkany(L, 1);
  check_can_drive(L, rt, "weft.run");
  if (rt->current != NULL) {
    weft_task *self = weft__current(L, rt, "weft.run");
    t = weft__spawn(L, rt, lua_gettop(L) - 1);
    weft_queue_insert_tail(&t->done.waiters, &self->wait.node);
    self->run_child = t;
    return weft__suspend(L, self, "task", 1, RUN_WAIT, finish_run);
  }
  t = weft__spawn(L, rt, lua_gettop(L) - 1);
  weft__drive(L, rt, t);
  weft__mark_observed(L, t);
  if (rt->driving == 0)
    weft__report_unobserved(L, rt);
  return weft__push_results(L, lua_gettop(L));
}

static int finish_run(lua_State *L, int status, lua_KContext ctx) {
  weft_task *self = WEFT_UPRT(L)->current;
  weft_task *inner = weft__checktask(L, 1);
  (void)status;
  if (ctx == RUN_DRAIN) {
    self->run_child = NULL;
    weft__check_pending(L, self);   /* interrupted again: stop waiting */
    lua_pushvalue(L, 2);
    return lua_error(L);
  }
  if (!self->deliver) {
    self->run_child = NULL;
    return weft__push_results(L, 1);
  }
  /* the caller is interrupted: no orphan, the inner task is cancelled and
     its cleanup waited for (a Deadlock meanwhile still goes to it) */
  lua_settop(L, 1);
  weft__take_pending(L, self);
  weft__task_cancel(L, inner, 0);
  if (inner->state == WEFT_T_FINISHED) {
    self->run_child = NULL;
    return lua_error(L);
  }
  weft_queue_insert_tail(&inner->done.waiters, &self->wait.node);
  return weft__suspend(L, self, "task", 1, RUN_DRAIN, finish_run);
}

static int finish_run_virtual(lua_State *L, int status, lua_KContext ctx) {
  weft_runtime *rt = WEFT_UPRT(L);
  weft__deadlines_to_real(rt);
  return finish_run(L, status, ctx);
}

/* weft.run_virtual(fn, ...). Inside a task it raises, except at the top
   level of the CLI's script (the main task with nothing else alive), so a
   script runs the same under lua5.4 and under weft, and in a REPL entry. */
static int rt_run_virtual(lua_State *L) {
  weft_runtime *rt = WEFT_UPRT(L);
  weft_task *t;
  luaL_checkany(L, 1);
  if (rt->current != NULL) {
    weft_task *self = rt->current;
    if (self != rt->main_task || (rt->nlive != 1 && !rt->at_prompt) || rt->virtual_time)
      return luaL_error(L, "weft.run_virtual: cannot be nested in a task");
    weft__current(L, rt, "weft.run_virtual");
    weft__deadlines_to_virtual(rt);
    t = weft__spawn(L, rt, lua_gettop(L) - 1);
    weft_queue_insert_tail(&t->done.waiters, &self->wait.node);
    self->run_child = t;
    return weft__suspend(L, self, "task", 1, RUN_WAIT, finish_run_virtual);
  }
  check_can_drive(L, rt, "weft.run_virtual");
  weft__deadlines_to_virtual(rt);
  t = weft__spawn(L, rt, lua_gettop(L) - 1);
  weft__drive(L, rt, t);
  weft__deadlines_to_real(rt);
  weft__mark_observed(L, t);
  if (rt->driving == 0)
    weft__report_unobserved(L, rt);
  return weft__push_results(L, lua_gettop(L));
}

/* }======== */

/* {======== now, _hrtime */

static int rt_now(lua_State *L) {
  lua_pushnumber(L, weft__now(WEFT_UPRT(L)));
  return 1;
}

/* weft._hrtime(): the real monotonic clock, seconds (traces use it). */
static int rt_hrtime(lua_State *L) {
  lua_pushnumber(L, (double)uv_hrtime() * 1e-9);
  return 1;
}

/* }======== */

/* {======== weft._stats: what the spec helper checks after each spec */

typedef struct handle_count {
  weft_runtime *rt;
  int n;
} handle_count;

static void count_handle(uv_handle_t *h, void *arg) {
  handle_count *c = (handle_count *)arg;
  if (h == (uv_handle_t *)&c->rt->idle || h == (uv_handle_t *)&c->rt->timer)
    return;   /* (prepare and check are unreferenced) */
  if (uv_is_active(h) && uv_has_ref(h) && !uv_is_closing(h))
    c->n++;
}

static int rt_stats(lua_State *L) {
  weft_runtime *rt = WEFT_UPRT(L);
  handle_count c;
  c.rt = rt;
  c.n = 0;
  uv_walk(rt->loop, count_handle, &c);
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, rt->nlive);
  lua_setfield(L, -2, "tasks");
  lua_pushinteger(L, (lua_Integer)rt->deadlines.n);
  lua_setfield(L, -2, "deadlines");
  lua_pushinteger(L, c.n);
  lua_setfield(L, -2, "handles");
  lua_pushboolean(L, rt->timer_armed_for >= 0);
  lua_setfield(L, -2, "timer");
  lua_pushinteger(L, rt->nreported);   /* errors reported that nobody observed */
  lua_setfield(L, -2, "reported");
  return 1;
}

/* }======== */

static const luaL_Reg runtime_funcs[] = {
  {"_stats", rt_stats},
  {"run", rt_run},
  {"run_virtual", rt_run_virtual},
  {"now", rt_now},
  {"_hrtime", rt_hrtime},
  {NULL, NULL}
};

int weft__open_runtime(lua_State *L, weft_runtime *rt) {
  lua_pushlightuserdata(L, rt);
  luaL_setfuncs(L, runtime_funcs, 1);
  return 0;
}
