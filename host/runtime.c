/*
** runtime.c: one runtime per Lua state. It owns the deadline heap behind a
** single uv_timer, the clock (real or virtual), the drive loop of weft.run
** with deadlock detection, and the report of errors nobody observed. The
** ready queue and the turn are the scheduler's (sched.c).
**
** The runtime struct is malloc'd (libuv may still hold its handles after the
** Lua state is gone); a userdata box in the registry closes it from __gc.
** Every module function gets the runtime as light userdata upvalue 1.
** User docs: docs/reference.md "Running and tasks" (run, now)
** and "Deadlock"; weft.run_virtual in docs/debugging.md.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static char runtime_key;

/* {======== clock and deadlines */

double weft__now(weft_runtime *rt) {
  if (rt->virtual_time)
    return rt->vclock;
  return (double)uv_hrtime() * 1e-9;
}

/* Pushes "file:line" of the first Lua caller from level up, or "?" (spawn
   sites, where primitives were made). */
void weft__where(lua_State *L, int level) {
  lua_Debug ar;
  for (; lua_getstack(L, level, &ar); level++) {
    lua_getinfo(L, "Sl", &ar);
    if (ar.currentline > 0) {
      lua_pushfstring(L, "%s:%d", ar.short_src, ar.currentline);
      return;
    }
  }
  lua_pushliteral(L, "?");
}

static void timer_cb(uv_timer_t *h);

/* The longest delay given to libuv: far beyond any real wait (about 285
   years), and small enough that neither the cast to uint64_t nor libuv's
   own "now + timeout" can overflow. */
#define WEFT_TIMER_MAX_MS 9e12

/* Arms the uv timer for the earliest deadline. In virtual time the timer
   stays off: the drive loop jumps the clock instead. */
static void timer_rearm(weft_runtime *rt) {
  weft_deadline *d = weft_heap_min(&rt->deadlines);
  double delay;
  if (d == NULL || rt->virtual_time || rt->closing) {
    if (rt->timer_armed_for >= 0) {
      uv_timer_stop(&rt->timer);
      rt->timer_armed_for = -1;
    }
    return;
  }
  if (d->when == rt->timer_armed_for)
    return;
  uv_update_time(rt->loop);
  delay = ceil((d->when - weft__now(rt)) * 1000.0);
  if (delay < 0)
    delay = 0;
  else if (delay > WEFT_TIMER_MAX_MS)
    delay = WEFT_TIMER_MAX_MS;   /* fires early, finds nothing due, re-arms */
  uv_timer_start(&rt->timer, timer_cb, (uint64_t)delay, 0);
  rt->timer_armed_for = d->when;
}

/* Fires every deadline due at 'now', in deadline then FIFO order. */
static void fire_due(weft_runtime *rt, double now) {
  weft_deadline *d;
  while ((d = weft_heap_min(&rt->deadlines)) != NULL && d->when <= now) {
    weft_heap_remove(&rt->deadlines, d);
    d->fire(d);
  }
}

static void timer_cb(uv_timer_t *h) {
  weft_runtime *rt = (weft_runtime *)h->data;
  rt->timer_armed_for = -1;
  fire_due(rt, weft__now(rt));
  timer_rearm(rt);
}

void weft__deadline_arm(weft_runtime *rt, weft_deadline *d, double when) {
  if (weft_deadline_armed(d))
    weft_heap_remove(&rt->deadlines, d);
  d->when = when;
  if (isinf(when)) {   /* never fires: no timer, and nothing for the loop to wait for */
    if (rt->deadlines.n == 0)
      timer_rearm(rt);
    return;
  }
  if (weft_heap_insert(&rt->deadlines, d) != 0)
    return;  /* out of memory: the deadline never fires, as with a lost timer */
  if (weft_heap_min(&rt->deadlines) == d)
    timer_rearm(rt);
}

/* Leaves the timer armed unless the heap emptied: an early wake-up only
   re-arms, while a timer left running would hide a deadlock. */
