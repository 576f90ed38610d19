/*
** thread.c: weft.thread(fn, ...): runs fn(...) on libuv's thread pool in a
** fresh Lua state with the standard libraries, and returns its results to
** the awaiting task.
**
** fn travels as its string.dump (no upvalues: its _ENV is the worker's
** globals); arguments and results travel in a small binary copy format
** (nil, booleans, numbers, strings and tables of those, no cycles). The
** worker never touches the caller's state. A failure comes back as a
** string: the worker's message with its traceback.
**
** Ownership: a malloc'd job carries the code, the copied arguments and the
** copied results; after_work frees it when its task has left (cancelled:
** the result is abandoned, the thread is not interrupted), otherwise the
** task's continuation does. The pool is sized to CPUs + 4 unless
** UV_THREADPOOL_SIZE is set (see size_pool). User docs: docs/io.md (weft.thread).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include "io.h"

#define COPY_MAX_DEPTH 100

/* {======== the copy format */

typedef struct sbuf {
  char *p;
  size_t n, cap;
  const char *err;         /* why a value could not be copied */
} sbuf;

static void put(sbuf *b, const void *data, size_t len) {
  if (b->err)
    return;
  if (b->n + len > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 256;
    char *grown;
    while (cap < b->n + len)
      cap *= 2;
    if ((grown = (char *)realloc(b->p, cap)) == NULL) {
      b->err = "out of memory";
      return;
    }
    b->p = grown;
    b->cap = cap;
  }
  memcpy(b->p + b->n, data, len);
  b->n += len;
}

static void put_tag(sbuf *b, char tag) {
  put(b, &tag, 1);
}

static void encode(lua_State *L, int idx, sbuf *b, int depth) {
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
    case LUA_TNIL: put_tag(b, 'n'); break;
    case LUA_TBOOLEAN: put_tag(b, lua_toboolean(L, idx) ? 't' : 'f'); break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        lua_Integer i = lua_tointeger(L, idx);
        put_tag(b, 'i');
        put(b, &i, sizeof i);
      } else {
        lua_Number d = lua_tonumber(L, idx);
        put_tag(b, 'd');
        put(b, &d, sizeof d);
      }
      break;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      put_tag(b, 's');
      put(b, &len, sizeof len);
      put(b, s, len);
      break;
    }
    case LUA_TTABLE:
      if (depth >= COPY_MAX_DEPTH) {
        b->err = "tables nested too deep (or a cycle)";
        return;
      }
      put_tag(b, 'T');
      lua_pushnil(L);
      while (!b->err && lua_next(L, idx)) {
        encode(L, -2, b, depth + 1);
        encode(L, -1, b, depth + 1);
        lua_pop(L, 1);
      }
      if (b->err)
        lua_pop(L, 1);
      put_tag(b, 'E');
      break;
    default:
      if (!b->err)
        b->err = lua_typename(L, lua_type(L, idx));
  }
}

/* Pushes the next value of [*p, end); returns 0 on malformed input. */
static int decode(lua_State *L, const char **p, const char *end) {
  char tag;
  if (*p >= end)
    return 0;
  luaL_checkstack(L, 3, "weft.thread: copy");
  tag = *(*p)++;
  switch (tag) {
    case 'n': lua_pushnil(L); return 1;
    case 't': lua_pushboolean(L, 1); return 1;
    case 'f': lua_pushboolean(L, 0); return 1;
    case 'i': {
      lua_Integer i;
      memcpy(&i, *p, sizeof i);
      *p += sizeof i;
      lua_pushinteger(L, i);
      return 1;
    }
    case 'd': {
      lua_Number d;
      memcpy(&d, *p, sizeof d);
      *p += sizeof d;
      lua_pushnumber(L, d);
      return 1;
    }
    case 's': {
      size_t len;
      memcpy(&len, *p, sizeof len);
      *p += sizeof len;
      lua_pushlstring(L, *p, len);
      *p += len;
      return 1;
    }
    case 'T':
      lua_newtable(L);
      while (*p < end && **p != 'E') {
        if (!decode(L, p, end) || !decode(L, p, end))
          return 0;
        lua_rawset(L, -3);
      }
      (*p)++;
      return 1;
    default:
      return 0;
  }
}

