/*
** envelope.c: the safety envelope around untrusted scripts (weft.h "Safety
** envelope"): a memory limit in the state's allocator, a step budget (a
** count hook that interrupts, or preempts, a task running too long without
** awaiting), and weft_interrupt, the one call any thread may make to stop
** the running task. The scheduler calls in at each resume of a task
** (weft__envelope_on_resume / _after_resume) when rt->envelope_on is set.
**
** The step budget costs no hook while tasks behave: a Lua count hook makes
** the VM trap on every instruction (2-3x slower), so a watchdog thread
** looks at the running step every quarter budget and only then sets a hook
** on the thread running Lua (the task's, or a coroutine's inside it, which
** coro.c announces through weft__envelope_enter).
**
** A task that broke the envelope is "doomed": its thread gets a hook on
** every instruction that raises the same error again, so pcall loops and
** handlers cannot swallow it; the task finishes with that error.
**
** Ownership: the envelope is malloc'd with the runtime and freed when it
** closes; the limiting allocator forwards to the state's original one,
** which is put back at close (blocks move freely between the two).
*/
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "weft.h"

#define HOOK_COUNT 1000    /* instructions between looks at the clock, once over budget */

typedef struct envelope {
  weft_runtime *rt;
  lua_Alloc orig;             /* the state's allocator before ours */
  void *orig_ud;
  size_t used, limit;         /* bytes; limit 0: none */
  int refused;                /* an allocation of the running task was refused */
  int unlimited;              /* weft's own allocations in the hook */
  _Atomic uint64_t budget_ns;   /* 0: no step budget */
  int preempt;
  uint64_t cur_step;            /* counts resumes (loop thread) ... */
  _Atomic uint64_t step;        /* ... as the watchdog sees it */
  _Atomic uint64_t over_step;   /* the step the watchdog found over budget */
  _Atomic uint64_t seen_at;     /* when the watchdog first saw that step */
  uv_thread_t watchdog;
  uv_mutex_t lock;              /* with wake: the watchdog's sleep */
  uv_cond_t wake;
  int watchdog_on, stopping;
  weft_task *doomed;          /* the task raising doomed_ref on every instruction */
  int doomed_ref;
  atomic_int interrupt;       /* weft_interrupt asked; taken by the hook */
  _Atomic(lua_State *) running;   /* the thread of the running task */
} envelope;

static envelope *env_of(weft_runtime *rt) {
  return (envelope *)rt->envelope;
}

/* {======== memory limit */

/* Only allocations made while a task runs count against the limit: weft's
   own work between steps (error objects, tracebacks, reports) must not
   fail outside a protected call. */
static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  envelope *e = (envelope *)ud;
  size_t old = ptr != NULL ? osize : 0;
  void *p;
  if (nsize > old && e->limit != 0 && e->used + (nsize - old) > e->limit &&
      e->rt->current != NULL && !e->unlimited) {
    e->refused = 1;
    return NULL;
  }
  p = e->orig(e->orig_ud, ptr, osize, nsize);
  if (p == NULL && nsize != 0)
    return NULL;
  e->used = e->used - old + nsize;
  return p;
}

static void wrap_allocator(envelope *e) {
  lua_State *L = e->rt->L;
  if (e->orig != NULL)
    return;
  e->orig = lua_getallocf(L, &e->orig_ud);
  e->used = (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
  lua_setallocf(L, limited_alloc, e);
}

/* }======== */

/* {======== the hook */

static void push_where(lua_State *L) {
  lua_Debug ar;
  if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "Sl", &ar) && ar.currentline > 0)
    lua_pushfstring(L, "%s:%d", ar.short_src, ar.currentline);
  else
    weft__where(L, 0);
}

static void hook(lua_State *L, lua_Debug *ar);

#define RELAXED memory_order_relaxed

/* Did the watchdog find the running step over budget? */
static int over_budget(envelope *e) {
  return atomic_load_explicit(&e->over_step, RELAXED) == e->cur_step;
}

/* From now on t raises the error on top of L (popped) at every instruction. */
static void doom(lua_State *L, envelope *e, weft_task *t) {
  if (e->doomed_ref != LUA_NOREF)
    luaL_unref(L, LUA_REGISTRYINDEX, e->doomed_ref);
  e->doomed_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  e->doomed = t;
  lua_sethook(t->co, hook, LUA_MASKCOUNT, 1);
}

