/*
** task.c: the task object: its memory and Lua object, its thread (from a
** pool of finished ones), a new task (weft__task_new, which the scheduler's
** weft__spawn makes ready), storing its outcome when it finishes
** (weft__task_finish), the outcome as Lua gets it, and what a suspended task
** waits on. A task is a Lua thread driven by C: the scheduler (sched.c)
** makes it ready, steps, suspends, wakes and finishes it; its methods are
** task_lua.c's. This file calls only below it (future.c's completions,
** runtime.c's clock): docs/internals.md "Who calls whom".
**
** Ownership: while unfinished, a task's object is held by its thread's
** slot of the runtime's anchor table (t->co_slot), and holds its thread (a
** user value), so dropping the handle in Lua loses nothing; when it
** finishes, the slot holds the thread again (pooled) or nothing (dropped);
** its results (or error) are user value 1. What a
** suspended task waits on stays on the waiting C frame's stack (t->on_L,
** t->on_idx); a pending error, then the traceback of a failure, is user
** value 3.
**
** One form: every task object starts with a pointer to its task
** (weft__task_ptr). weft.spawn's object holds the task right behind that
** pointer. A light task (weft__spawn_light, for run_graph's nodes) lives in
** a slab of task memory (weft__slab_take) whose chunks its spawner holds,
** and has no Lua object, registry ref or user values until something asks
** for its object (weft.current_task, weft.tasks, a cancellation, a failure,
** an instrument): weft__push_task then makes one, holding the spawner (and
** so the slab) alive. Code outside this file reaches a task's object only
** through weft__push_task.
*/
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define POOL_MAX 1024   /* finished threads kept for reuse */

/* {======== helpers */

/* Every task object starts with a pointer to its task: to the task right
   behind it (weft.spawn), or into a slab (a light task given an object
   late). This is the one way from an object to its task. */
weft_task *weft__task_ptr(lua_State *L, int idx) {
  return *(weft_task **)lua_touserdata(L, idx);
}

/* The rarely set values of the task object at obj (internal.h: WEFT_TASK_MORE_NAME
   ...) are kept in one table, user value MORE, made by the first set. */
int weft__task_getuv(lua_State *L, int obj, int which) {
  int type;
  if (lua_getiuservalue(L, obj, WEFT_TASK_UV_MORE) != LUA_TTABLE)
    return LUA_TNIL;   /* (it pushed nil) */
  type = lua_rawgeti(L, -1, which);
  lua_remove(L, -2);
  return type;
}

void weft__task_setuv(lua_State *L, int obj, int which) {
  obj = lua_absindex(L, obj);
  if (lua_getiuservalue(L, obj, WEFT_TASK_UV_MORE) != LUA_TTABLE) {
    lua_pop(L, 1);
    if (lua_isnil(L, -1)) {   /* it holds none: nothing to clear */
      lua_pop(L, 1);
      return;
    }
    lua_createtable(L, 3, 0);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, obj, WEFT_TASK_UV_MORE);
  }
  lua_insert(L, -2);
  lua_rawseti(L, -2, which);
  lua_pop(L, 1);
}

/* The object weft.spawn makes: the pointer, then the task itself. */
typedef struct task_object {
  weft_task *t;
  weft_task task;
} task_object;

weft_task *weft__totask(lua_State *L, int idx) {
  return luaL_testudata(L, idx, WEFT_TASK_MT) ? weft__task_ptr(L, idx) : NULL;
}

weft_task *weft__checktask(lua_State *L, int idx) {
  luaL_checkudata(L, idx, WEFT_TASK_MT);
  return weft__task_ptr(L, idx);
}

/* A task check that compares metatable pointers instead of looking the
   metatable up by name: the hot paths (await, gather) use it. */
weft_task *weft__task_at(weft_runtime *rt, lua_State *L, int idx) {
  weft_task **box = (weft_task **)lua_touserdata(L, idx);
  int is_task;
  if (box == NULL || lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx))
    return NULL;
  is_task = lua_topointer(L, -1) == rt->task_mt;
  lua_pop(L, 1);
  return is_task ? *box : NULL;
}

