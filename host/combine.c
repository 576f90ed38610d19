/*
** combine.c: waiting on several things: gather, wait, wait_for, timeout and
** group (structured concurrency, after asyncio.TaskGroup).
**
** gather and wait link one waiter per task from a single block (a userdata
** on the waiting frame's stack, so it lives exactly as long as the wait);
** the owner is woken when the block's condition holds. group keeps one
** record per child for the same purpose. timeout is a to-be-closed scope
** whose deadline cancels the task; its __close turns that cancellation, and
** only that one, into Timeout (counted as asyncio's uncancel() does).
**
** User docs: docs/reference.md "Waiting on several".
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MULTI_MT "weft.multi"
#define SCOPE_MT "weft.timeout_scope"
#define RECORD_MT "weft.group_child"

static void timedout_fire(weft_deadline *d) {
  weft__task_wake(weft_queue_data(d, weft_task, deadline), WEFT_TIMEDOUT);
}

/* Raises an argument error ("<expected> expected") unless the value at idx
   can be called. */
static void check_callable(lua_State *L, int idx, const char *expected) {
  if (lua_type(L, idx) == LUA_TFUNCTION)
    return;
  if (luaL_getmetafield(L, idx, "__call") != LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  luaL_typeerror(L, idx, expected);
}

static double check_seconds(lua_State *L, int idx) {
  double s = luaL_checknumber(L, idx);
  luaL_argcheck(L, !isnan(s), idx, "not a number");
  return s;
}


/* {======== the block behind gather and wait */

enum { M_GATHER, M_SETTLE, M_FIRST_COMPLETED, M_FIRST_ERROR, M_ALL_COMPLETED };

typedef struct multi_entry {
  weft_waiter w;
  weft_task *task;
  int i;               /* its index in the block (which is found from it) */
  int cancelled;       /* we asked for its cancellation (once only) */
} multi_entry;

typedef struct weft_multi {
  weft_task *owner;
  int mode;
  int n, remaining;
  int first_failed;    /* 1-based index of the first failure, 0 if none */
  multi_entry e[1];
} weft_multi;

static int failed(weft_task *t) {
  return t->done.state == WEFT_FAILED || t->done.state == WEFT_CANCELLED;
}

static int multi_satisfied(weft_multi *m) {
  switch (m->mode) {
    case M_FIRST_COMPLETED: return m->remaining < m->n || m->n == 0;
    case M_FIRST_ERROR: return m->remaining == 0 || m->first_failed > 0;
    default: return m->remaining == 0;
  }
}

/* Cancels each unfinished task once: a second request would interrupt the
   cleanup it runs after the first. */
static void multi_cancel_rest(weft_multi *m) {
  int i;
  for (i = 0; i < m->n; i++) {
    multi_entry *e = &m->e[i];
    if (e->task->state != WEFT_T_FINISHED && !e->cancelled) {
      e->cancelled = 1;
      weft__task_cancel(m->owner->rt->L, e->task, 0);
    }
  }
}

static void multi_entry_done(weft_multi *m, int i) {
  m->remaining--;
  if (failed(m->e[i].task) && m->first_failed == 0) {
    m->first_failed = i + 1;
    if (m->mode == M_GATHER)
      multi_cancel_rest(m);
  }
}

static void multi_wake(weft_waiter *w, int reason) {
  multi_entry *e = (multi_entry *)w;
  weft_multi *m = (weft_multi *)((char *)(e - e->i) - offsetof(weft_multi, e));
  (void)reason;
  multi_entry_done(m, e->i);
  if (multi_satisfied(m))
    weft__task_wake(m->owner, WEFT_WOKEN);
}

static void multi_unlink(weft_multi *m) {
  int i;
  for (i = 0; i < m->n; i++)
    if (weft_queue_linked(&m->e[i].w.node))
      weft_queue_remove(&m->e[i].w.node);
}

/* The block's memory is C's (the userdata on the waiting frame holds only
   a pointer): a gather over n tasks would otherwise charge the collector
   for n entries it never needs to traverse, and the block is freed as soon
   as the wait ends instead of at the next cycle. */
static weft_multi *multi_at(lua_State *L, int idx) {
  return *(weft_multi **)lua_touserdata(L, idx);
}

static void multi_free(lua_State *L, int idx) {
  weft_multi **box = (weft_multi **)lua_touserdata(L, idx);
  if (*box != NULL) {
    multi_unlink(*box);
    free(*box);
    *box = NULL;
  }
}

static int multi_gc(lua_State *L) {
  multi_free(L, 1);
  return 0;
}

/* The block of a gather or wait over the list at 'list': pushes the array
   of its tasks (functions in the list spawned; it keeps the objects alive)
   and the block, whose entries point at them and wait on each unfinished
   one. Every entry is checked before any function is spawned. */
static weft_multi *multi_new(lua_State *L, int list, int mode, weft_task *owner) {
  weft_runtime *rt = WEFT_UPRT(L);
  int n, i, nfunctions = 0, array;
  size_t size;
  weft_multi *m, **box;
  luaL_checktype(L, list, LUA_TTABLE);
  n = (int)luaL_len(L, list);
  lua_createtable(L, n, 0);
  array = lua_gettop(L);
  size = sizeof(weft_multi) + (size_t)(n > 0 ? n - 1 : 0) * sizeof(multi_entry);
  box = (weft_multi **)lua_newuserdatauv(L, sizeof *box, 1);
  *box = NULL;
  luaL_setmetatable(L, MULTI_MT);   /* frees the block however this call ends */
  if ((m = *box = (weft_multi *)malloc(size)) == NULL)
    luaL_error(L, "weft: not enough memory for a wait over %d tasks", n);
  m->owner = owner;
  m->mode = mode;
  m->n = m->remaining = n;
  m->first_failed = 0;
  for (i = 0; i < n; i++) {
    multi_entry *e = &m->e[i];
    weft_queue_init(&e->w.node);
    e->i = i;
    e->w.wake = multi_wake;
    e->cancelled = 0;
    e->task = NULL;
  }
  weft__where(L, 1);
  lua_setiuservalue(L, -2, 1);
  for (i = 0; i < n; i++) {
    lua_geti(L, list, i + 1);
    if ((m->e[i].task = weft__task_at(rt, L, -1)) != NULL) {
      lua_rawseti(L, array, i + 1);
      continue;
    }
    if (lua_type(L, -1) != LUA_TFUNCTION) {
      if (luaL_getmetafield(L, -1, "__call") == LUA_TNIL)
        luaL_argerror(L, list, lua_pushfstring(L, "entry %d is a %s, not a task or function",
                                                i + 1, luaL_typename(L, -1)));
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    nfunctions++;
  }
  for (i = 0; nfunctions > 0 && i < n; i++) {   /* then spawn the functions */
    if (m->e[i].task == NULL) {
      lua_geti(L, list, i + 1);
      m->e[i].task = weft__spawn(L, rt, 0);
      lua_rawseti(L, array, i + 1);
      nfunctions--;
    }
  }
  for (i = 0; i < n; i++) {   /* every entry is set before any can fire */
    multi_entry *e = &m->e[i];
    if (e->task->state == WEFT_T_FINISHED)
      multi_entry_done(m, i);
    else
      weft_queue_insert_tail(&e->task->done.waiters, &e->w.node);
  }
  return m;
}

/* }======== */

/* {======== gather */

/* Stack: 1 list, 2 opts, 3 tasks, 4 block, 5 saved error (nil) */
enum { G_TASKS = 3, G_BLOCK = 4, G_SAVED = 5 };

/* The results go into the array of tasks, each replacing its task (read
   just before): one table of n entries for the whole gather. */
static int gather_results(lua_State *L, weft_multi *m) {
  int i;
  for (i = 0; i < m->n; i++) {
    weft_task *t = m->e[i].task;
    if (t->done.state == WEFT_FAILED)
      weft__mark_observed(L, t);
    else
      t->done.observed = 1;
  }
  if (m->mode == M_GATHER && m->first_failed > 0) {
    lua_rawgeti(L, G_TASKS, m->first_failed);
    weft__push_outcome(L, -1);
    multi_free(L, G_BLOCK);
    return lua_error(L);
  }
  for (i = 1; i <= m->n; i++) {
    const weft_task *t = m->e[i - 1].task;
    if (m->mode == M_GATHER && t->done.state == WEFT_DONE && t->done.nresults == 0) {
      lua_pushnil(L);
      lua_rawseti(L, G_TASKS, i);
      continue;
    }
    lua_rawgeti(L, G_TASKS, i);
    if (m->mode == M_SETTLE) {
      int ok = t->done.state == WEFT_DONE;
      lua_createtable(L, 0, 2);
      lua_pushboolean(L, ok);
      lua_setfield(L, -2, "ok");
      weft__push_outcome(L, -2);
      lua_setfield(L, -2, ok ? "value" : "error");
    } else {
      weft__push_outcome(L, -1);
    }
    lua_rawseti(L, G_TASKS, i);
    lua_pop(L, 1);
  }
  multi_free(L, G_BLOCK);
  lua_pushvalue(L, G_TASKS);
  return 1;
}

static int finish_gather(lua_State *L, int status, lua_KContext ctx) {
  weft_task *t = WEFT_UPRT(L)->current;
  weft_multi *m = multi_at(L, G_BLOCK);
  (void)status;
  (void)ctx;
  if (t->deliver) {
    if (!lua_isnil(L, G_SAVED)) {   /* interrupted twice: stop waiting */
      multi_unlink(m);
      return weft__raise_pending(L, t);
    }
    weft__keep_pending(L, t, G_SAVED);
    multi_cancel_rest(m);
  }
  if (m->remaining > 0)
    return weft__suspend(L, t, "gather", G_BLOCK, 0, finish_gather);
  if (!lua_isnil(L, G_SAVED)) {
    lua_pushvalue(L, G_SAVED);
    return lua_error(L);
  }
  return gather_results(L, m);
}

static int combine_gather(lua_State *L) {
  weft_task *t = weft__current(L, WEFT_UPRT(L), "weft.gather");
  int settle = 0;
  weft_multi *m;
  luaL_checktype(L, 1, LUA_TTABLE);
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "settle");
    settle = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  lua_settop(L, 2);
  m = multi_new(L, 1, settle ? M_SETTLE : M_GATHER, t);
  lua_pushnil(L);
  if (m->remaining == 0)
    return gather_results(L, m);
  return weft__suspend(L, t, "gather", G_BLOCK, 0, finish_gather);
}

/* }======== */

/* {======== wait */

static int wait_results(lua_State *L, weft_multi *m) {
  int i, ndone = 0, npending = 0;
  multi_unlink(m);
  lua_newtable(L);
  lua_newtable(L);
  for (i = 1; i <= m->n; i++) {
    int done;
    lua_rawgeti(L, G_TASKS, i);
    done = weft__task_at(WEFT_UPRT(L), L, -1)->state == WEFT_T_FINISHED;
    lua_rawseti(L, done ? -3 : -2, done ? ++ndone : ++npending);
  }
  return 2;
}

static int finish_waitm(lua_State *L, int status, lua_KContext ctx) {
  weft_task *t = WEFT_UPRT(L)->current;
  weft_multi *m = multi_at(L, G_BLOCK);
  (void)status;
  (void)ctx;
  if (t->deliver) {
    multi_unlink(m);
    return weft__raise_pending(L, t);
  }
  return wait_results(L, m);
}

/* opts.return_when of weft.wait (opts at 2), as an M_* mode. */
static int parse_return_when(lua_State *L, const char *const modes[]) {
  int i;
  if (lua_getfield(L, 2, "return_when") == LUA_TNIL) {
    lua_pop(L, 1);
    return M_ALL_COMPLETED;
  }
  for (i = 0; lua_type(L, -1) == LUA_TSTRING && modes[i] != NULL; i++)
    if (strcmp(lua_tostring(L, -1), modes[i]) == 0) {
      lua_pop(L, 1);
      return M_FIRST_COMPLETED + i;
    }
  return luaL_argerror(L, 2, lua_pushfstring(L, "invalid return_when '%s'",
                                             luaL_tolstring(L, -1, NULL)));
}

/* opts.timeout of weft.wait (opts at 2): seconds, or -1 for none. */
static double parse_timeout(lua_State *L) {
  double s;
  int isnum;
  if (lua_getfield(L, 2, "timeout") == LUA_TNIL) {
    lua_pop(L, 1);
    return -1;
  }
  s = lua_tonumberx(L, -1, &isnum);
  if (!isnum || isnan(s))
    return luaL_argerror(L, 2, "timeout must be a number of seconds");
  lua_pop(L, 1);
  return s < 0 ? 0 : s;
}

static int combine_wait(lua_State *L) {
  static const char *const modes[] = {"first_completed", "first_error", "all_completed", NULL};
  weft_runtime *rt = WEFT_UPRT(L);
  weft_task *t = weft__current(L, rt, "weft.wait");
  int mode = M_ALL_COMPLETED;
  double timeout = -1;
  weft_multi *m;
  luaL_checktype(L, 1, LUA_TTABLE);
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    mode = parse_return_when(L, modes);
    timeout = parse_timeout(L);
  }
  lua_settop(L, 2);
  m = multi_new(L, 1, mode, t);
  lua_pushnil(L);
  if (multi_satisfied(m) || timeout == 0)
    return wait_results(L, m);
  if (timeout > 0) {
    t->deadline.fire = timedout_fire;
    weft__deadline_arm(rt, &t->deadline, weft__now(rt) + timeout);
  }
  return weft__suspend(L, t, "wait", G_BLOCK, 0, finish_waitm);
}

