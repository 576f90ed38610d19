/*
** sync.c: weft.event, weft.lock, weft.semaphore and weft.condition.
**
** A lock is a semaphore of one that refuses a release while unlocked, so both
** share one slot type: a count and a FIFO of waiting tasks. A released slot
** goes straight to the longest waiter (direct hand-off): release() links it
** to that waiter and wakes it with WEFT_WOKEN; if the waiter is cancelled
** before it resumes, its continuation passes the slot on. An interrupted
** waiter was unlinked by the wake-up, so it leaves no trace.
**
** Ownership: each object keeps the "file:line" of its creation in user value
** 1 (wait descriptions), a condition its lock in user value 2, and a lock or
** semaphore the guard that `with` closes in user value 2.
** User docs: docs/reference.md "Primitives" (all but queue and future).
*/
#include "internal.h"

/* {======== event */

typedef struct weft_event {
  weft_queue waiters;
  int set;
} weft_event;

static weft_event *checkevent(lua_State *L, int idx) {
  return (weft_event *)luaL_checkudata(L, idx, WEFT_EVENT_MT);
}

static void *new_object(lua_State *L, size_t size, const char *mt, int nuv) {
  void *p = lua_newuserdatauv(L, size, nuv);
  luaL_setmetatable(L, mt);
  weft__where(L, 1);
  lua_setiuservalue(L, -2, 1);
  return p;
}

static int event_new(lua_State *L) {
  weft_event *e = (weft_event *)new_object(L, sizeof *e, WEFT_EVENT_MT, 1);
  weft_queue_init(&e->waiters);
  e->set = 0;
  return 1;
}

static int event_set(lua_State *L) {
  weft_event *e = checkevent(L, 1);
  if (!e->set) {
    e->set = 1;
    weft__wake_waiters(&e->waiters, WEFT_WOKEN, -1);
  }
  return 0;
}

static int event_clear(lua_State *L) {
  checkevent(L, 1)->set = 0;
  return 0;
}

static int event_is_set(lua_State *L) {
  lua_pushboolean(L, checkevent(L, 1)->set);
  return 1;
}

/* Continuation of every wait that only needs "woken or interrupted". */
static int finish_wait(lua_State *L, int status, lua_KContext ctx) {
  weft_task *t = WEFT_UPRT(L)->current;
  (void)status;
  (void)ctx;
  weft__check_pending(L, t);
  lua_pushboolean(L, 1);
  return 1;
}

static int event_wait(lua_State *L) {
  weft_event *e = checkevent(L, 1);
  weft_task *t = weft__current(L, WEFT_UPRT(L), "event:wait");
  lua_settop(L, 1);
  if (e->set) {
    lua_pushboolean(L, 1);
    return 1;
  }
  weft_queue_insert_tail(&e->waiters, &t->wait.node);
  return weft__suspend(L, t, "event", 1, 0, finish_wait);
}

static int event_tostring(lua_State *L) {
  weft_event *e = checkevent(L, 1);
  lua_getiuservalue(L, 1, 1);
  lua_pushfstring(L, "weft.event created at %s (%s)", lua_tostring(L, -1),
                  e->set ? "set" : "clear");
  return 1;
}

/* }======== */

/* {======== slots: lock and semaphore */

typedef struct weft_slots {
  weft_queue waiters;
  lua_Integer value;   /* free slots */
  int is_lock;
} weft_slots;

static weft_slots *toslots(lua_State *L, int idx) {
  weft_slots *s = (weft_slots *)luaL_testudata(L, idx, WEFT_LOCK_MT);
  if (s == NULL)
    s = (weft_slots *)luaL_testudata(L, idx, WEFT_SEMAPHORE_MT);
  return s;
}

static weft_slots *checkslots(lua_State *L, int idx) {
  weft_slots *s = toslots(L, idx);
  if (s == NULL)
    luaL_typeerror(L, idx, "weft.lock or weft.semaphore");
  return s;
}

static const char *slots_kind(weft_slots *s) {
  return s->is_lock ? "lock" : "semaphore";
}