/* An unfinished task with an object is held by its thread's slot of the
   anchor table (t->co_slot), and holds its thread (user value THREAD):
   one table write anchors both, where a registry ref would be a second
   (and, with many tasks alive, a second table to grow). With the thread on
   top of L and the object at obj: takes the slot for the object (popping
   the thread). */
static void hold_object(lua_State *L, weft_task *t, int obj) {
  obj = lua_absindex(L, obj);
  lua_setiuservalue(L, obj, WEFT_TASK_UV_THREAD);
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->rt->anchor_ref);
  lua_pushvalue(L, obj);
  lua_rawseti(L, -2, t->co_slot);
  lua_pop(L, 1);
}

/* Gives a light task its object: the pointer, holding what holds it. The
   slot held its thread until now. */
static void new_box(lua_State *L, weft_task *t) {
  weft_task **box = (weft_task **)lua_newuserdatauv(L, sizeof *box, WEFT_TASK_UV_ANCHOR);
  *box = t;
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->rt->task_mt_ref);
  lua_setmetatable(L, -2);
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->anchor_ref);
  lua_setiuservalue(L, -2, WEFT_TASK_UV_ANCHOR);
}

static void make_object(lua_State *L, weft_task *t) {
  new_box(L, t);
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->rt->anchor_ref);
  lua_rawgeti(L, -1, t->co_slot);
  lua_remove(L, -2);                                      /* box, thread */
  hold_object(L, t, -2);
  t->light = 0;
}

/* Pushes an unfinished task (its thread's slot holds those). */
void weft__push_task(lua_State *L, weft_task *t) {
  if (weft_unlikely(t->light)) {
    lua_checkstack(L, 4);
    make_object(L, t);
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->rt->anchor_ref);
  lua_rawgeti(L, -1, t->co_slot);
  lua_remove(L, -2);
}

/* Pushes the name of t, whose object is at ud. */
void weft__push_name(lua_State *L, weft_task *t, int ud) {
  weft__task_getuv(L, ud, WEFT_TASK_MORE_NAME);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushfstring(L, "task-%I", (lua_Integer)t->id);
  }
}

/* Pushes the name of the task at idx in quotes, as messages show it: "main". */
void weft__push_task_name(lua_State *L, int idx) {
  weft_task *t = weft__checktask(L, idx);
  weft__push_name(L, t, lua_absindex(L, idx));
  lua_pushfstring(L, "\"%s\"", lua_tostring(L, -1));
  lua_remove(L, -2);
}

/* }======== */

/* {======== the slab of light task memory */

#define SLAB_CHUNK 64   /* light tasks made at once */

static void slab_push(lua_State *L, weft_task_slab *s, weft_task *t) {
  if (s->nspare == s->cap) {
    int cap = s->cap ? s->cap * 2 : SLAB_CHUNK;
    weft_task **p = (weft_task **)realloc(s->spare, (size_t)cap * sizeof *p);
    if (p == NULL)
      luaL_error(L, "weft: not enough memory for tasks");
    s->spare = p;
    s->cap = cap;
  }
  s->spare[s->nspare++] = t;
}

/* Memory for a light task: a spare one, or a new chunk of them appended to
   the table in user value uv of the owner at idx (the owner then holds the
   chunks, and a light task's object holds the owner). */
weft_task *weft__slab_take(lua_State *L, weft_task_slab *s, int owner, int uv) {
  if (s->nspare == 0) {
    weft_task *chunk;
    int i;
    lua_getiuservalue(L, owner, uv);
    chunk = (weft_task *)lua_newuserdatauv(L, SLAB_CHUNK * sizeof *chunk, 0);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pop(L, 1);
    for (i = SLAB_CHUNK - 1; i >= 0; i--)
      slab_push(L, s, &chunk[i]);
  }
  return s->spare[--s->nspare];
}

/* Gives back the memory of a light task that finished without an object.
   It is reused from the next give on: the finish that called its waiters
   is still on the C stack. */