/* }======== */

/* {======== wait_for */

/* Stack: 1 task, 2 seconds, 3 error to raise once the task has finished */
enum { WF_WAIT = 1, WF_DRAIN = 2 };

static int finish_wait_for(lua_State *L, int status, lua_KContext ctx);

static int drain(lua_State *L, weft_task *self, weft_task *target) {
  weft__task_cancel(L, target, 0);
  if (target->state == WEFT_T_FINISHED) {
    lua_pushvalue(L, 3);
    return lua_error(L);
  }
  weft_queue_insert_tail(&target->done.waiters, &self->wait.node);
  return weft__suspend(L, self, "task", 1, WF_DRAIN, finish_wait_for);
}

static int finish_wait_for(lua_State *L, int status, lua_KContext ctx) {
  weft_task *self = WEFT_UPRT(L)->current;
  weft_task *target = weft__task_at(WEFT_UPRT(L), L, 1);
  (void)status;
  if (ctx == WF_DRAIN) {
    weft__check_pending(L, self);   /* interrupted again: stop waiting */
    lua_pushvalue(L, 3);
    return lua_error(L);
  }
  if (target->state == WEFT_T_FINISHED && !self->deliver)
    return weft__push_results(L, 1);
  if (self->deliver) {
    weft__keep_pending(L, self, 3);
  } else {                           /* the deadline */
    weft__error_new(L, "Timeout", "timed out after %f s", lua_tonumber(L, 2));
    lua_replace(L, 3);
  }
  return drain(L, self, target);
}

