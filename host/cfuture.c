/*
** cfuture.c: futures that C code resolves (weft.h "C awaitables"). A C
** function creates one with weft_future_new, returns it to Lua, and later
** resolves it exactly once with weft_future_set / fail / fail_message, or
** from any thread with weft_future_post (delivered through one uv_async per
** runtime). If Lua stops waiting first (the awaiting task was cancelled,
** or f:cancel()), the cancel callback tells C to abandon the operation.
**
** Ownership: the C struct is malloc'd and freed by the one resolving call;
** while pending it holds a registry reference to its Lua future. The
** runtime counts pending C futures (rt->cfutures_pending): they keep the
** run alive (it is not a Deadlock while C still owes a result), through the
** referenced async. It sits above future_lua.c and runtime.c; the runtime's
** close reaches it through rt->cfutures_close, which it sets.
**
** Threads: posting threads touch only the post box, which outlives the
** runtime (reference-counted by the runtime and by every C future not yet
** freed). Closing sets box->closed and cuts the futures loose under the
** box's lock, so a post either was queued before (its push still runs at
** close, to free its data) or sees 'closed' and frees its future.
*/
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "weft.h"

enum { CF_PENDING, CF_CANCELLED };

typedef struct post post;

/* What posting threads share with the loop thread. */
typedef struct postbox {
  uv_mutex_t lock;
  int closed;                 /* the runtime closed: posts are refused */
  int refs;                   /* the runtime, and each C future not yet freed */
  uv_async_t *async;          /* valid while !closed */
  post *head, *tail;
} postbox;

struct weft_cfuture {
  weft_cfuture_hook hook;     /* first: the Lua future's view of us */
  weft_runtime *rt;           /* NULL once the runtime has closed (loop thread only) */
  postbox *box;               /* never changes */
  weft_queue link;            /* in the runtime's list of C futures */
  int ref;                    /* registry ref to the Lua future, while pending */
  int state;
  weft_cancel_fn on_cancel;
  void *cancel_ud;
};

struct post {
  post *next;
  weft_cfuture *f;
  weft_push_fn push;
  void *data;
};

/* Per runtime, created on first use. */
typedef struct cf_state {
  uv_async_t async;
  postbox *box;
  weft_queue futures;         /* every unresolved C future (rt->cfutures_pending) */
} cf_state;

/* Drops one reference to b (under its lock), freeing it with the last. */
static void box_unref(postbox *b) {
  int last;
  uv_mutex_lock(&b->lock);
  last = --b->refs == 0;
  uv_mutex_unlock(&b->lock);
  if (last) {
    uv_mutex_destroy(&b->lock);
    free(b);
  }
}

static cf_state *state_of(weft_runtime *rt) {
  return (cf_state *)rt->cfutures;
}

static void update_ref(weft_runtime *rt, cf_state *s) {
  if (rt->cfutures_pending > 0)
    uv_ref((uv_handle_t *)&s->async);
  else
    uv_unref((uv_handle_t *)&s->async);
}

static void deliver_posts(uv_async_t *h);
static void cfutures_close(weft_runtime *rt);

static cf_state *get_state(weft_runtime *rt) {
  cf_state *s = state_of(rt);
  if (s != NULL)
    return s;
  s = (cf_state *)calloc(1, sizeof *s);
  if (s != NULL)
    s->box = (postbox *)calloc(1, sizeof *s->box);
  if (s == NULL || s->box == NULL || uv_mutex_init(&s->box->lock) != 0) {
    if (s != NULL)
      free(s->box);
    free(s);
    return NULL;
  }
  s->box->refs = 1;
  s->box->async = &s->async;
  uv_async_init(rt->loop, &s->async, deliver_posts);
  s->async.data = rt;
  weft_queue_init(&s->futures);
  update_ref(rt, s);
  rt->cfutures = s;
  rt->cfutures_close = cfutures_close;
  rt->nhandles_open++;
  return s;
}

/* Frees f after its one resolving call. */
static void release(weft_cfuture *f) {
  if (f->rt != NULL) {
    cf_state *s = state_of(f->rt);
    if (f->ref != LUA_NOREF)
      luaL_unref(f->rt->L, LUA_REGISTRYINDEX, f->ref);
    weft_queue_remove(&f->link);
    f->rt->cfutures_pending--;
    update_ref(f->rt, s);
  }
  box_unref(f->box);
  free(f);
}

static void hook_cancelled(weft_cfuture_hook *hook) {
  weft_cfuture *f = (weft_cfuture *)hook;
  f->state = CF_CANCELLED;
  if (f->on_cancel != NULL)
    f->on_cancel(f, f->cancel_ud);
}

