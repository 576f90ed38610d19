/*
** sched.c: the scheduler, the one home of a task's life after spawn: the
** ready queue and the turn that resumes ready tasks (weft__runtime_turn),
** spawn and finish as the scheduler sees them (weft__spawn: a new task made
** ready; finish: outcome stored, waiters woken, instruments told), the step
** with the only lua_resume of a task (weft__step), the ways a task
** gives control back (weft__suspend to wait for a wake source,
** weft__requeue to run again next turn; both end in the one yield, and a
** plain coroutine.yield() at task level is requeued the same way), the
** wake-up (weft__task_wake), and errors delivered at an await point
** (weft__task_interrupt, weft__task_cancel, weft__raise_pending); and the
** Lua functions that only give control back: weft.sleep, weft.yield.
**
** A task's object and memory belong to task.c, completions and waiter
** lists to future.c, deadlines and the clock to runtime.c: this file calls
** them and instrument.c's hooks, and none of them calls it back (the Lua
** faces above it do: task_lua.c, future_lua.c, run.c). docs/internals.md
** walks a task through these functions from spawn to finish.
*/
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* {======== the ready queue and the turn */

static void idle_cb(uv_idle_t *h) {
  weft__runtime_turn((weft_runtime *)h->data);
}

void weft__ready(weft_runtime *rt, weft_task *t) {
  if (t->state != WEFT_T_NEW)
    t->state = WEFT_T_READY;
  if (weft_queue_empty(&rt->ready) && !rt->closing)
    uv_idle_start(&rt->idle, idle_cb);
  weft_queue_insert_tail(&rt->ready, &t->ready_node);
}

/* Back of the ready queue as woken: weft.yield, and a plain coroutine.yield()
   at task level. */
static void requeue(weft_task *t) {
  t->wake_reason = WEFT_WOKEN;
  t->on = NULL;
  weft__ready(t->rt, t);
}

/* Resumes the tasks that were ready when the turn began; tasks they wake
   wait for the next turn, so a task that yields lets every other one run. */
void weft__runtime_turn(weft_runtime *rt) {
  weft_queue batch;
  weft_queue_init(&batch);
  weft_queue_move(&rt->ready, &batch);
  rt->turns++;
  rt->turn_clock = weft__now(rt);
  while (!weft_queue_empty(&batch)) {
    weft_queue *q = weft_queue_head(&batch);
    weft_queue_remove(q);
    weft__step(rt, weft_queue_data(q, weft_task, ready_node));
  }
  if (weft_queue_empty(&rt->ready))
    uv_idle_stop(&rt->idle);
}

/* }======== */

/* {======== spawn and finish: the scheduler's ends of a task's life */

static void task_waiter_wake(weft_waiter *w, int reason) {
  weft__task_wake(weft_queue_data(w, weft_task, wait), reason);
}

/* A new task (task.c made it) becomes the scheduler's: woken through its
   waiter, ready, and announced to the instruments. */
static void spawned(lua_State *L, weft_runtime *rt, weft_task *t) {
  t->wait.wake = task_waiter_wake;
  weft__ready(rt, t);
#ifndef WEFT_NO_INSTRUMENT
  if (weft_unlikely(rt->instruments))
    weft__hook_spawned(L, rt, t);
#endif
}

/* Spawns fn(args...) from the top nargs + 1 slots of L, replacing them with
   the new task. It starts on a later turn. */
weft_task *weft__spawn(lua_State *L, weft_runtime *rt, int nargs) {
  weft_task *t = weft__task_new(L, rt, nargs);
  spawned(L, rt, t);
  return t;
}

/* Light tasks: see internal.h. */
void weft__spawn_light(lua_State *L, weft_runtime *rt, weft_task *t, int nargs,
                       int anchor_ref) {
  weft__task_new_light(L, rt, t, nargs, anchor_ref);
  spawned(L, rt, t);
}

/* Stores t's outcome, wakes its waiters, tells the instruments, and lets
   go of it. A light task that returned is gone once its waiters ran. */
static void finish(weft_runtime *rt, weft_task *t, int status, int nres) {
  if (!weft__task_finish(rt, t, status, nres))
    return;
#ifndef WEFT_NO_INSTRUMENT
  if (weft_unlikely(rt->instruments))
    weft__hook_finished(rt, t);
#endif
  weft__task_release(rt, t);
}

/* }======== */

/* {======== the step: the only lua_resume of a task */

/* Debug mode: where the task is about to resume ("file:line"), pushed on
   the main thread. */
static void push_resume_site(weft_runtime *rt, weft_task *t) {
  lua_Debug ar;
  int level;
  if (t->state == WEFT_T_NEW) {
    lua_pushvalue(t->co, 1);
    lua_getinfo(t->co, ">S", &ar);
    lua_pushfstring(rt->L, "%s:%d", ar.short_src, ar.linedefined);
    return;
  }
  for (level = 0; lua_getstack(t->co, level, &ar); level++) {
    lua_getinfo(t->co, "Sl", &ar);
    if (ar.currentline > 0) {
      lua_pushfstring(rt->L, "%s:%d", ar.short_src, ar.currentline);
      return;
    }
  }
  lua_pushliteral(rt->L, "?");
}

static void warn_slow_step(weft_runtime *rt, weft_task *t, double seconds, int site) {
  lua_State *L = rt->L;
  lua_pushliteral(L, "weft: slow step: task ");
  weft__push_task(L, t);
  weft__push_task_name(L, -1);
  lua_remove(L, -2);
  {
    char ran[48];
    snprintf(ran, sizeof ran, "%.3f", seconds);
    lua_pushfstring(L, " ran %s s without awaiting (resumed at %s)\n", ran,
                    lua_tostring(L, site));
  }
  lua_concat(L, 3);
  weft__report(rt, lua_tostring(L, -1));
  lua_pop(L, 1);
}

#define WEFT_SLOW_STEP 0.1

void weft__step(weft_runtime *rt, weft_task *t) {
  lua_State *co = t->co;
  int nargs = 0, nres = 0, status, site = 0;
  uint64_t started = 0;
  if (t->state == WEFT_T_NEW) {
    nargs = lua_gettop(co) - 1;
    if (t->deliver) {   /* cancelled before it started: run none of it */
      lua_settop(co, 0);
      weft__push_task(co, t);
      weft__task_getuv(co, -1, WEFT_TASK_MORE_PENDING);
      lua_remove(co, -2);
      t->deliver = 0;
      finish(rt, t, LUA_ERRRUN, 0);
      return;
    }
  }
  if (weft_unlikely(rt->debug || rt->instruments)) {
    if (rt->debug) {
      push_resume_site(rt, t);
      site = lua_gettop(rt->L);
    }
    started = uv_hrtime();
  }
  t->state = WEFT_T_RUNNING;
  rt->current = t;
  rt->chain_yieldable = 1;
  if (weft_unlikely(rt->envelope_on))
    weft__envelope_on_resume(rt, t);
  status = lua_resume(co, NULL, nargs, &nres);
  rt->current = NULL;
  if (weft_unlikely(rt->envelope_on))
    status = weft__envelope_after_resume(rt, t, status);
  if (status == LUA_YIELD) {
    if (t->state == WEFT_T_RUNNING) {
      requeue(t);   /* a plain coroutine.yield() at task level: let the others run */
    }
    lua_pop(co, nres);
  }
  if (weft_unlikely(started != 0)) {
    uint64_t ended = uv_hrtime();
    if (site != 0) {
      double seconds = (double)(ended - started) * 1e-9;
      if (seconds > WEFT_SLOW_STEP)
        warn_slow_step(rt, t, seconds, site);
      lua_remove(rt->L, site);
    }
#ifndef WEFT_NO_INSTRUMENT
    if (rt->instruments)
      weft__hook_step(rt, t, started, ended);
#endif
  }
  if (status != LUA_YIELD)
    finish(rt, t, status, nres);
}

/* }======== */

/* {======== giving control back: suspend, requeue (one yield) */

/* Returns the running task, or raises when there is none or when the caller
   cannot yield to the scheduler. A pending cancellation is raised here, so
   every awaiting call is a cancellation point even when it would not wait. */
weft_task *weft__current(lua_State *L, weft_runtime *rt, const char *what) {
  weft_task *t = rt->current;
  if (weft_unlikely(t == NULL))
    luaL_error(L, "%s: not inside a task (start one with weft.run or weft.spawn)", what);
  if (weft_unlikely(!lua_isyieldable(L) || (L != t->co && !rt->chain_yieldable)))
    luaL_error(L, "%s: cannot await here: Lua cannot yield across this C call "
               "(a table.sort comparator, a metamethod called from C, a __close "
               "run by a dying task...)", what);
  if (weft_unlikely(t->deliver))
    weft__raise_pending(L, t);
  return t;
}

/* The one yield to the scheduler. The token tells coro.c's coroutine
   wrappers that this yield is weft's, to be passed through to weft__step. */
static int yield_to_scheduler(lua_State *L, lua_KContext ctx, lua_KFunction k) {
  lua_pushlightuserdata(L, &weft__suspend_token);
  return lua_yieldk(L, 1, ctx, k);
}

int weft__suspend(lua_State *L, weft_task *t, const char *on, int on_idx,
                  lua_KContext ctx, lua_KFunction k) {
  t->state = WEFT_T_SUSPENDED;
  t->on = on;
  t->on_L = L;   /* the object stays on this frame's stack while it waits */
  t->on_idx = on_idx != 0 ? lua_absindex(L, on_idx) : 0;
  if (weft_unlikely(t->deliver))   /* asked for while it ran: never lost */
    weft__task_wake(t, WEFT_INTERRUPTED);
  return yield_to_scheduler(L, ctx, k);
}

int weft__requeue(lua_State *L, weft_task *t, lua_KContext ctx, lua_KFunction k) {
  requeue(t);
  return yield_to_scheduler(L, ctx, k);
}

/* }======== */

/* {======== waking, and errors delivered at an await point */

void weft__task_wake(weft_task *t, int reason) {
  if (t->state != WEFT_T_SUSPENDED)
    return;
  if (weft_queue_linked(&t->wait.node))
    weft_queue_remove(&t->wait.node);
  weft__deadline_disarm(t->rt, &t->deadline);
  t->wake_reason = (unsigned char)reason;
  weft__ready(t->rt, t);
}

/* Delivers the error on top of L to t at its await point (popping it).
   If one is already pending, the first one wins. */
void weft__task_interrupt(lua_State *L, weft_task *t) {
  if (t->state == WEFT_T_FINISHED || t->deliver) {
    lua_pop(L, 1);
    return;
  }
  weft__push_task(L, t);
  lua_insert(L, -2);
  weft__task_setuv(L, -2, WEFT_TASK_MORE_PENDING);
  lua_pop(L, 1);
  t->deliver = 1;
  weft__task_wake(t, WEFT_INTERRUPTED);
}

/* Pushes t's pending error and clears it: the caller raises it, now or
   once its cleanup is done. */
void weft__take_pending(lua_State *L, weft_task *t) {
  t->deliver = 0;
  weft__push_task(L, t);
  weft__task_getuv(L, -1, WEFT_TASK_MORE_PENDING);
  lua_pushnil(L);
  weft__task_setuv(L, -3, WEFT_TASK_MORE_PENDING);
  lua_remove(L, -2);
}

/* Moves t's pending error, if it has one, to stack slot 'slot' unless the
   slot already holds an earlier one (the first interruption is raised). */
void weft__keep_pending(lua_State *L, weft_task *t, int slot) {
  if (!t->deliver)
    return;
  weft__take_pending(L, t);
  if (lua_isnil(L, slot))
    lua_replace(L, slot);
  else
    lua_pop(L, 1);
}

int weft__raise_pending(lua_State *L, weft_task *t) {
  weft__take_pending(L, t);
  return lua_error(L);
}

/* Is t's pending error a weft error of this kind (a Deadlock, say)? */
int weft__pending_is(lua_State *L, weft_task *t, const char *kind) {
  int is;
  if (!t->deliver)
    return 0;
  weft__push_task(L, t);
  weft__task_getuv(L, -1, WEFT_TASK_MORE_PENDING);
  is = weft__error_is(L, -1, kind);
  lua_pop(L, 2);
  return is;
}

void weft__cancel_from_hook(lua_State *L, weft_runtime *rt) {
  weft_task *t = rt->current;
  lua_sethook(L, NULL, 0, 0);
  if (t != NULL && L == t->co) {
    t->hook_raised = 1;
    weft__task_cancel(L, t, 0);
    weft__raise_pending(L, t);
  }
}

void weft__check_pending(lua_State *L, weft_task *t) {
  if (t->deliver)
    weft__raise_pending(L, t);
}

/* Requests cancellation; the reason (if reason_idx != 0) becomes the
   message. Returns 0 when t had already finished. */
int weft__task_cancel(lua_State *L, weft_task *t, int reason_idx) {
  if (t->state == WEFT_T_FINISHED)
    return 0;
  t->cancel_requests++;
#ifndef WEFT_NO_INSTRUMENT
  if (weft_unlikely(t->rt->instruments))
    weft__hook_cancelled(L, t->rt, t);
#endif
  if (t->deliver)
    return 1;
  if (reason_idx != 0 && !lua_isnoneornil(L, reason_idx)) {
    weft__error_new(L, "Cancelled", "%s", luaL_tolstring(L, reason_idx, NULL));
    lua_remove(L, -2);
    lua_pushvalue(L, reason_idx);
    lua_setfield(L, -2, "reason");
  } else {
    weft__error_new(L, "Cancelled", "task was cancelled");
  }
  weft__task_interrupt(L, t);
  return 1;
}

void weft__uncancel(weft_task *t) {
  if (t->cancel_requests > 0)
    t->cancel_requests--;
}

/* }======== */

/* {======== weft.sleep, weft.yield */

static void sleep_fire(weft_deadline *d) {
  weft__task_wake(weft_queue_data(d, weft_task, deadline), WEFT_WOKEN);
}

/* ctx is the sleeping task (it is unfinished while it sleeps). */
static int finish_sleep(lua_State *L, int status, lua_KContext ctx) {
  weft_task *t = (weft_task *)ctx;
  (void)status;
  if (t->deliver)
    return weft__raise_pending(L, t);
  return 0;
}

static int sched_yield_lua(lua_State *L) {
  weft_runtime *rt = WEFT_UPRT(L);
  weft_task *t = weft__current(L, rt, "weft.yield");
  return weft__requeue(L, t, (lua_KContext)t, finish_sleep);
}

static int sched_sleep(lua_State *L) {
  weft_runtime *rt = WEFT_UPRT(L);
  double s = luaL_checknumber(L, 1);
  weft_task *t;
  luaL_argcheck(L, !isnan(s), 1, "not a number");
  if (s <= 0)
    return sched_yield_lua(L);
  t = weft__current(L, rt, "weft.sleep");
  t->deadline.fire = sleep_fire;
  weft__deadline_arm(rt, &t->deadline, weft__now(rt) + s);
  return weft__suspend(L, t, "sleep", 0, (lua_KContext)t, finish_sleep);
}

/* }======== */

static const luaL_Reg sched_funcs[] = {
  {"sleep", sched_sleep},
  {"yield", sched_yield_lua},   /* (sched_yield is POSIX's) */
  {NULL, NULL}
};

int weft__open_sched(lua_State *L, weft_runtime *rt) {
  lua_pushlightuserdata(L, rt);
  luaL_setfuncs(L, sched_funcs, 1);
  return 0;
}