void weft__slab_give(lua_State *L, weft_task_slab *s, weft_task *t) {
  if (s->release != NULL)
    slab_push(L, s, s->release);
  s->release = t;
}

void weft__slab_free(weft_task_slab *s) {
  free(s->spare);
  s->spare = NULL;
  s->nspare = s->cap = 0;
  s->release = NULL;
}

/* }======== */

/* {======== a new task: its object, its thread */

/* Threads are held by slots of one anchor table from creation until they
   are dropped, pooled or not, so taking and giving back a pooled thread is
   C bookkeeping only. */
static int new_slot(lua_State *L, weft_runtime *rt) {
  if (rt->nfree_slots > 0)
    return rt->free_slots[--rt->nfree_slots];
  if (rt->next_slot == 0x7fffffff)
    luaL_error(L, "weft: too many tasks");
  return ++rt->next_slot;
}

/* Empties a slot (its thread may be collected now) for reuse. With
   'object', the slot held a finished task's object, which lets go of the
   thread too. */
static void drop_slot(weft_runtime *rt, lua_State *co, int slot, int object) {
  int top = lua_gettop(co);
  lua_rawgeti(co, LUA_REGISTRYINDEX, rt->anchor_ref);
  if (object) {
    lua_rawgeti(co, -1, slot);
    lua_pushnil(co);
    lua_setiuservalue(co, -2, WEFT_TASK_UV_THREAD);
  }
  lua_pushnil(co);
  lua_rawseti(co, top + 1, slot);
  lua_settop(co, top);
  if (rt->nfree_slots == rt->cap_free_slots) {
    int cap = rt->cap_free_slots ? rt->cap_free_slots * 2 : 64;
    int *p = (int *)realloc(rt->free_slots, (size_t)cap * sizeof *p);
    if (p == NULL)
      return;   /* out of memory: this slot number is not reused */
    rt->free_slots = p;
    rt->cap_free_slots = cap;
  }
  rt->free_slots[rt->nfree_slots++] = slot;
}

/* Puts the thread on top of L (popped) in its empty slot: a light task's
   thread, until it has an object. */
static void hold_thread(lua_State *L, weft_runtime *rt, int slot) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->anchor_ref);
  lua_insert(L, -2);
  lua_rawseti(L, -2, slot);
  lua_pop(L, 1);
}

/* A thread for a new task, its anchor slot in *slot. A pooled thread's
   slot holds it; it is pushed on L only for an object (obj != 0) to hold.
   A new thread's slot is empty: it is pushed. */
static lua_State *take_thread(lua_State *L, weft_runtime *rt, int *slot, int obj) {
  lua_State *co;
  if (rt->npool > 0) {
    rt->npool--;
    *slot = rt->pool[rt->npool].slot;
    co = rt->pool[rt->npool].co;
    if (obj != 0) {
      lua_pushthread(co);
      lua_xmove(co, L, 1);
    }
    return co;
  }
  *slot = new_slot(L, rt);
  co = lua_newthread(L);
  if (obj == 0)
    hold_thread(L, rt, *slot);
  return co;
}

/* Can the finished task t's thread go back to the pool? */
static int poolable(weft_runtime *rt, weft_task *t, lua_State *co) {
  /* Lua leaves hooks off (allowhook 0) in a thread whose hook raised an
     error that no pcall caught, and lua_resetthread does not turn them
     back on: pooled, that thread could never be interrupted again */
  if (t->hook_raised)
    return 0;
  if (rt->pool == NULL)
    rt->pool = malloc(POOL_MAX * sizeof *rt->pool);
  return rt->npool < POOL_MAX && rt->pool != NULL && lua_gethookmask(co) == 0;
}

/* Puts a finished task's thread in the pool, its slot holding it ('held':
   it does already, else it is put there). */
static void pool_thread(weft_runtime *rt, lua_State *co, int slot, int held) {
  if (!held) {
    lua_rawgeti(co, LUA_REGISTRYINDEX, rt->anchor_ref);
    lua_pushthread(co);
    lua_rawseti(co, -2, slot);
    lua_pop(co, 1);
  }
  rt->pool[rt->npool].co = co;
  rt->pool[rt->npool].slot = slot;
  rt->npool++;
}

