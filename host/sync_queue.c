/*
** sync_queue.c: weft.queue, a FIFO of Lua values between tasks, bounded or
** not, with close().
**
** Direct hand-off without moving values between stacks: an item put while a
** getter waits stays in the ring but is reserved for that getter
** (get_reserved), which takes the front item when it resumes; a slot freed
** while a putter waits is reserved for it (put_reserved). A woken waiter
** that is cancelled before it resumes gives its reservation back and the
** next waiter gets it, so no item or slot is ever lost.
**
** Ownership: user value 1 is the creation "file:line", user value 2 the
** ring (a table indexed 1..cap).
** User docs: docs/reference.md "Primitives" (weft.queue).
*/
#include "internal.h"

typedef struct weft_fifo {
  weft_queue getters, putters;
  lua_Integer maxsize;          /* 0: unbounded */
  lua_Integer head, count, cap; /* ring: items at head, head+1 ... (mod cap) */
  lua_Integer get_reserved;     /* items promised to woken getters */
  lua_Integer put_reserved;     /* slots promised to woken putters */
  int closed;
} weft_fifo;

enum { UV_WHERE = 1, UV_RING = 2 };

static weft_fifo *checkfifo(lua_State *L, int idx) {
  return (weft_fifo *)luaL_checkudata(L, idx, WEFT_QUEUE_MT);
}

static lua_Integer available(weft_fifo *f) {
  return f->count - f->get_reserved;
}

static int has_room(weft_fifo *f) {
  return f->maxsize == 0 || f->count + f->put_reserved < f->maxsize;
}

/* Promises items to waiting getters and slots to waiting putters. */
static void dispatch(weft_fifo *f) {
  while (!weft_queue_empty(&f->getters) && available(f) > 0) {
    f->get_reserved++;
    weft__wake_waiters(&f->getters, WEFT_WOKEN, 1);
  }
  while (!weft_queue_empty(&f->putters) && has_room(f)) {
    f->put_reserved++;
    weft__wake_waiters(&f->putters, WEFT_WOKEN, 1);
  }
}

/* Appends the value on top of L (popping it); q is the queue's index. */
static void ring_push(lua_State *L, int q, weft_fifo *f) {
  lua_getiuservalue(L, q, UV_RING);
  if (f->count == f->cap) {   /* grow: lay the items out again from 1 */
    lua_Integer cap = f->cap ? f->cap * 2 : 8, i;
    lua_createtable(L, (int)cap, 0);
    for (i = 0; i < f->count; i++) {
      lua_rawgeti(L, -2, (f->head + i) % f->cap + 1);
      lua_rawseti(L, -2, i + 1);
    }
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, q, UV_RING);
    lua_remove(L, -2);
    f->head = 0;
    f->cap = cap;
  }
  lua_rotate(L, -2, 1);                           /* ring, value */
  lua_rawseti(L, -2, (f->head + f->count) % f->cap + 1);
  lua_pop(L, 1);
  f->count++;
}

/* Pushes the front item and removes it. */
static void ring_pop(lua_State *L, int q, weft_fifo *f) {
  lua_Integer slot = f->head + 1;
  lua_getiuservalue(L, q, UV_RING);
  lua_rawgeti(L, -1, slot);
  lua_pushnil(L);
  lua_rawseti(L, -3, slot);
  lua_remove(L, -2);
  f->head = (f->head + 1) % f->cap;
  f->count--;
}

static int queue_new(lua_State *L) {
  lua_Integer maxsize = luaL_optinteger(L, 1, 0);
  weft_fifo *f;
  luaL_argcheck(L, maxsize >= 0, 1, "must not be negative");
  f = (weft_fifo *)lua_newuserdatauv(L, sizeof *f, 2);
  weft_queue_init(&f->getters);
  weft_queue_init(&f->putters);
  f->maxsize = maxsize;
  f->head = f->count = f->cap = 0;
  f->get_reserved = f->put_reserved = 0;
  f->closed = 0;
  luaL_setmetatable(L, WEFT_QUEUE_MT);
  weft__where(L, 1);
  lua_setiuservalue(L, -2, UV_WHERE);
  lua_newtable(L);
  lua_setiuservalue(L, -2, UV_RING);
  return 1;
}

static int closed_error(lua_State *L, const char *what) {
  return luaL_error(L, "queue:%s: the queue is closed", what);
}

/* {======== put */

static int put_now(lua_State *L, weft_fifo *f) {
  lua_pushvalue(L, 2);
  ring_push(L, 1, f);
  dispatch(f);
  return 0;
}

static int finish_put(lua_State *L, int status, lua_KContext ctx) {
  weft_task *t = WEFT_UPRT(L)->current;
  weft_fifo *f = checkfifo(L, 1);
  (void)status;
  (void)ctx;
  if (t->wake_reason == WEFT_WOKEN) {   /* a slot was promised to us */
    f->put_reserved--;
    if (t->deliver || f->closed) {
      dispatch(f);
      weft__check_pending(L, t);
      return closed_error(L, "put");
    }
    return put_now(L, f);
  }
  weft__check_pending(L, t);
  return closed_error(L, "put");        /* WEFT_CLOSED */
}