static int combine_wait_for(lua_State *L) {
  weft_runtime *rt = WEFT_UPRT(L);
  weft_task *self = weft__current(L, rt, "weft.wait_for"), *target;
  double s;
  if (weft__task_at(WEFT_UPRT(L), L, 1) == NULL)
    check_callable(L, 1, "task or function");
  s = check_seconds(L, 2);
  lua_settop(L, 2);
  if (weft__task_at(WEFT_UPRT(L), L, 1) == NULL) {
    lua_pushvalue(L, 1);
    target = weft__spawn(L, rt, 0);
    lua_replace(L, 1);
  } else {
    target = weft__task_at(WEFT_UPRT(L), L, 1);
  }
  lua_pushnil(L);
  if (target->state == WEFT_T_FINISHED)
    return weft__push_results(L, 1);
  if (target == self)
    return luaL_error(L, "weft.wait_for: a task cannot wait for itself");
  weft_queue_insert_tail(&target->done.waiters, &self->wait.node);
  self->deadline.fire = timedout_fire;
  weft__deadline_arm(rt, &self->deadline, weft__now(rt) + (s > 0 ? s : 0));
  return weft__suspend(L, self, "task", 1, WF_WAIT, finish_wait_for);
}

/* }======== */

/* {======== timeout */

typedef struct timeout_scope {
  weft_deadline deadline;
  weft_task *owner;
  double seconds;
  int count_fired;   /* owner's cancel requests just after the scope's own */
  int merged;        /* another cancellation was pending when it fired */
  int fired;
  int closed;
} timeout_scope;