weft_cfuture *weft_future_new(lua_State *L) {
  /* find, never make: a runtime made here would hand out a future of no weft.future type */
  weft_runtime *rt = weft__runtime_find(L);
  if (rt == NULL) {
    luaL_error(L, "weft_future_new: weft is not open in this Lua state");
    return NULL;
  }
  cf_state *s = get_state(rt);
  weft_cfuture *f = s ? (weft_cfuture *)calloc(1, sizeof *f) : NULL;
  if (f == NULL) {
    luaL_error(L, "weft_future_new: out of memory");
    return NULL;
  }
  f->rt = rt;
  f->box = s->box;
  uv_mutex_lock(&s->box->lock);
  s->box->refs++;
  uv_mutex_unlock(&s->box->lock);
  f->state = CF_PENDING;
  f->hook.cancelled = hook_cancelled;
  weft__future_push_c(L, rt, &f->hook);
  lua_pushvalue(L, -1);
  f->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  weft_queue_insert_tail(&s->futures, &f->link);
  rt->cfutures_pending++;
  update_ref(rt, s);
  return f;
}

static int resolve(weft_cfuture *f, lua_State *L, int state, int nvalues) {
  int rc = -1;
  if (f->rt != NULL && f->state == CF_PENDING) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, f->ref);
    lua_insert(L, -(nvalues + 1));
    rc = weft__future_complete(L, -(nvalues + 1), state, nvalues);
    lua_pop(L, 1);
  } else {
    lua_pop(L, nvalues);
  }
  release(f);
  return rc;
}

int weft_future_set(weft_cfuture *f, lua_State *L, int nvalues) {
  return resolve(f, L, WEFT_DONE, nvalues);
}

int weft_future_fail(weft_cfuture *f, lua_State *L) {
  return resolve(f, L, WEFT_FAILED, 1);
}

int weft_future_fail_message(weft_cfuture *f, const char *message) {
  lua_State *L;
  if (f->rt == NULL) {
    release(f);
    return -1;
  }
  L = f->rt->L;
  lua_pushstring(L, message);
  return resolve(f, L, WEFT_FAILED, 1);
}

void weft_future_on_cancel(weft_cfuture *f, weft_cancel_fn fn, void *ud) {
  f->on_cancel = fn;
  f->cancel_ud = ud;
}

/* {======== posting from other threads */

int weft_future_post(weft_cfuture *f, weft_push_fn push, void *data) {
  postbox *b = f->box;
  post *p = (post *)malloc(sizeof *p);
  uv_mutex_lock(&b->lock);
  if (b->closed || p == NULL) {
    uv_mutex_unlock(&b->lock);
    free(p);
    if (b->closed) {           /* cut loose at close: nobody else has f now */
      box_unref(b);
      free(f);
    }
    return -1;
  }
  p->next = NULL;
  p->f = f;
  p->push = push;
  p->data = data;
  if (b->tail != NULL)
    b->tail->next = p;
  else
    b->head = p;
  b->tail = p;
  uv_async_send(b->async);
  uv_mutex_unlock(&b->lock);
  return 0;
}

/* Takes every queued post, in order. */
static post *take_posts(postbox *b) {
  post *p;
  uv_mutex_lock(&b->lock);
  p = b->head;
  b->head = b->tail = NULL;
  uv_mutex_unlock(&b->lock);
  return p;
}

static void deliver_posts(uv_async_t *h) {
  weft_runtime *rt = (weft_runtime *)h->data;
  cf_state *s = state_of(rt);
  lua_State *L = rt->L;
  post *p = take_posts(s->box);
  while (p != NULL) {
    post *next = p->next;
    int top = lua_gettop(L), n = p->push(L, p->data);
    if (n >= 0)
      weft_future_set(p->f, L, n);
    else
      weft_future_fail(p->f, L);
    lua_settop(L, top);
    free(p);
    p = next;
  }
}

/* }======== */

static void state_closed(uv_handle_t *h) {
  weft_runtime *rt = (weft_runtime *)h->data;
  cf_state *s = (cf_state *)((char *)h - offsetof(cf_state, async));
  free(s);
  weft__handle_closed(rt);
}

/* At runtime close: posts are refused from now on, C futures still
   unresolved are cut loose (their resolving call only frees them), posts
   already queued run their push (so the application frees its data) and
   their values are dropped, and the async closes. */
static void cfutures_close(weft_runtime *rt) {
  cf_state *s = state_of(rt);
  postbox *b;
  post *p;
  if (s == NULL)
    return;
  b = s->box;
  uv_mutex_lock(&b->lock);
  b->closed = 1;
  p = b->head;
  b->head = b->tail = NULL;
  while (!weft_queue_empty(&s->futures)) {
    weft_cfuture *f = weft_queue_data(weft_queue_head(&s->futures), weft_cfuture, link);
    weft_queue_remove(&f->link);
    f->rt = NULL;
  }
  uv_mutex_unlock(&b->lock);
  while (p != NULL) {
    post *next = p->next;
    int top = lua_gettop(rt->L);
    p->push(rt->L, p->data);
    lua_settop(rt->L, top);
    release(p->f);
    free(p);
    p = next;
  }
  rt->cfutures = NULL;
  rt->cfutures_close = NULL;
  box_unref(b);
  uv_close((uv_handle_t *)&s->async, state_closed);
}
