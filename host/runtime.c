/*
** runtime.c: one runtime per Lua state (runtime_life.c creates and closes
** it; weft__runtime_find finds it): the deadline heap behind a single uv_timer, the clock
** (real or virtual: weft__virtual_jump moves a virtual clock to the next
** deadline), weft__where and weft__report. It is the bottom of the
** scheduler's files and calls none of them: the ready queue and the turn
** are sched.c's; weft.run, the drive loop, the Deadlock error and the
** report of errors nobody observed are run.c's, above the scheduler
** (docs/internals.md "Who calls whom").
**
** The runtime struct is malloc'd (libuv may still hold its handles after the
** Lua state is gone): weft__runtime_free frees it once the last of them
** closed (weft__handle_closed). Every module function gets the runtime as
** light userdata upvalue 1.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

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

/* {======== the virtual clock */

/* Is there work that keeps the loop alive? Under virtual time an idle
   listening server is not: it waits for a peer that no virtual deadline
   brings, so the clock jumps past it, and a run left with nothing else is
   a Deadlock (docs/reference.md, run_virtual). */
int weft__loop_alive(weft_runtime *rt) {
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
int weft__virtual_jump(weft_runtime *rt) {
  weft_deadline *d = weft_heap_min(&rt->deadlines);
  if (!rt->virtual_time || d == NULL || !weft_queue_empty(&rt->ready))
    return 0;
  if (weft__loop_alive(rt))
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

/* Moves the deadlines of the virtual run to real time, keeping what was
   left, and the parked ones back where they were. */
void weft__deadlines_to_real(weft_runtime *rt) {
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

void weft__deadlines_to_virtual(weft_runtime *rt) {
  weft_heap_shift(&rt->deadlines, WEFT_PARKED);   /* the virtual clock starts at 0 */
  rt->vclock = 0;
  rt->virtual_time = 1;
  timer_rearm(rt);
}

/* }======== */

/* {======== reports */

/* The default of rt->report: the host's report function, else stderr. */
void weft__report_stderr(weft_runtime *rt, const char *msg, void *ud) {
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

/* The registry key of the runtime's box (runtime_life.c puts it there). */
char weft__runtime_key;

weft_runtime *weft__runtime_find(lua_State *L) {
  weft_runtime *rt;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &weft__runtime_key);
  rt = lua_isnil(L, -1) ? NULL : *(weft_runtime **)lua_touserdata(L, -1);
  lua_pop(L, 1);
  return rt;
}

/* }======== */