static void scope_fire(weft_deadline *d) {
  timeout_scope *sc = (timeout_scope *)d;
  weft_task *t = sc->owner;
  sc->fired = 1;
  sc->merged = t->deliver;
  weft__error_new(t->rt->L, "Cancelled", "timed out after %f s", sc->seconds);
  sc->count_fired = ++t->cancel_requests;
  weft__task_interrupt(t->rt->L, t);
}

static int scope_gc(lua_State *L) {
  timeout_scope *sc = (timeout_scope *)lua_touserdata(L, 1);
  if (!sc->closed) {
    sc->closed = 1;
    weft__deadline_disarm(sc->owner->rt, &sc->deadline);
  }
  return 0;
}

/* __close(scope, err): ends the scope; the cancellation it caused becomes
   Timeout, unless another one was merged into it (pending when it fired, or
   asked for before it was raised). Cancellations delivered and caught
   before it fired do not count: each request is delivered once. One asked
   for later and still pending is raised at the next await. */
static int scope_close(lua_State *L) {
  timeout_scope *sc = (timeout_scope *)lua_touserdata(L, 1);
  weft_task *t = sc->owner;
  int merged_later;
  if (sc->closed)
    return 0;
  sc->closed = 1;
  weft__deadline_disarm(t->rt, &sc->deadline);
  if (!sc->fired)
    return 0;
  merged_later = t->cancel_requests > sc->count_fired && !t->deliver;
  weft__uncancel(t);
  if (weft__error_is(L, 2, "Cancelled") && !sc->merged && !merged_later) {
    weft__error_new(L, "Timeout", "timed out after %f s", sc->seconds);
    return lua_error(L);
  }
  return 0;
}