static void doom_timeout(lua_State *L, envelope *e, weft_task *t, uint64_t ran) {
  char ms[32];
  snprintf(ms, sizeof ms, "%.0f", (double)ran * 1e-6);
  lua_pushliteral(L, "step budget exceeded: task ");
  weft__push_task(L, t);
  weft__push_task_name(L, -1);
  lua_remove(L, -2);
  lua_pushfstring(L, " ran %s ms without awaiting (at ", ms);
  push_where(L);
  lua_pushliteral(L, ")");
  lua_concat(L, 5);
  weft__error_new(L, "Timeout", "%s", lua_tostring(L, -1));
  lua_remove(L, -2);
  doom(L, e, t);
}

static void doom_interrupted(lua_State *L, envelope *e, weft_task *t) {
  lua_pushliteral(L, "interrupted (weft_interrupt) at ");
  push_where(L);
  lua_concat(L, 2);
  weft__error_new(L, "Cancelled", "%s", lua_tostring(L, -1));
  lua_remove(L, -2);
  doom(L, e, t);
}

/* Decides the fate of the running task; returns 1 when it must raise. */
static int judge(lua_State *L, envelope *e, weft_task *t) {
  uint64_t ran;
  if (t->deliver && L == t->co) {
    /* cancelled while preempted: it has no await point to take it at */
    t->deliver = 0;
    weft__push_task(L, t);
    weft__task_getuv(L, -1, WEFT_TASK_MORE_PENDING);
    lua_remove(L, -2);
    doom(L, e, t);
    return 1;
  }
  if (atomic_exchange(&e->interrupt, 0)) {
    doom_interrupted(L, e, t);
    return 1;
  }
  if (!over_budget(e))
    return 0;
  ran = uv_hrtime() - atomic_load_explicit(&e->seen_at, RELAXED);
  if (e->preempt && L == t->co && lua_isyieldable(L) && e->doomed == NULL)
    return -1;                            /* yield: it runs again next turn */
  if (e->preempt && ran <= 4 * atomic_load(&e->budget_ns))
    return 0;                             /* not at a point it can yield from yet */
  doom_timeout(L, e, t, ran);
  return 1;
}

static void hook(lua_State *L, lua_Debug *ar) {
  weft_runtime *rt = weft__runtime_find(L);
  envelope *e;
  weft_task *t;
  int verdict;
  (void)ar;
  if (rt == NULL || (e = env_of(rt)) == NULL || (t = rt->current) == NULL) {
    lua_sethook(L, NULL, 0, 0);          /* a stale hook (weft_interrupt raced) */
    return;
  }
  if (e->doomed == t) {
    lua_sethook(L, hook, LUA_MASKCOUNT, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, e->doomed_ref);
    lua_error(L);
  }
  e->unlimited = 1;
  verdict = judge(L, e, t);
  e->unlimited = 0;
  if (verdict > 0) {
    lua_sethook(L, hook, LUA_MASKCOUNT, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, e->doomed_ref);
    lua_error(L);
  }
  if (verdict < 0) {
    lua_sethook(L, NULL, 0, 0);
    lua_yield(L, 0);
    return;
  }
  if (verdict == 0 && over_budget(e)) {   /* preempt later, where it can */
    lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_COUNT);
    if (L != t->co)                       /* the coroutine may return to the task */
      lua_sethook(t->co, hook, LUA_MASKCOUNT, HOOK_COUNT);
  } else {
    lua_sethook(L, NULL, 0, 0);           /* early or stale: no trap */
  }
}

/* }======== */

/* {======== the watchdog thread */

static uint64_t watchdog_period_ns(envelope *e) {
  uint64_t p = atomic_load(&e->budget_ns) / 4;
  if (p == 0)
    return 1000000000;          /* no budget now: weft_set_step_budget wakes us */
  if (p < 500000)
    p = 500000;
  return p > 20000000 ? 20000000 : p;
}

/* Times steps itself, so that a resume costs no clock read: a step still
   running a budget after the watchdog first saw it gets a hook. */