static int queue_put(lua_State *L) {
  weft_fifo *f = checkfifo(L, 1);
  weft_task *t;
  luaL_argcheck(L, !lua_isnoneornil(L, 2), 2, "queue items cannot be nil");
  lua_settop(L, 2);
  if (f->closed)
    return closed_error(L, "put");
  t = weft__current(L, WEFT_UPRT(L), "queue:put");
  if (has_room(f) && weft_queue_empty(&f->putters))
    return put_now(L, f);
  weft_queue_insert_tail(&f->putters, &t->wait.node);
  return weft__suspend(L, t, "queue", 1, 0, finish_put);
}

static int queue_put_nowait(lua_State *L) {
  weft_fifo *f = checkfifo(L, 1);
  luaL_argcheck(L, !lua_isnoneornil(L, 2), 2, "queue items cannot be nil");
  lua_settop(L, 2);
  if (f->closed)
    return closed_error(L, "put_nowait");
  if (!has_room(f) || !weft_queue_empty(&f->putters)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  put_now(L, f);
  lua_pushboolean(L, 1);
  return 1;
}

/* }======== */

/* {======== get */

static int get_now(lua_State *L, weft_fifo *f) {
  ring_pop(L, 1, f);
  dispatch(f);
  return 1;
}

static int finish_get(lua_State *L, int status, lua_KContext ctx) {
  weft_task *t = WEFT_UPRT(L)->current;
  weft_fifo *f = checkfifo(L, 1);
  (void)status;
  (void)ctx;
  if (t->wake_reason == WEFT_WOKEN) {   /* an item was promised to us */
    f->get_reserved--;
    if (t->deliver) {
      dispatch(f);                       /* the next getter gets it */
      return weft__raise_pending(L, t);
    }
    return get_now(L, f);
  }
  weft__check_pending(L, t);
  if (available(f) > 0)                  /* WEFT_CLOSED */
    return get_now(L, f);
  lua_pushnil(L);
  return 1;
}

static int queue_get(lua_State *L) {
  weft_fifo *f = checkfifo(L, 1);
  weft_task *t = weft__current(L, WEFT_UPRT(L), "queue:get");
  lua_settop(L, 1);
  if (available(f) > 0 && weft_queue_empty(&f->getters))
    return get_now(L, f);
  if (f->closed) {
    lua_pushnil(L);
    return 1;
  }
  weft_queue_insert_tail(&f->getters, &t->wait.node);
  return weft__suspend(L, t, "queue", 1, 0, finish_get);
}

static int queue_get_nowait(lua_State *L) {
  weft_fifo *f = checkfifo(L, 1);
  lua_settop(L, 1);
  if (available(f) > 0)
    return get_now(L, f);
  lua_pushnil(L);
  return 1;
}

/* }======== */

static int queue_size(lua_State *L) {
  lua_pushinteger(L, available(checkfifo(L, 1)));
  return 1;
}

static int queue_empty(lua_State *L) {
  lua_pushboolean(L, available(checkfifo(L, 1)) == 0);
  return 1;
}

static int queue_full(lua_State *L) {
  lua_pushboolean(L, !has_room(checkfifo(L, 1)));
  return 1;
}

static int queue_close(lua_State *L) {
  weft_fifo *f = checkfifo(L, 1);
  if (!f->closed) {
    f->closed = 1;
    weft__wake_waiters(&f->putters, WEFT_CLOSED, -1);
    weft__wake_waiters(&f->getters, WEFT_CLOSED, -1);
  }
  return 0;
}

static int queue_tostring(lua_State *L) {
  weft_fifo *f = checkfifo(L, 1);
  lua_getiuservalue(L, 1, UV_WHERE);
  lua_pushfstring(L, "weft.queue created at %s (%I items%s)", lua_tostring(L, -1),
                  available(f), f->closed ? ", closed" : "");
  return 1;
}

static const luaL_Reg queue_methods[] = {
  {"put", queue_put}, {"get", queue_get}, {"put_nowait", queue_put_nowait},
  {"get_nowait", queue_get_nowait}, {"size", queue_size}, {"empty", queue_empty},
  {"full", queue_full}, {"close", queue_close}, {NULL, NULL}
};

static const luaL_Reg queue_funcs[] = {
  {"queue", queue_new},
  {NULL, NULL}
};

int weft__open_queue(lua_State *L, weft_runtime *rt) {
  weft__new_class(L, rt, WEFT_QUEUE_MT, queue_methods, queue_tostring);
  lua_pushlightuserdata(L, rt);
  luaL_setfuncs(L, queue_funcs, 1);
  return 0;
}