static int timeout_done(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return lua_gettop(L) - (int)ctx;
}

static int combine_timeout(lua_State *L) {
  weft_runtime *rt = WEFT_UPRT(L);
  double s = check_seconds(L, 1);
  weft_task *t = weft__current(L, rt, "weft.timeout");
  timeout_scope *sc;
  check_callable(L, 2, "function");
  sc = (timeout_scope *)lua_newuserdatauv(L, sizeof *sc, 0);
  memset(sc, 0, sizeof *sc);
  sc->deadline.slot = WEFT_HEAP_NONE;
  sc->deadline.fire = scope_fire;
  sc->owner = t;
  sc->seconds = s;
  luaL_setmetatable(L, SCOPE_MT);
  lua_replace(L, 1);                 /* scope, fn, args... */
  lua_toclose(L, 1);
  weft__deadline_arm(rt, &sc->deadline, weft__now(rt) + (s > 0 ? s : 0));
  lua_callk(L, lua_gettop(L) - 2, LUA_MULTRET, 1, timeout_done);
  return timeout_done(L, LUA_OK, 1);
}

/* }======== */

/* {======== group */

typedef struct weft_group {
  weft_task *owner;
  weft_queue children;  /* records of unfinished children */
  int pending;
  int failed;           /* a child or the body failed: cancelling */
  int cancelled_owner;  /* the group cancelled the body */
  int in_body;
  int open;
  int shutting;         /* the children have been cancelled */
  int count_cancelled;  /* owner's cancel requests just after the group's own */
  int merged;           /* another cancellation was pending when it cancelled the body */
} weft_group;