static void init_task(weft_runtime *rt, weft_task *t, double started) {
  memset(t, 0, sizeof *t);
  t->rt = rt;
  t->id = rt->next_id++;
  t->started = started;
  t->label = rt->current != NULL ? rt->current->label : 0;   /* inherited */
  weft_queue_init(&t->wait.node);
  weft_queue_init(&t->ready_node);
  t->deadline.slot = WEFT_HEAP_NONE;
  weft__completion_init(&t->done);
}

/* With [object,] fn, args... on top of L: gives the task a thread, moves fn
   and args to it (popping them; the object, if any, at obj, stays) and puts
   it on the live list. The scheduler makes it ready (weft__spawn). */
static void start_task(lua_State *L, weft_runtime *rt, weft_task *t, int nargs, int obj) {
  lua_State *co;
  if (weft_unlikely(rt->debug)) {   /* then there is an object (spawn_light made one) */
    weft__where(L, 1);
    if (strcmp(lua_tostring(L, -1), "?") != 0)
      weft__task_setuv(L, obj, WEFT_TASK_MORE_CREATED);
    else
      lua_pop(L, 1);
  }
  co = take_thread(L, rt, &t->co_slot, obj);
  if (obj != 0)
    hold_object(L, t, obj);
  t->co = co;
  lua_xmove(L, co, nargs + 1);
  t->state = WEFT_T_NEW;
  weft_queue_insert_tail(&rt->live, &t->live_node);
  rt->nlive++;
}

/* A task for fn(args...) from the top nargs + 1 slots of L, replacing them
   with its object: what weft__spawn makes ready. */
weft_task *weft__task_new(lua_State *L, weft_runtime *rt, int nargs) {
  int fidx = lua_gettop(L) - nargs;
  task_object *obj;
  weft_task *t;
  if (!lua_isfunction(L, fidx) && luaL_getmetafield(L, fidx, "__call") == LUA_TNIL)
    luaL_typeerror(L, fidx, "function");
  else if (!lua_isfunction(L, fidx))
    lua_pop(L, 1);
  obj = (task_object *)lua_newuserdatauv(L, sizeof *obj, WEFT_TASK_NUV);
  t = obj->t = &obj->task;
  init_task(rt, t, weft__now(rt));
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->task_mt_ref);
  lua_setmetatable(L, -2);
  lua_insert(L, fidx);                        /* task, fn, args... */
  start_task(L, rt, t, nargs, fidx);
  return t;
}

/* Light tasks: see weft__spawn_light in internal.h. */
void weft__task_new_light(lua_State *L, weft_runtime *rt, weft_task *t, int nargs,
                          int anchor_ref) {
  /* a graph starts many at once: the turn's clock is close enough */
  init_task(rt, t, rt->turn_clock);
  t->light = 1;
  t->anchor_ref = anchor_ref;
  if (weft_unlikely(rt->debug || rt->instruments)) {   /* both want the object */
    lua_checkstack(L, 4);
    new_box(L, t);
    lua_insert(L, -(nargs + 2));
    t->light = 0;
    start_task(L, rt, t, nargs, lua_absindex(L, -(nargs + 2)));
    lua_pop(L, 1);
    return;
  }
  start_task(L, rt, t, nargs, 0);
}

/* }======== */

/* {======== finishing */

void weft__mark_observed(lua_State *L, weft_task *t) {
  if (t->done.observed)
    return;
  t->done.observed = 1;
  if (t->done.state == WEFT_FAILED) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->rt->unobserved_ref);
    lua_pushlightuserdata(L, t);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
  }
}