/* Copies values [first, top] into b; 0 or raises naming the bad one. */
static void encode_all(lua_State *L, int first, sbuf *b, const char *what) {
  int i, top = lua_gettop(L);
  for (i = first; i <= top; i++) {
    encode(L, i, b, 0);
    if (b->err) {
      const char *err = b->err;
      free(b->p);
      b->p = NULL;
      luaL_error(L, "weft.thread: %s %d cannot be copied (%s)", what, i - first + 1, err);
    }
  }
}

static int decode_all(lua_State *L, const char *p, size_t len) {
  const char *end = p + len;
  int n = 0;
  while (p < end) {
    if (!decode(L, &p, end))
      return luaL_error(L, "weft.thread: malformed copy");
    n++;
  }
  return n;
}

/* }======== */

/* {======== the job */

typedef struct job {
  uv_work_t req;
  weft_task *task;          /* NULL once the waiter left */
  char *code, *args, *out;  /* dumped function, copied args, results or message */
  size_t ncode, nargs, nout;
  int failed;
  int done;
} job;

static void job_free(job *j) {
  free(j->code);
  free(j->args);
  free(j->out);
  free(j);
}

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud) {
  (void)L;
  put((sbuf *)ud, p, sz);
  return ((sbuf *)ud)->err != NULL;
}

static int worker_traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL)
    msg = luaL_tolstring(L, 1, NULL);
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* The loaded function's upvalues: _ENV is the globals, the rest nil (the
   loader put the globals in the first one, whatever its name). */
static void set_env(lua_State *L) {
  const char *name;
  int i;
  for (i = 1; (name = lua_getupvalue(L, -1, i)) != NULL; i++) {
    lua_pop(L, 1);
    if (strcmp(name, "_ENV") == 0)
      lua_pushglobaltable(L);
    else
      lua_pushnil(L);
    lua_setupvalue(L, -2, i);
  }
}

/* In the worker state: load, copy in, call, copy out. */
static int worker_main(lua_State *L) {
  job *j = (job *)lua_touserdata(L, 1);
  sbuf out = {NULL, 0, 0, NULL};
  int base;
  luaL_openlibs(L);
  lua_pushcfunction(L, worker_traceback);
  base = lua_gettop(L);
  if (luaL_loadbufferx(L, j->code, j->ncode, "=weft.thread", "b") != LUA_OK)
    return lua_error(L);
  set_env(L);
  decode_all(L, j->args, j->nargs);
  if (lua_pcall(L, lua_gettop(L) - base - 1, LUA_MULTRET, base) != LUA_OK)
    return lua_error(L);
  encode_all(L, base + 1, &out, "result");
  j->out = out.p;
  j->nout = out.n;
  return 0;
}

static void work_cb(uv_work_t *req) {
  job *j = (job *)req->data;
  lua_State *L = luaL_newstate();
  size_t len;
  const char *msg;
  if (L == NULL) {
    j->failed = 1;
    return;
  }
  lua_pushcfunction(L, worker_main);
  lua_pushlightuserdata(L, j);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    msg = lua_tolstring(L, -1, &len);
    if (msg == NULL)
      msg = "(error object is not a string)", len = strlen(msg);
    free(j->out);
    j->out = (char *)malloc(len ? len : 1);
    if (j->out != NULL)
      memcpy(j->out, msg, len);
    j->nout = j->out ? len : 0;
    j->failed = 1;
  }
  lua_close(L);
}

static void after_work_cb(uv_work_t *req, int status) {
  job *j = (job *)req->data;
  if (j->task == NULL) {
    job_free(j);
    return;
  }
  if (status == UV_ECANCELED)
    j->failed = 1;
  j->done = 1;
  weft__task_wake(j->task, WEFT_WOKEN);
}