static void watchdog(void *arg) {
  envelope *e = (envelope *)arg;
  uint64_t seen_step = 0, seen_at = 0, hooked_step = 0;
  uv_mutex_lock(&e->lock);
  while (!e->stopping) {
    lua_State *co;
    uint64_t step, now, budget;
    uv_cond_timedwait(&e->wake, &e->lock, watchdog_period_ns(e));
    step = atomic_load_explicit(&e->step, RELAXED);
    co = atomic_load_explicit(&e->running, RELAXED);
    now = uv_hrtime();
    budget = atomic_load_explicit(&e->budget_ns, RELAXED);
    if (co == NULL || budget == 0)
      continue;
    if (step != seen_step) {
      seen_step = step;
      seen_at = now;
    } else if (now - seen_at >= budget && step != hooked_step) {
      hooked_step = step;
      atomic_store_explicit(&e->seen_at, seen_at, RELAXED);
      atomic_store_explicit(&e->over_step, step, RELAXED);
      lua_sethook(co, hook, LUA_MASKCOUNT, 1);   /* async-safe, as weft_interrupt */
    }
  }
  uv_mutex_unlock(&e->lock);
}

static int start_watchdog(envelope *e) {
  if (e->watchdog_on)
    return 0;
  if (uv_mutex_init(&e->lock) != 0)
    return -1;
  if (uv_cond_init(&e->wake) != 0) {
    uv_mutex_destroy(&e->lock);
    return -1;
  }
  e->stopping = 0;
  if (uv_thread_create(&e->watchdog, watchdog, e) != 0) {
    uv_cond_destroy(&e->wake);
    uv_mutex_destroy(&e->lock);
    return -1;
  }
  e->watchdog_on = 1;
  return 0;
}

static void stop_watchdog(envelope *e) {
  if (!e->watchdog_on)
    return;
  uv_mutex_lock(&e->lock);
  e->stopping = 1;
  uv_cond_signal(&e->wake);
  uv_mutex_unlock(&e->lock);
  uv_thread_join(&e->watchdog);
  uv_cond_destroy(&e->wake);
  uv_mutex_destroy(&e->lock);
  e->watchdog_on = 0;
}

/* }======== */

/* {======== the scheduler's calls */

void weft__envelope_on_resume(weft_runtime *rt, weft_task *t) {
  envelope *e = env_of(rt);
  atomic_store_explicit(&e->step, ++e->cur_step, RELAXED);
  atomic_store_explicit(&e->running, t->co, RELAXED);
  if (atomic_load_explicit(&e->interrupt, RELAXED) || t->deliver)
    lua_sethook(t->co, hook, LUA_MASKCOUNT, 1);
}

/* coro.c: co starts running Lua inside the task (NULL: back to the task's
   own thread). Returns the thread that ran before, to give back after. */
lua_State *weft__envelope_enter(weft_runtime *rt, lua_State *co) {
  envelope *e = env_of(rt);
  lua_State *outer = atomic_load_explicit(&e->running, RELAXED);   /* one writer: us */
  atomic_store_explicit(&e->running, co, RELAXED);
  return outer;
}

/* Replaces the error of a task that ran out of the memory limit. Closing
   the thread here (its <close> variables run) is what lets the error be
   ours: a thread closed with status LUA_ERRMEM says "not enough memory". */
static int explain_memory(weft_runtime *rt, envelope *e, lua_State *co) {
  char mb[32];
  snprintf(mb, sizeof mb, "%.1f", (double)e->limit / (1024.0 * 1024.0));
  weft_closethread(co, rt->L);
  lua_settop(co, 0);
  weft__error_new(co, "MemoryError", "memory limit exceeded (%s MB)", mb);
  return LUA_ERRRUN;
}

int weft__envelope_after_resume(weft_runtime *rt, weft_task *t, int status) {
  envelope *e = env_of(rt);
  atomic_store_explicit(&e->running, NULL, RELAXED);
  if (e->doomed == t) {
    /* the hook stays: an error thrown from a hook leaves the thread unable
       to run hooks again, and a hooked thread is not pooled */
    e->doomed = NULL;
    luaL_unref(rt->L, LUA_REGISTRYINDEX, e->doomed_ref);
    e->doomed_ref = LUA_NOREF;
  } else if (lua_gethook(t->co) == hook) {
    lua_sethook(t->co, NULL, 0, 0);
  }
  if (e->refused) {
    e->refused = 0;
    if (status == LUA_ERRMEM)
      return explain_memory(rt, e, t->co);
  }
  return status;
}