static void store_results(lua_State *co, weft_task *t, int nres) {
  /* stack: results..., task */
  if (nres == 1) {
    lua_pushvalue(co, -2);
  } else if (nres > 1) {
    int i;
    lua_createtable(co, nres, 0);
    for (i = 1; i <= nres; i++) {
      lua_pushvalue(co, -(nres + 3) + i);
      lua_rawseti(co, -2, i);
    }
  } else {
    /* no results: user value 1 stays nil */
    t->done.nresults = 0;
    t->done.state = WEFT_DONE;
    return;
  }
  lua_setiuservalue(co, -2, WEFT_TASK_UV_RESULTS);
  t->done.nresults = nres;
  t->done.state = WEFT_DONE;
}

/* The error is on top of co. Takes the traceback while the stack is intact,
   then closes the thread so its to-be-closed variables run (one of them may
   replace the error, as in Lua). Works on the main thread's stack. */
static void store_error(weft_runtime *rt, lua_State *co, weft_task *t) {
  lua_State *L = rt->L;
  int cancelled;
  weft__push_task(L, t);                                  /* task */
  if (!weft__error_is(co, -1, "Cancelled")) {
    luaL_traceback(co, co, NULL, 0);
    lua_xmove(co, L, 1);                                  /* task, traceback */
  } else {
    lua_pushnil(L);
  }
  if (lua_status(co) != LUA_OK)   /* not when it never started */
    weft_closethread(co, L);
  lua_xmove(co, L, 1);                                    /* task, tb, error */
  lua_settop(co, 0);
  cancelled = weft__error_is(L, -1, "Cancelled");
  lua_setiuservalue(L, -3, WEFT_TASK_UV_RESULTS);
  weft__task_setuv(L, -2, WEFT_TASK_MORE_TRACEBACK);
  t->done.state = cancelled ? WEFT_CANCELLED : WEFT_FAILED;
  if (!cancelled) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->unobserved_ref);
    lua_pushlightuserdata(L, t);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* Marks t finished and takes it off the live list; its waiters are woken
   next. Its thread (t->co) goes back with weft__task_release, or at once for
   a light task with no object (light_finish). */
static void retire(weft_runtime *rt, weft_task *t) {
  t->deliver = 0;
  t->on = NULL;
  t->state = WEFT_T_FINISHED;
  weft_queue_remove(&t->live_node);
  rt->nlive--;
}

/* A light task that returned: its waiters (run_graph) take the first
   result from the top of rt->L, and t is not touched after they ran. */
static void light_finish(weft_runtime *rt, weft_task *t, int nres) {
  lua_State *co = t->co, *L = rt->L;
  lua_checkstack(L, 4);
  if (nres > 0) {
    lua_pushvalue(co, -nres);
    lua_xmove(co, L, 1);
  } else {
    lua_pushnil(L);
  }
  t->done.nresults = nres > 0;
  t->done.state = WEFT_DONE;
  retire(rt, t);
  t->co = NULL;
  lua_settop(co, 0);
  if (poolable(rt, t, co))
    pool_thread(rt, co, t->co_slot, 1);
  else
    drop_slot(rt, co, t->co_slot, 0);
  weft__completion_wake_all(&t->done);
  lua_pop(L, 1);
}

/* The outcome of a task that returned results or failed (or returned while
   a cancellation was pending), stored through its object. */
static void store_outcome(weft_runtime *rt, weft_task *t, int status, int nres) {
  lua_State *co = t->co;
  lua_checkstack(co, 8);
  lua_checkstack(rt->L, 8);
  if (status != LUA_OK) {
    store_error(rt, co, t);   /* the traceback replaces any pending error */
    return;
  }
  weft__push_task(co, t);
  store_results(co, t, nres);
  if (t->deliver) {   /* a cancellation that came too late: forget it */
    lua_pushnil(co);
    weft__task_setuv(co, -2, WEFT_TASK_MORE_PENDING);
  }
}

int weft__task_finish(weft_runtime *rt, weft_task *t, int status, int nres) {
  if (t->light) {
    if (status == LUA_OK && !rt->instruments) {
      light_finish(rt, t, nres);
      return 0;
    }
    weft__push_task(rt->L, t);   /* a failure keeps its error and traceback there */
    lua_pop(rt->L, 1);
  }
  if (status == LUA_OK && nres == 0 && !t->deliver) {
    t->done.nresults = 0;   /* user value 1 stays nil: the object is not needed */
    t->done.state = WEFT_DONE;
  } else {
    store_outcome(rt, t, status, nres);
  }
  retire(rt, t);
  weft__completion_wake_all(&t->done);
  return 1;
}