void weft__deadline_disarm(weft_runtime *rt, weft_deadline *d) {
  if (!weft_deadline_armed(d))
    return;
  weft_heap_remove(&rt->deadlines, d);
  if (rt->deadlines.n == 0)
    timer_rearm(rt);
}

/* }======== */

/* {======== reports */

/* Pushes " (spawned at x.lua:3)" for the task at idx in debug mode, else "". */
static void push_spawn_site(lua_State *L, int idx) {
  if (lua_getiuservalue(L, idx, WEFT_TASK_UV_CREATED) == LUA_TSTRING) {
    lua_pushfstring(L, " (spawned at %s)", lua_tostring(L, -1));
    lua_remove(L, -2);
  } else {
    lua_pop(L, 1);
    lua_pushliteral(L, "");
  }
}

static void report_stderr(weft_runtime *rt, const char *msg, void *ud) {
  (void)ud;
  if (rt->host_report != NULL) {
    rt->host_report(msg, rt->report_ud);
    return;
  }
  fputs(msg, stderr);
  fflush(stderr);
}

void weft__report(weft_runtime *rt, const char *msg) {
  rt->report(rt, msg, rt->report_ud);
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
    if (lua_getiuservalue(L, task, WEFT_TASK_UV_TRACEBACK) != LUA_TSTRING) {
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

/* Is there work that keeps the loop alive? Under virtual time an idle
   listening server is not: it waits for a peer that no virtual deadline
   brings, so the clock jumps past it, and a run left with nothing else is
   a Deadlock (docs/reference.md, run_virtual). */
static int loop_alive(weft_runtime *rt) {
  uv_loop_t *loop = rt->loop;
  if (!rt->virtual_time || rt->nlisteners == 0)
    return uv_loop_alive(loop);
  return loop->active_reqs.count > 0 || loop->closing_handles != NULL ||
         loop->active_handles > (unsigned)rt->nlisteners;
}

/* A virtual run has a clock of its own: the deadlines from before it (the
   tasks at the REPL's prompt) wait parked this far ahead, in order. */
#define WEFT_PARKED 1e10

/* (a virtual deadline may be as far: parked ones are within uptime of it) */
static int parked(double when) {
  return when >= WEFT_PARKED && when < 2 * WEFT_PARKED;
}

/* In virtual time, when nothing is ready and no real work is pending, the
   clock jumps to the next deadline. Returns 1 if it jumped. */
static int virtual_jump(weft_runtime *rt) {
  weft_deadline *d = weft_heap_min(&rt->deadlines);
  if (!rt->virtual_time || d == NULL || !weft_queue_empty(&rt->ready))
    return 0;
  if (loop_alive(rt))
    return 0;
  if (parked(d->when)) {
    /* the run waits for a deadline from before it: the clock moves by what
       that one had left, to the millisecond (libuv's timer resolution), so
       it moves in steps timers define, not by the microseconds that passed */
    double left = ceil((d->when - WEFT_PARKED - (double)uv_hrtime() * 1e-9) * 1000.0) / 1000.0;
    rt->vclock += left > 0 ? left : 0;
    weft_heap_remove(&rt->deadlines, d);
    d->fire(d);
    return 1;
  }
  if (d->when > rt->vclock)
    rt->vclock = d->when;
  fire_due(rt, rt->vclock);
  return 1;
}

/* Runs the loop until task t has finished. When nothing can ever wake the
   waiting tasks, a Deadlock is delivered to t at its await point. */
int weft__drive(lua_State *L, weft_runtime *rt, weft_task *t) {
  rt->driving++;
  while (t->state != WEFT_T_FINISHED) {
    if (virtual_jump(rt))
      continue;
    if (!loop_alive(rt)) {
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
    if (virtual_jump(rt))
      continue;
    if (!loop_alive(rt)) {
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
  weft__push_task(L, self);
  lua_getiuservalue(L, -1, WEFT_TASK_UV_PENDING);
  lua_pushnil(L);
  lua_setiuservalue(L, -3, WEFT_TASK_UV_PENDING);
  lua_remove(L, 2);
  self->deliver = 0;
  weft__task_cancel(L, inner, 0);
  if (inner->state == WEFT_T_FINISHED) {
    self->run_child = NULL;
    return lua_error(L);
  }
  weft_queue_insert_tail(&inner->done.waiters, &self->wait.node);
  return weft__suspend(L, self, "task", 1, RUN_DRAIN, finish_run);
}

/* Moves the deadlines of the virtual run to real time, keeping what was
   left, and the parked ones back where they were. */
static void deadlines_to_real(weft_runtime *rt) {
  double delta = (double)uv_hrtime() * 1e-9 - rt->vclock;
  weft_heap *h = &rt->deadlines;
  size_t i;
  for (i = 0; i < h->n; i++) {
    h->items[i].when += parked(h->items[i].when) ? -WEFT_PARKED : delta;
    h->items[i].d->when = h->items[i].when;
  }
  weft_heap_heapify(h);   /* the two groups moved apart: heap again */
  rt->virtual_time = 0;
  timer_rearm(rt);
}

static void deadlines_to_virtual(weft_runtime *rt) {
  weft_heap_shift(&rt->deadlines, WEFT_PARKED);   /* the virtual clock starts at 0 */
  rt->vclock = 0;
  rt->virtual_time = 1;
  timer_rearm(rt);
}

static int finish_run_virtual(lua_State *L, int status, lua_KContext ctx) {
  weft_runtime *rt = WEFT_UPRT(L);
  deadlines_to_real(rt);
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
    deadlines_to_virtual(rt);
    t = weft__spawn(L, rt, lua_gettop(L) - 1);
    weft_queue_insert_tail(&t->done.waiters, &self->wait.node);
    self->run_child = t;
    return weft__suspend(L, self, "task", 1, RUN_WAIT, finish_run_virtual);
  }
  check_can_drive(L, rt, "weft.run_virtual");
  deadlines_to_virtual(rt);
  t = weft__spawn(L, rt, lua_gettop(L) - 1);
  weft__drive(L, rt, t);
  deadlines_to_real(rt);
  weft__mark_observed(L, t);
  if (rt->driving == 0)
    weft__report_unobserved(L, rt);
  return weft__push_results(L, lua_gettop(L));
}

/* }======== */

/* {======== sleep, yield, now, current */

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

/* {======== life of the runtime */

void weft__runtime_free(weft_runtime *rt) {
  free(rt->deadlines.items);
  free(rt->free_slots);
  free(rt->pool);
  free(rt);
}

void weft__handle_closed(weft_runtime *rt) {
  if (--rt->nhandles_open == 0 && !rt->owns_loop)
    weft__runtime_free(rt);
}

static void handle_closed(uv_handle_t *h) {
  weft__handle_closed((weft_runtime *)h->data);
}

/* Closes weft's handles; an owned loop is run until they have closed (luv
   and libuv both need that turn before memory goes away). */
static void runtime_close(weft_runtime *rt) {
  rt->closing = 1;
  weft__envelope_close(rt);
  weft__watch_close(rt);
  weft__cfutures_close(rt);
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
  rt->report = report_stderr;
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
  lua_rawsetp(L, LUA_REGISTRYINDEX, &runtime_key);
  return rt;
}

weft_runtime *weft__runtime_find(lua_State *L) {
  weft_runtime *rt;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &runtime_key);
  rt = lua_isnil(L, -1) ? NULL : *(weft_runtime **)lua_touserdata(L, -1);
  lua_pop(L, 1);
  return rt;
}

weft_runtime *weft__runtime(lua_State *L) {
  weft_runtime *rt = weft__runtime_find(L);
  if (rt == NULL)
    rt = weft__runtime_create(L, NULL);
  return rt;
}

void weft__runtime_destroy(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &runtime_key);
  if (lua_isuserdata(L, -1)) {
    lua_pushcfunction(L, runtime_gc);
    lua_insert(L, -2);
    lua_call(L, 1, 0);
  } else {
    lua_pop(L, 1);
  }
}

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