/* }======== */

/* {======== settings */

void weft__envelope_open(weft_runtime *rt) {
  envelope *e = (envelope *)calloc(1, sizeof *e);
  if (e == NULL)
    return;   /* no envelope: the settings calls report it */
  e->rt = rt;
  e->doomed_ref = LUA_NOREF;
  atomic_init(&e->interrupt, 0);
  atomic_init(&e->running, NULL);
  atomic_init(&e->budget_ns, 0);
  atomic_init(&e->step, 0);
  atomic_init(&e->over_step, 0);
  atomic_init(&e->seen_at, 0);
  rt->envelope = e;
}

void weft__envelope_close(weft_runtime *rt) {
  envelope *e = env_of(rt);
  if (e == NULL)
    return;
  stop_watchdog(e);
  if (e->orig != NULL)
    lua_setallocf(rt->L, e->orig, e->orig_ud);
  rt->envelope = NULL;
  rt->envelope_on = 0;
  free(e);
}

static void update_on(weft_runtime *rt, envelope *e) {
  rt->envelope_on = rt->envelope_on || atomic_load(&e->budget_ns) != 0 || e->limit != 0;
}

int weft_set_memory_limit(weft_runtime *rt, size_t bytes) {
  envelope *e = env_of(rt);
  if (e == NULL)
    return -1;
  if (bytes != 0)
    wrap_allocator(e);
  e->limit = bytes;
  update_on(rt, e);
  return 0;
}

size_t weft_memory_used(weft_runtime *rt) {
  envelope *e = env_of(rt);
  lua_State *L = rt->L;
  if (e != NULL && e->orig != NULL)
    return e->used;
  return (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
}

int weft_set_step_budget(weft_runtime *rt, double seconds, int preempt) {
  envelope *e = env_of(rt);
  if (e == NULL || !(seconds >= 0))
    return -1;
  if (seconds > 0 && start_watchdog(e) != 0)
    return -1;
  atomic_store(&e->budget_ns, (uint64_t)(seconds * 1e9));
  e->preempt = preempt != 0;
  update_on(rt, e);
  if (e->watchdog_on) {
    uv_mutex_lock(&e->lock);
    uv_cond_signal(&e->wake);     /* sleep by the new budget */
    uv_mutex_unlock(&e->lock);
  }
  return 0;
}

/* Any thread. The hook set here may land on a thread that has just
   stopped running: it then finds the flag taken, or no running task, and
   removes itself. lua_sethook is safe to call asynchronously (lua.c does
   it from a signal handler). */
int weft_interrupt(weft_runtime *rt) {
  envelope *e = env_of(rt);
  lua_State *co;
  if (e == NULL)
    return -1;
  atomic_store(&e->interrupt, 1);
  co = atomic_load(&e->running);
  if (co == NULL) {
    atomic_store(&e->interrupt, 0);   /* nothing runs: nothing to stop */
    return 0;
  }
  lua_sethook(co, hook, LUA_MASKCOUNT, 1);
  return 1;
}

/* The runtime was made by the C API: weft_interrupt must see every resume. */
void weft__envelope_embedded(weft_runtime *rt) {
  if (rt->envelope != NULL)
    rt->envelope_on = 1;
}

/* }======== */

/* {======== sizes and durations from users: "64M", "50ms" */

/* Returns bytes, or -1 when s is not a size. */
double weft__parse_size(const char *s) {
  char *end;
  double v = strtod(s, &end), unit = 1;
  if (end == s || !(v >= 0))
    return -1;
  switch (*end) {
    case 'k': case 'K': unit = 1024.0; end++; break;
    case 'm': case 'M': unit = 1024.0 * 1024.0; end++; break;
    case 'g': case 'G': unit = 1024.0 * 1024.0 * 1024.0; end++; break;
    default: break;
  }
  if ((*end == 'b' || *end == 'B') && end[1] == '\0')
    end++;
  return *end == '\0' ? v * unit : -1;
}

/* Returns seconds, or -1 when s is not a duration ("50ms", "2s", "0.5"). */
double weft__parse_duration(const char *s) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || !(v >= 0))
    return -1;
  if (strcmp(end, "ms") == 0)
    return v / 1e3;
  if (strcmp(end, "us") == 0)
    return v / 1e6;
  if (strcmp(end, "s") == 0 || *end == '\0')
    return v;
  return -1;
}