/* Takes a slot at once if one is free and nobody is queued before us. */
static int slots_try(weft_slots *s) {
  if (s->value > 0 && weft_queue_empty(&s->waiters)) {
    s->value--;
    return 1;
  }
  return 0;
}

/* Gives a slot back: to the longest waiter if there is one. */
static void slots_release(weft_slots *s) {
  if (!weft_queue_empty(&s->waiters))
    weft__wake_waiters(&s->waiters, WEFT_WOKEN, 1);
  else
    s->value++;
}

/* After a wait for a slot: a slot handed over to a task that was cancelled
   before it resumed is passed on; then the pending error is raised. */
static void slots_settle(lua_State *L, weft_slots *s, weft_task *t) {
  if (t->deliver) {
    if (t->wake_reason == WEFT_WOKEN)
      slots_release(s);
    weft__raise_pending(L, t);
  }
}

static int finish_acquire(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  slots_settle(L, toslots(L, 1), WEFT_UPRT(L)->current);
  lua_pushboolean(L, 1);
  return 1;
}

static int slots_acquire(lua_State *L) {
  weft_slots *s = checkslots(L, 1);
  weft_task *t = weft__current(L, WEFT_UPRT(L), s->is_lock ? "lock:acquire" : "semaphore:acquire");
  lua_settop(L, 1);
  if (slots_try(s)) {
    lua_pushboolean(L, 1);
    return 1;
  }
  weft_queue_insert_tail(&s->waiters, &t->wait.node);
  return weft__suspend(L, t, slots_kind(s), 1, 0, finish_acquire);
}

static int slots_release_m(lua_State *L) {
  weft_slots *s = checkslots(L, 1);
  if (s->is_lock && s->value > 0)
    return luaL_error(L, "lock:release: the lock is not acquired");
  slots_release(s);
  return 0;
}

static int lock_new(lua_State *L) {
  weft_slots *s = (weft_slots *)new_object(L, sizeof *s, WEFT_LOCK_MT, 2);
  weft_queue_init(&s->waiters);
  s->value = 1;
  s->is_lock = 1;
  return 1;
}

static int semaphore_new(lua_State *L) {
  lua_Integer n = luaL_optinteger(L, 1, 1);
  weft_slots *s;
  luaL_argcheck(L, n >= 0, 1, "must not be negative");
  s = (weft_slots *)new_object(L, sizeof *s, WEFT_SEMAPHORE_MT, 2);
  weft_queue_init(&s->waiters);
  s->value = n;
  s->is_lock = 0;
  return 1;
}

static int lock_locked(lua_State *L) {
  weft_slots *s = checkslots(L, 1);
  lua_pushboolean(L, s->value == 0);
  return 1;
}

static int semaphore_value(lua_State *L) {
  lua_pushinteger(L, checkslots(L, 1)->value);
  return 1;
}

static int slots_tostring(lua_State *L) {
  weft_slots *s = checkslots(L, 1);
  lua_getiuservalue(L, 1, 1);
  if (s->is_lock)
    lua_pushfstring(L, "weft.lock created at %s (%s)", lua_tostring(L, -1),
                    s->value == 0 ? "locked" : "unlocked");
  else
    lua_pushfstring(L, "weft.semaphore created at %s (value %I)", lua_tostring(L, -1),
                    s->value);
  return 1;
}

/* }======== */

/* {======== with: acquire, call, release on any exit */

/* The guard is a to-be-closed value whose __close releases its slots. */
static int guard_close(lua_State *L) {
  lua_getiuservalue(L, 1, 1);
  slots_release(checkslots(L, -1));
  return 0;
}

static void push_guard(lua_State *L, int obj) {
  if (lua_getiuservalue(L, obj, 2) != LUA_TUSERDATA) {
    lua_pop(L, 1);
    lua_newuserdatauv(L, 0, 1);
    luaL_setmetatable(L, "weft.guard");
    lua_pushvalue(L, obj);
    lua_setiuservalue(L, -2, 1);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, obj, 2);
  }
}

static int with_done(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return lua_gettop(L) - (int)ctx;
}