typedef struct group_record {
  weft_waiter w;        /* on the child's completion */
  weft_queue link;      /* in group->children */
  weft_group *g;
  weft_task *child;
  int cancelled;        /* the group asked for its cancellation */
} group_record;

/* group user values: 1 where, 2 records (spawn order) */

static weft_group *checkgroup(lua_State *L, int idx) {
  return (weft_group *)luaL_checkudata(L, idx, WEFT_GROUP_MT);
}

/* Cancels each running child once: a second request would interrupt the
   cleanup it runs after the first. */
static void group_cancel_children(weft_group *g) {
  weft_queue *q;
  g->shutting = 1;
  for (q = g->children.next; q != &g->children; q = q->next) {
    group_record *r = weft_queue_data(q, group_record, link);
    if (!r->cancelled) {
      r->cancelled = 1;
      weft__task_cancel(g->owner->rt->L, r->child, 0);
    }
  }
}

/* The group fails: cancel the children and, while it runs, the body. */
static void group_abort(weft_group *g) {
  if (g->failed)
    return;
  g->failed = 1;
  group_cancel_children(g);
  if (g->in_body && !g->cancelled_owner) {
    g->cancelled_owner = 1;
    g->merged = g->owner->deliver;
    weft__task_cancel(g->owner->rt->L, g->owner, 0);
    g->count_cancelled = g->owner->cancel_requests;
  }
}

static void record_wake(weft_waiter *w, int reason) {
  group_record *r = (group_record *)w;
  weft_group *g = r->g;
  (void)reason;
  weft_queue_remove(&r->link);
  g->pending--;
  if (r->child->done.state == WEFT_FAILED)
    group_abort(g);
  if (g->pending == 0 && !g->in_body)
    weft__task_wake(g->owner, WEFT_WOKEN);
}

static int record_gc(lua_State *L) {
  group_record *r = (group_record *)lua_touserdata(L, 1);
  if (weft_queue_linked(&r->w.node))
    weft_queue_remove(&r->w.node);
  if (weft_queue_linked(&r->link))
    weft_queue_remove(&r->link);
  return 0;
}

static int group_spawn(lua_State *L) {
  weft_group *g = checkgroup(L, 1);
  group_record *r;
  weft_task *child;
  if (!g->open)
    return luaL_error(L, "group:spawn: the group has finished");
  if (g->failed)
    return luaL_error(L, "group:spawn: the group is shutting down after a failure");
  child = weft__spawn(L, g->owner->rt, lua_gettop(L) - 2);   /* task on top */
  r = (group_record *)lua_newuserdatauv(L, sizeof *r, 1);
  luaL_setmetatable(L, RECORD_MT);
  lua_pushvalue(L, -2);
  lua_setiuservalue(L, -2, 1);          /* the record keeps its child */
  r->g = g;
  r->child = child;
  r->cancelled = 0;
  r->w.wake = record_wake;
  weft_queue_insert_tail(&child->done.waiters, &r->w.node);
  weft_queue_insert_tail(&g->children, &r->link);
  g->pending++;
  if (g->shutting) {      /* spawned by a child while the group is cancelled */
    r->cancelled = 1;
    weft__task_cancel(L, child, 0);
  }
  lua_getiuservalue(L, 1, 2);
  lua_insert(L, -2);
  lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
  lua_pop(L, 1);
  return 1;
}

/* Stack while the group runs: 1 body, 2 group, 3 body results (packed),
   4 error to propagate (an outside cancellation), 5 the body's own error. */
enum { GR_GROUP = 2, GR_RESULTS = 3, GR_PROPAGATE = 4, GR_BODY_ERROR = 5 };