/* }======== */

/* {======== from Lua: weft.run({max_memory=, step_budget=, preempt=}, fn, ...) */

static double opt_amount(lua_State *L, int opts, const char *key,
                         double (*parse)(const char *)) {
  double v;
  int type = lua_getfield(L, opts, key);
  if (type == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  if (type == LUA_TNUMBER)
    v = lua_tonumber(L, -1);
  else if (type == LUA_TSTRING)
    v = parse(lua_tostring(L, -1));
  else
    v = -1;
  if (!(v >= 0))
    luaL_error(L, "weft.run: bad option '%s' (%s)", key,
               parse == weft__parse_size ? "a size: bytes or \"64M\""
                                         : "a duration: seconds or \"50ms\"");
  lua_pop(L, 1);
  return v;
}

typedef struct saved {
  size_t limit;
  uint64_t budget_ns;
  int preempt;
} saved;

static int run_finish_plain(lua_State *L, int status, lua_KContext base) {
  (void)status;
  return lua_gettop(L) - (int)base;
}

/* A function, or a value whose metatable has __call (left off the stack). */
static int is_callable(lua_State *L, int i) {
  if (lua_type(L, i) == LUA_TFUNCTION)
    return 1;
  if (luaL_getmetafield(L, i, "__call") == LUA_TNIL)
    return 0;
  lua_pop(L, 1);
  return 1;
}

static int run_with_options(lua_State *L) {
  weft_runtime *rt = WEFT_UPRT(L);
  envelope *e = env_of(rt);
  saved old;
  int status;
  if (lua_type(L, 1) != LUA_TTABLE || is_callable(L, 1)) {
    /* checked here, not by the wrapped run, so the message names 'run' */
    if (!is_callable(L, 1))
      return luaL_typeerror(L, 1, "function");
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_insert(L, 1);
    lua_callk(L, lua_gettop(L) - 1, LUA_MULTRET, 0, run_finish_plain);
    return run_finish_plain(L, LUA_OK, 0);
  }
  if (rt->current != NULL)
    return luaL_error(L, "weft.run: options are for the outermost run only");
  if (e == NULL)
    return luaL_error(L, "weft.run: out of memory");
  old.limit = e->limit;
  old.budget_ns = atomic_load(&e->budget_ns);
  old.preempt = e->preempt;
  {
    double mem = opt_amount(L, 1, "max_memory", weft__parse_size);
    double budget = opt_amount(L, 1, "step_budget", weft__parse_duration);
    lua_getfield(L, 1, "preempt");
    weft_set_memory_limit(rt, (size_t)mem);
    weft_set_step_budget(rt, budget, lua_toboolean(L, -1));
    lua_pop(L, 1);
  }
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_replace(L, 1);
  status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  e->limit = old.limit;
  weft_set_step_budget(rt, (double)old.budget_ns * 1e-9, old.preempt);
  if (status != LUA_OK)
    return lua_error(L);
  return lua_gettop(L);
}

/* Wraps the module's run (already in the table on top of L). */
int weft__open_envelope(lua_State *L, weft_runtime *rt) {
  lua_pushlightuserdata(L, rt);
  lua_getfield(L, -2, "run");
  lua_pushcclosure(L, run_with_options, 2);
  lua_setfield(L, -2, "run");
  return 0;
}

/* The CLI's --max-memory and --step-budget: 0, or -1 with a message pushed. */
int weft__envelope_configure(lua_State *L, weft_runtime *rt, const char *memory,
                             const char *budget, int preempt) {
  double mem = memory != NULL ? weft__parse_size(memory) : 0;
  double secs = budget != NULL ? weft__parse_duration(budget) : 0;
  if (mem < 0) {
    lua_pushfstring(L, "--max-memory: '%s' is not a size (bytes, or 64K, 64M, 1G)", memory);
    return -1;
  }
  if (secs < 0) {
    lua_pushfstring(L, "--step-budget: '%s' is not a duration (50ms, 0.5s, 2)", budget);
    return -1;
  }
  if (weft_set_memory_limit(rt, (size_t)mem) != 0 || weft_set_step_budget(rt, secs, preempt) != 0) {
    lua_pushliteral(L, "not enough memory");
    return -1;
  }
  return 0;
}

/* }======== */