/* Stack: slots object at 'obj', then the function and its arguments. */
static int with_call(lua_State *L, int obj) {
  int fn = obj + 1;
  push_guard(L, obj);
  lua_insert(L, fn);
  lua_toclose(L, fn);
  lua_callk(L, lua_gettop(L) - fn - 1, LUA_MULTRET, fn, with_done);
  return with_done(L, LUA_OK, fn);
}

static int finish_with(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  slots_settle(L, toslots(L, (int)ctx), WEFT_UPRT(L)->current);
  return with_call(L, (int)ctx);
}

/* Acquires the slots at 'obj', then runs the function after it. */
static int with_slots(lua_State *L, int obj) {
  weft_slots *s = checkslots(L, obj);
  weft_task *t;
  if (lua_type(L, obj + 1) != LUA_TFUNCTION) {
    if (luaL_getmetafield(L, obj + 1, "__call") == LUA_TNIL)
      luaL_typeerror(L, obj + 1, "function");
    lua_pop(L, 1);
  }
  t = weft__current(L, WEFT_UPRT(L), "with");
  if (slots_try(s))
    return with_call(L, obj);
  weft_queue_insert_tail(&s->waiters, &t->wait.node);
  return weft__suspend(L, t, slots_kind(s), obj, obj, finish_with);
}

static int slots_with(lua_State *L) {
  return with_slots(L, 1);
}

/* }======== */

/* {======== condition */

typedef struct weft_condition {
  weft_queue waiters;
} weft_condition;

static weft_condition *checkcond(lua_State *L, int idx) {
  return (weft_condition *)luaL_checkudata(L, idx, WEFT_CONDITION_MT);
}

/* Pushes the condition's lock and returns it. */
static weft_slots *cond_lock(lua_State *L, int idx) {
  lua_getiuservalue(L, idx, 2);
  return toslots(L, -1);
}

static int condition_new(lua_State *L) {
  weft_condition *c;
  if (!lua_isnoneornil(L, 1))
    luaL_argexpected(L, luaL_testudata(L, 1, WEFT_LOCK_MT) != NULL, 1, "weft.lock");
  else {
    lua_settop(L, 0);
    lock_new(L);
  }
  c = (weft_condition *)new_object(L, sizeof *c, WEFT_CONDITION_MT, 2);
  weft_queue_init(&c->waiters);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 2);
  return 1;
}

/* Methods that the condition forwards to its lock. */
static int forward(lua_State *L, lua_CFunction f) {
  checkcond(L, 1);
  cond_lock(L, 1);
  lua_replace(L, 1);
  return f(L);
}

static int condition_acquire(lua_State *L) { return forward(L, slots_acquire); }
static int condition_release(lua_State *L) { return forward(L, slots_release_m); }
static int condition_locked(lua_State *L) { return forward(L, lock_locked); }
static int condition_with(lua_State *L) { return forward(L, slots_with); }

/* Stack during wait: 1 condition, 2 lock, 3 error to raise once the lock is
   back (nil if none). Phase 1 waits for a notify, phase 2 for the lock. */
enum { COND_NOTIFY = 1, COND_RELOCK = 2 };

static int finish_cond_wait(lua_State *L, int status, lua_KContext ctx);

static int cond_relock(lua_State *L, weft_task *t) {
  weft_slots *lock = toslots(L, 2);
  if (slots_try(lock)) {
    if (!lua_isnil(L, 3)) {
      lua_pushvalue(L, 3);
      return lua_error(L);   /* the saved error, the lock held again */
    }
    lua_pushboolean(L, 1);
    return 1;
  }
  weft_queue_insert_tail(&lock->waiters, &t->wait.node);
  return weft__suspend(L, t, "lock", 2, COND_RELOCK, finish_cond_wait);
}

static int finish_cond_wait(lua_State *L, int status, lua_KContext ctx) {
  weft_task *t = WEFT_UPRT(L)->current;
  int woken = t->wake_reason == WEFT_WOKEN;
  (void)status;
  if (ctx == COND_NOTIFY && woken && t->deliver)   /* pass the notification on */
    weft__wake_waiters(&checkcond(L, 1)->waiters, WEFT_WOKEN, 1);
  if (ctx == COND_RELOCK && !woken && weft__pending_is(L, t, "Deadlock"))
    return weft__raise_pending(L, t);   /* the lock can never come back */
  weft__keep_pending(L, t, 3);   /* the first interruption: raised once the lock is held */
  if (ctx == COND_RELOCK && woken) {
    if (!lua_isnil(L, 3)) {
      lua_pushvalue(L, 3);
      return lua_error(L);
    }
    lua_pushboolean(L, 1);
    return 1;
  }
  return cond_relock(L, t);
}