/* }======== */

static int finish_thread(lua_State *L, int status, lua_KContext ctx) {
  job *j = (job *)ctx;
  weft_task *t = WEFT_UPRT(L)->current;
  int n;
  (void)status;
  if (!j->done) {                   /* cancelled: abandon the result */
    j->task = NULL;
    uv_cancel((uv_req_t *)&j->req);
    return weft__raise_pending(L, t);
  }
  lua_settop(L, 0);
  if (j->failed) {
    lua_pushlstring(L, j->out ? j->out : "weft.thread: the worker failed", j->out ? j->nout : 30);
    job_free(j);
    return lua_error(L);
  }
  n = decode_all(L, j->out, j->nout);
  job_free(j);
  weft__check_pending(L, t);
  return n;
}

static int thread_run(lua_State *L) {
  weft_runtime *rt = WEFT_UPRT(L);
  sbuf code = {NULL, 0, 0, NULL}, args = {NULL, 0, 0, NULL};
  weft_task *t;
  job *j;
  int rc;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  weft__size_pool();
  if (lua_iscfunction(L, 1))
    return luaL_argerror(L, 1, "a Lua function expected (a C function cannot be copied)");
  t = weft__current(L, rt, "weft.thread");
  encode_all(L, 2, &args, "argument");
  lua_pushvalue(L, 1);
  lua_dump(L, dump_writer, &code, 0);
  lua_pop(L, 1);
  if (code.err || (j = (job *)calloc(1, sizeof *j)) == NULL) {
    free(code.p);
    free(args.p);
    return luaL_error(L, "weft.thread: out of memory");
  }
  j->code = code.p, j->ncode = code.n;
  j->args = args.p, j->nargs = args.n;
  j->req.data = j;
  j->task = t;
  if ((rc = uv_queue_work(rt->loop, &j->req, work_cb, after_work_cb)) < 0) {
    job_free(j);
    return weft__raise_uv_error(L, rc, "weft.thread", NULL);
  }
  lua_settop(L, 0);
  return weft__suspend(L, t, "thread", 0, (lua_KContext)j, finish_thread);
}

static void noop_work(uv_work_t *req) {
  (void)req;
}

static void noop_after(uv_work_t *req, int status) {
  (void)req;
  (void)status;
}

/* Sizes the pool unless the user did: libuv reads UV_THREADPOOL_SIZE when
   the pool starts, so it is set, the pool started with a no-op job on a
   throwaway loop, and the variable removed again (children do not inherit
   it; luv leaks a little when it sees one). No effect if already started.
   Done on first use of the pool (weft.thread, weft.fs, name resolution),
   not at require time, since starting threads would triple startup. The
   pool is process-wide in libuv, so is the flag saying it was sized. */
void weft__size_pool(void) {
  static int sized;
  char buf[32];
  uv_loop_t tmp;
  uv_work_t w;
  if (sized)
    return;
  sized = 1;
  if (getenv("UV_THREADPOOL_SIZE") != NULL || uv_loop_init(&tmp) != 0)
    return;
  snprintf(buf, sizeof buf, "%u", uv_available_parallelism() + 4);
  setenv("UV_THREADPOOL_SIZE", buf, 1);
  if (uv_queue_work(&tmp, &w, noop_work, noop_after) == 0)
    uv_run(&tmp, UV_RUN_DEFAULT);
  unsetenv("UV_THREADPOOL_SIZE");
  uv_loop_close(&tmp);
}

/* weft._size_pool(): for stdlib modules about to use the pool. */
static int thread_size_pool(lua_State *L) {
  (void)L;
  weft__size_pool();
  return 0;
}

int weft__open_thread(lua_State *L, weft_runtime *rt) {
  lua_pushcfunction(L, thread_size_pool);
  lua_setfield(L, -2, "_size_pool");
  lua_pushlightuserdata(L, rt);
  lua_pushcclosure(L, thread_run, 1);
  lua_setfield(L, -2, "thread");
  return 0;
}