static void push_error_group(lua_State *L) {
  int n = 0, i, nrec;
  weft_group *g = checkgroup(L, GR_GROUP);
  (void)g;
  lua_newtable(L);                                  /* errors */
  if (!lua_isnil(L, GR_BODY_ERROR)) {
    lua_pushvalue(L, GR_BODY_ERROR);
    lua_rawseti(L, -2, ++n);
  }
  lua_getiuservalue(L, GR_GROUP, 2);
  nrec = (int)luaL_len(L, -1);
  for (i = 1; i <= nrec; i++) {
    weft_task *child;
    lua_rawgeti(L, -1, i);
    lua_getiuservalue(L, -1, 1);
    child = weft__task_at(WEFT_UPRT(L), L, -1);
    if (child->done.state == WEFT_FAILED) {
      weft__mark_observed(L, child);
      weft__push_outcome(L, -1);
      lua_rawseti(L, -5, ++n);
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  lua_rawgeti(L, -1, 1);
  weft__error_new(L, "ErrorGroup", "%d task%s failed, the first with: %s", n,
                  n == 1 ? "" : "s", luaL_tolstring(L, -1, NULL));
  lua_insert(L, -4);
  lua_pop(L, 2);
  lua_setfield(L, -2, "errors");
}

/* The group is its children's awaiter: their failures count as observed
   even when a cancellation propagates instead of the ErrorGroup. */
static void observe_children(lua_State *L) {
  int i, nrec;
  lua_getiuservalue(L, GR_GROUP, 2);
  nrec = (int)luaL_len(L, -1);
  for (i = 1; i <= nrec; i++) {
    lua_rawgeti(L, -1, i);
    lua_getiuservalue(L, -1, 1);
    weft__mark_observed(L, weft__task_at(WEFT_UPRT(L), L, -1));
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
}

static int group_wait(lua_State *L, int status, lua_KContext ctx);

static int group_end(lua_State *L) {
  weft_group *g = checkgroup(L, GR_GROUP);
  weft_task *t = g->owner;
  int n;
  if (g->pending > 0)
    return weft__suspend(L, t, "group", GR_GROUP, 0, group_wait);
  g->open = 0;
  if (!lua_isnil(L, GR_PROPAGATE)) {
    observe_children(L);
    lua_pushvalue(L, GR_PROPAGATE);
    return lua_error(L);
  }
  if (g->failed) {
    push_error_group(L);
    return lua_error(L);
  }
  lua_getfield(L, GR_RESULTS, "n");
  n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, n, "too many results");
  for (int i = 1; i <= n; i++)
    lua_rawgeti(L, GR_RESULTS, i);
  return n;
}

/* Stops waiting for the children (they stay as they are). */
static void group_detach(weft_group *g) {
  while (!weft_queue_empty(&g->children)) {
    group_record *r = weft_queue_data(weft_queue_head(&g->children), group_record, link);
    weft_queue_remove(&r->link);
    if (weft_queue_linked(&r->w.node))
      weft_queue_remove(&r->w.node);
  }
  g->pending = 0;
  g->open = 0;
}

static int group_wait(lua_State *L, int status, lua_KContext ctx) {
  weft_group *g = checkgroup(L, GR_GROUP);
  weft_task *t = g->owner;
  (void)status;
  (void)ctx;
  if (g->shutting && weft__pending_is(L, t, "Deadlock")) {
    /* the cancelled children caught it and wait for what never comes */
    group_detach(g);
    observe_children(L);
    return weft__raise_pending(L, t);
  }
  if (t->deliver) {             /* cancelled from outside while waiting */
    weft__keep_pending(L, t, GR_PROPAGATE);
    group_cancel_children(g);
  }
  return group_end(L);
}

static int group_body_done(lua_State *L, int status, lua_KContext ctx) {
  weft_group *g = checkgroup(L, GR_GROUP);
  weft_task *t = g->owner;
  int nres = lua_gettop(L) - GR_GROUP;
  /* as timeout's scope: a cancellation merged into the group's own is from
     outside; one delivered and caught before does not count */
  int merged = g->cancelled_owner &&
      (g->merged || (t->cancel_requests > g->count_cancelled && !t->deliver));
  (void)ctx;
  g->in_body = 0;
  if (g->cancelled_owner)
    weft__uncancel(t);
  if (status == LUA_OK || status == LUA_YIELD) {
    lua_createtable(L, nres, 1);
    lua_insert(L, GR_RESULTS);
    for (int i = nres; i >= 1; i--)
      lua_rawseti(L, GR_RESULTS, i);
    lua_pushinteger(L, nres);
    lua_setfield(L, GR_RESULTS, "n");
    lua_pushnil(L);
    lua_pushnil(L);
  } else {                      /* the error is on top */
    int cancelled = weft__error_is(L, -1, "Cancelled");
    int outside = cancelled && (!g->cancelled_owner || merged);
    lua_newtable(L);
    lua_insert(L, GR_RESULTS);                   /* results, error */
    if (outside) {
      lua_pushnil(L);                            /* results, propagate, nil */
    } else {
      lua_pushnil(L);
      lua_insert(L, GR_PROPAGATE);               /* results, nil, error */
      if (cancelled) {
        lua_pop(L, 1);
        lua_pushnil(L);
      }
    }
    if (outside)
      group_cancel_children(g);
    else if (!cancelled)
      group_abort(g);
  }
  lua_settop(L, GR_BODY_ERROR);
  return group_end(L);
}

static int group_tostring(lua_State *L) {
  weft_group *g = checkgroup(L, 1);
  lua_getiuservalue(L, 1, 1);
  lua_pushfstring(L, "weft.group created at %s (%d running)", lua_tostring(L, -1), g->pending);
  return 1;
}

static int combine_group(lua_State *L) {
  weft_task *t = weft__current(L, WEFT_UPRT(L), "weft.group");
  weft_group *g;
  check_callable(L, 1, "function");
  lua_settop(L, 1);
  g = (weft_group *)lua_newuserdatauv(L, sizeof *g, 2);
  memset(g, 0, sizeof *g);
  weft_queue_init(&g->children);
  g->owner = t;
  g->open = 1;
  g->in_body = 1;
  luaL_setmetatable(L, WEFT_GROUP_MT);
  weft__where(L, 1);
  lua_setiuservalue(L, -2, 1);
  lua_newtable(L);
  lua_setiuservalue(L, -2, 2);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, GR_GROUP);
  return group_body_done(L, lua_pcallk(L, 1, LUA_MULTRET, 0, 0, group_body_done), 0);
}

/* }======== */

static const luaL_Reg group_methods[] = {
  {"spawn", group_spawn},
  {NULL, NULL}
};

static const luaL_Reg combine_funcs[] = {
  {"gather", combine_gather},
  {"wait", combine_wait},
  {"wait_for", combine_wait_for},
  {"timeout", combine_timeout},
  {"group", combine_group},
  {NULL, NULL}
};

static const luaL_Reg multi_metas[] = {
  {"__gc", multi_gc},
  {NULL, NULL}
};

static const luaL_Reg scope_metas[] = {
  {"__close", scope_close},
  {"__gc", scope_gc},
  {NULL, NULL}
};

static const luaL_Reg record_metas[] = {
  {"__gc", record_gc},
  {NULL, NULL}
};

int weft__open_combine(lua_State *L, weft_runtime *rt) {
  weft__class(L, rt, MULTI_MT, NULL, NULL, multi_metas);
  weft__class(L, rt, SCOPE_MT, NULL, NULL, scope_metas);
  weft__class(L, rt, RECORD_MT, NULL, NULL, record_metas);
  lua_pop(L, 3);
  weft__new_class(L, rt, WEFT_GROUP_MT, group_methods, group_tostring);
  lua_pushlightuserdata(L, rt);
  luaL_setfuncs(L, combine_funcs, 1);
  return 0;
}