static int condition_wait(lua_State *L) {
  weft_condition *c = checkcond(L, 1);
  weft_task *t = weft__current(L, WEFT_UPRT(L), "condition:wait");
  weft_slots *lock;
  lua_settop(L, 1);
  lock = cond_lock(L, 1);                 /* 2 */
  lua_pushnil(L);                         /* 3 */
  if (lock->value > 0)
    return luaL_error(L, "condition:wait: the lock is not acquired");
  slots_release(lock);
  weft_queue_insert_tail(&c->waiters, &t->wait.node);
  return weft__suspend(L, t, "condition", 1, COND_NOTIFY, finish_cond_wait);
}

static void check_notify(lua_State *L, const char *what) {
  weft_slots *lock = cond_lock(L, 1);
  if (lock->value > 0)
    luaL_error(L, "condition:%s: the lock is not acquired", what);
  lua_pop(L, 1);
}

static int condition_notify(lua_State *L) {
  weft_condition *c = checkcond(L, 1);
  lua_Integer n = luaL_optinteger(L, 2, 1);
  luaL_argcheck(L, n >= 0, 2, "must not be negative");
  check_notify(L, "notify");
  if (n > 0)
    weft__wake_waiters(&c->waiters, WEFT_WOKEN, n);
  return 0;
}

static int condition_notify_all(lua_State *L) {
  weft_condition *c = checkcond(L, 1);
  check_notify(L, "notify_all");
  weft__wake_waiters(&c->waiters, WEFT_WOKEN, -1);
  return 0;
}

static int condition_tostring(lua_State *L) {
  checkcond(L, 1);
  lua_getiuservalue(L, 1, 1);
  lua_pushfstring(L, "weft.condition created at %s", lua_tostring(L, -1));
  return 1;
}

/* }======== */

static const luaL_Reg event_methods[] = {
  {"set", event_set}, {"clear", event_clear}, {"is_set", event_is_set},
  {"wait", event_wait}, {NULL, NULL}
};

static const luaL_Reg lock_methods[] = {
  {"acquire", slots_acquire}, {"release", slots_release_m},
  {"locked", lock_locked}, {"with", slots_with}, {NULL, NULL}
};

static const luaL_Reg semaphore_methods[] = {
  {"acquire", slots_acquire}, {"release", slots_release_m},
  {"value", semaphore_value}, {"locked", lock_locked}, {"with", slots_with},
  {NULL, NULL}
};

static const luaL_Reg condition_methods[] = {
  {"acquire", condition_acquire}, {"release", condition_release},
  {"locked", condition_locked}, {"with", condition_with},
  {"wait", condition_wait}, {"notify", condition_notify},
  {"notify_all", condition_notify_all}, {NULL, NULL}
};

static const luaL_Reg sync_funcs[] = {
  {"event", event_new}, {"lock", lock_new}, {"semaphore", semaphore_new},
  {"condition", condition_new}, {NULL, NULL}
};

static const luaL_Reg guard_metas[] = {
  {"__close", guard_close},
  {NULL, NULL}
};

int weft__open_sync(lua_State *L, weft_runtime *rt) {
  weft__class(L, rt, "weft.guard", NULL, NULL, guard_metas);
  lua_pop(L, 1);
  weft__new_class(L, rt, WEFT_EVENT_MT, event_methods, event_tostring);
  weft__new_class(L, rt, WEFT_LOCK_MT, lock_methods, slots_tostring);
  weft__new_class(L, rt, WEFT_SEMAPHORE_MT, semaphore_methods, slots_tostring);
  weft__new_class(L, rt, WEFT_CONDITION_MT, condition_methods, condition_tostring);
  lua_pushlightuserdata(L, rt);
  luaL_setfuncs(L, sync_funcs, 1);
  return 0;
}