/* Lets go of a finished task (after weft__task_finish returned 1 and the
   finished hooks ran): its slot holds its thread again, pooled, or nothing;
   from here its object lives only while Lua holds it. A dropped thread is
   let go by the object too, so that finished tasks a list still holds do
   not keep their threads alive. (A pooled one stays in the object's user
   value: the pool holds it anyway, and clearing it costs a lookup.) */
void weft__task_release(weft_runtime *rt, weft_task *t) {
  lua_State *co = t->co;
  t->co = NULL;
  lua_settop(co, 0);   /* (drop_slot needs its room too) */
  if (poolable(rt, t, co)) {
    pool_thread(rt, co, t->co_slot, 0);
    return;
  }
  drop_slot(rt, co, t->co_slot, 1);
}

/* }======== */

/* {======== outcomes */

/* Pushes the results of the finished task at idx, or raises its error
   unchanged. */
int weft__push_results(lua_State *L, int idx) {
  weft_task *t = weft__task_ptr(L, idx);   /* callers checked it */
  int n = t->done.nresults;
  weft__mark_observed(L, t);
  lua_getiuservalue(L, idx, WEFT_TASK_UV_RESULTS);
  if (t->done.state != WEFT_DONE) {
    /* The REPL shows where a re-raised error was first raised: it reads
       registry["weft.reraised"] = {error, traceback} (stdlib/weft/repl.lua). */
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, 1);
    weft__task_getuv(L, idx, WEFT_TASK_MORE_TRACEBACK);
    lua_rawseti(L, -2, 2);
    lua_setfield(L, LUA_REGISTRYINDEX, "weft.reraised");
    return lua_error(L);
  }
  return weft__unpack_results(L, n);
}

/* Pushes the first result of the finished task at idx, or its error value. */
void weft__push_outcome(lua_State *L, int idx) {
  weft_task *t = weft__task_ptr(L, idx);   /* callers checked it */
  if (t->done.state == WEFT_DONE && t->done.nresults == 0) {
    lua_pushnil(L);
    return;
  }
  lua_getiuservalue(L, idx, WEFT_TASK_UV_RESULTS);
  if (t->done.state == WEFT_DONE && t->done.nresults > 1) {
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
  }
}

/* }======== */

/* {======== wait descriptions */

void weft__push_awaited(lua_State *L, weft_task *t) {
  if (t->state != WEFT_T_SUSPENDED || t->on_idx == 0) {
    lua_pushnil(L);
    return;
  }
  lua_pushvalue(t->on_L, t->on_idx);
  lua_xmove(t->on_L, L, 1);
}

void weft__describe_wait(lua_State *L, weft_task *t) {
  const char *on = t->on ? t->on : "nothing";
  weft__push_awaited(L, t);
  if (strcmp(on, "task") == 0 && weft__totask(L, -1)) {
    lua_pushliteral(L, "task ");
    weft__push_task_name(L, -2);
    lua_concat(L, 2);
  } else if (strcmp(on, "sleep") == 0 && weft_deadline_armed(&t->deadline)) {
    char left[64];
    double s = t->deadline.when - weft__now(t->rt);
    snprintf(left, sizeof left, s < 1e9 ? "sleep (%.3f s left)" : "sleep (%.3g s left)", s);
    lua_pushstring(L, left);
  } else if (lua_type(L, -1) == LUA_TUSERDATA &&
             lua_getiuservalue(L, -1, 1) == LUA_TSTRING) {
    lua_pushfstring(L, "%s created at %s", on, lua_tostring(L, -1));
    lua_remove(L, -2);
  } else {
    if (lua_type(L, -1) == LUA_TUSERDATA)
      lua_pop(L, 1);
    lua_pushstring(L, on);
  }
  lua_remove(L, -2);
}

/* }======== */

