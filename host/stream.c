/*
** stream.c: the one stream type of weft, over uv_stream_t, shared by TCP
** and Unix sockets (net.c) and process pipes (process.c, exec.c), as libuv's
** stream.c serves tcp, pipe and tty.
**
** Reading runs in the background into a buffer (up to STREAM_HIGH bytes
** that nobody asked for), with the handle unref'd: a stream keeps the loop
** alive only while a task waits on it (the handle is ref'd for that time).
** A read returns from the buffer when it can, else the task suspends until
** the read callback has what it waits for. A cancelled read leaves the
** bytes in the buffer. A write first tries uv_try_write and suspends only
** for what the kernel did not take (back-pressure); a cancelled write,
** shutdown or connect closes the stream, so no request is left behind.
**
** Ownership: the weft_stream (handle, requests, buffer) is malloc'd and
** freed in the close callback; the userdata holds a pointer to it, cleared
** by close. __gc and __close close. User value 1 is the peer's description.
** A C owner (exec.c) holds the pointer itself instead of a userdata, with
** s->slot pointing at its copy: close clears it as it clears the userdata's.
** User docs: docs/io.md (streams).
*/
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"

#define STREAM_CHUNK 65536            /* read space offered to libuv */
#define STREAM_HIGH (1024 * 1024)     /* unread bytes before reading pauses */
#define STREAM_NBUFS 16               /* strings one write takes without malloc */

enum { READ_ANY = 0, READ_LINE, READ_ALL };

/* {======== errors */

int weft__push_uv_error(lua_State *L, int rc, const char *what, const char *path) {
  if (path != NULL)
    weft__uv_error_new(L, "IOError", rc, "%s %s", what, path);
  else
    weft__uv_error_new(L, "IOError", rc, "%s", what);
  lua_pushstring(L, weft__uv_err_name(rc));
  lua_setfield(L, -2, "code");
  if (path != NULL) {
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
  }
  return 1;
}

int weft__raise_uv_error(lua_State *L, int rc, const char *what, const char *path) {
  weft__push_uv_error(L, rc, what, path);
  return lua_error(L);
}

/* }======== */

/* {======== life of a stream */

/* The CLI ignores SIGPIPE; under stock lua5.4 a write to a gone peer must
   be EPIPE too, so the first stream ignores it unless someone handles it. */
static void ignore_sigpipe(void) {
  static int done;
  struct sigaction sa;
  if (done)
    return;
  done = 1;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
    signal(SIGPIPE, SIG_IGN);
}

weft_stream *weft__stream_alloc(weft_runtime *rt) {
  weft_stream *s = (weft_stream *)calloc(1, sizeof *s);
  ignore_sigpipe();
  if (s != NULL) {
    s->rt = rt;
    s->u.handle.data = s;
  }
  return s;
}

uv_stream_t *weft__stream_handle(weft_stream *s) {
  return &s->u.stream;
}

void weft__stream_free_unused(weft_stream *s) {
  free(s);
}

static void stream_closed(uv_handle_t *h) {
  weft_stream *s = (weft_stream *)h->data;
  free(s->buf);
  free(s->wdata);
  free(s);
}

static void ref_for(weft_stream *s, int on) {
  if (on) {
    if (s->refs++ == 0)
      uv_ref(&s->u.handle);
  } else if (--s->refs == 0) {
    uv_unref(&s->u.handle);
  }
}

void weft__stream_close(weft_stream *s) {
  weft_task *r = s->reader, *w = s->writer;
  if (s->closed)
    return;
  s->closed = 1;
  if (s->slot != NULL)
    *s->slot = NULL;
  s->slot = NULL;
  s->reader = s->writer = NULL;
  if (r != NULL)
    weft__task_wake(r, WEFT_CLOSED);
  if (w != NULL)
    weft__task_wake(w, WEFT_CLOSED);
  /* Bytes weft read ahead but nobody took would make the kernel reset the
     connection had they stayed in the socket; send that reset so the peer
     does not take a cut-off conversation for a complete one. */
  if (s->u.handle.type == UV_TCP && s->len > s->off &&
      uv_tcp_close_reset(&s->u.tcp, stream_closed) == 0)
    return;
  uv_close(&s->u.handle, stream_closed);
}

/* }======== */

/* A buffer of any size: uv_buf_init takes an unsigned int length, which
   cuts 4 GiB and more to the length modulo 2^32 (a 4 GiB + 3 byte write
   sent 3 bytes); uv_buf_t's own len is a size_t on Unix. */
static uv_buf_t buf_of(char *base, size_t len) {
  uv_buf_t b;
  b.base = base;
  b.len = len;
  return b;
}

/* {======== reading in the background */

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  weft_stream *s = (weft_stream *)h->data;
  (void)hint;
  if (s->off == s->len) {
    s->off = s->len = 0;
  } else if (s->off > 0 && s->cap - s->len < STREAM_CHUNK) {
    memmove(s->buf, s->buf + s->off, s->len - s->off);
    s->len -= s->off;
    s->off = 0;
  }
  if (s->cap - s->len < STREAM_CHUNK) {
    size_t cap = s->cap ? s->cap * 2 : STREAM_CHUNK;
    char *grown;
    while (cap - s->len < STREAM_CHUNK)
      cap *= 2;
    grown = (char *)realloc(s->buf, cap);
    if (grown == NULL) {
      *b = uv_buf_init(NULL, 0);   /* libuv reports UV_ENOBUFS */
      return;
    }
    s->buf = grown;
    s->cap = cap;
  }
  *b = buf_of(s->buf + s->len, s->cap - s->len);
}

/* Can the waiting reader be served from the buffer now? */
static int satisfied(weft_stream *s) {
  size_t avail = s->len - s->off;
  if (s->eof || s->rerr)
    return 1;
  if (s->mode == READ_ANY)
    return avail > 0;
  if (s->mode == READ_LINE) {
    if (memchr(s->buf + s->off + s->scanned, '\n', avail - s->scanned) != NULL)
      return 1;
    s->scanned = avail;
  }
  return 0;
}

static void stop_reading(weft_stream *s) {
  if (s->reading) {
    uv_read_stop(&s->u.stream);
    s->reading = 0;
  }
}

static void read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *b) {
  weft_stream *s = (weft_stream *)h->data;
  (void)b;
  if (nread > 0) {
    s->len += (size_t)nread;
  } else if (nread == UV_EOF) {
    s->eof = 1;
    stop_reading(s);
  } else if (nread < 0) {
    s->rerr = (int)nread;
    stop_reading(s);
  }
  if (s->on_read != NULL) {
    s->on_read(s, nread);
    return;
  }
  if (s->reader != NULL && satisfied(s)) {
    weft_task *t = s->reader;
    s->reader = NULL;
    ref_for(s, 0);
    weft__task_wake(t, WEFT_WOKEN);
  }
  if (s->reader == NULL && s->len - s->off >= STREAM_HIGH)
    stop_reading(s);
}

static int start_reading(weft_stream *s) {
  int rc = 0;
  if (!s->reading && !s->eof && !s->rerr) {
    rc = uv_read_start(&s->u.stream, alloc_cb, read_cb);
    s->reading = rc == 0;
  }
  return rc;
}

int weft__stream_watch(weft_stream *s, void (*on_read)(weft_stream *s, ssize_t nread),
                       void *owner) {
  s->on_read = on_read;
  s->owner = owner;
  return start_reading(s);
}

/* }======== */

/* {======== the userdata */

static weft_stream **toslot(lua_State *L, int idx) {
  return (weft_stream **)luaL_checkudata(L, idx, WEFT_STREAM_MT);
}

weft_stream *weft__checkstream(lua_State *L, int idx) {
  weft_stream *s = *toslot(L, idx);
  if (s == NULL)
    luaL_error(L, "the stream is closed");
  return s;
}

void weft__stream_push(lua_State *L, weft_stream *s, const char *peer) {
  weft_stream **slot = (weft_stream **)lua_newuserdatauv(L, sizeof *slot, 1);
  *slot = s;
  s->slot = slot;
  s->inited = 1;
  luaL_setmetatable(L, WEFT_STREAM_MT);
  lua_pushstring(L, peer != NULL ? peer : "?");
  lua_setiuservalue(L, -2, 1);
  start_reading(s);
  uv_unref(&s->u.handle);
}

static int stream_gc(lua_State *L) {
  weft_stream *s = *toslot(L, 1);
  if (s != NULL)
    weft__stream_close(s);
  return 0;
}

static int stream_close(lua_State *L) {
  stream_gc(L);
  return 0;
}

static int stream_tostring(lua_State *L) {
  weft_stream *s = *toslot(L, 1);
  lua_getiuservalue(L, 1, 1);
  lua_pushfstring(L, "weft.stream (%s%s)", lua_tostring(L, -1), s ? "" : ", closed");
  return 1;
}

/* }======== */

/* {======== reads */

/* Pushes what the reader asked for from the buffer (s->mode), or raises
   the read error. The caller knows satisfied(s). */
static int take(lua_State *L, weft_stream *s, size_t n) {
  size_t avail = s->len - s->off;
  const char *p = s->buf + s->off;
  if (s->mode == READ_LINE) {
    const char *nl = avail ? (const char *)memchr(p, '\n', avail) : NULL;
    size_t used = nl ? (size_t)(nl - p) + 1 : avail, len = nl ? used - 1 : avail;
    if (nl == NULL && !(s->eof || s->rerr))
      return 0;
    if (nl == NULL && s->rerr)      /* a line cut off by a reset is no line */
      goto end;
    if (used == 0)
      goto end;
    if (nl != NULL && len > 0 && p[len - 1] == '\r')
      len--;
    lua_pushlstring(L, p, len);
    s->off += used;
    s->scanned = 0;
    return 1;
  }
  if (s->mode == READ_ALL && !(s->eof || s->rerr))
    return 0;
  if (avail > 0 && (s->mode == READ_ALL ? !s->rerr : 1)) {
    if (s->mode == READ_ANY && avail > n)
      avail = n;
    lua_pushlstring(L, p, avail);
    s->off += avail;
    s->scanned = 0;
    return 1;
  }
end:
  if (s->rerr)
    return weft__raise_uv_error(L, s->rerr, "stream read", NULL);
  if (s->mode == READ_ALL)
    lua_pushliteral(L, "");
  else
    lua_pushnil(L);
  return 1;
}

static int do_read(lua_State *L, weft_stream *s, int mode);

static int finish_read(lua_State *L, int status, lua_KContext ctx) {
  weft_task *t = WEFT_UPRT(L)->current;
  weft_stream *s = *toslot(L, 1);
  (void)status;
  if (s != NULL && s->reader == t) {
    s->reader = NULL;
    ref_for(s, 0);
  }
  weft__check_pending(L, t);
  if (s == NULL)
    return luaL_error(L, "the stream was closed while reading");
  return do_read(L, s, (int)ctx);
}

static const char *const read_names[] = {"stream:read", "stream:read_line", "stream:read_all"};

static int do_read(lua_State *L, weft_stream *s, int mode) {
  weft_runtime *rt = WEFT_UPRT(L);
  weft_task *t;
  size_t n = mode == READ_ANY ? (size_t)luaL_optinteger(L, 2, LUA_MAXINTEGER) : 0;
  int rc;
  s->mode = mode;
  if ((s->len > s->off || s->eof || s->rerr) && take(L, s, n))
    return 1;
  t = weft__current(L, rt, read_names[mode]);
  if (s->reader != NULL)
    return luaL_error(L, "%s: another task is already reading this stream", read_names[mode]);
  if ((rc = start_reading(s)) != 0)
    return weft__raise_uv_error(L, rc, "stream read", NULL);
  s->reader = t;
  s->mode = mode;
  ref_for(s, 1);
  return weft__suspend(L, t, "stream read", 1, (lua_KContext)mode, finish_read);
}

static int stream_read(lua_State *L) {
  weft_stream *s = weft__checkstream(L, 1);
  if (!lua_isnoneornil(L, 2))
    luaL_argcheck(L, luaL_checkinteger(L, 2) > 0, 2, "must be positive");
  lua_settop(L, 2);
  return do_read(L, s, READ_ANY);
}

static int stream_read_line(lua_State *L) {
  weft_stream *s = weft__checkstream(L, 1);
  lua_settop(L, 1);
  return do_read(L, s, READ_LINE);
}

static int stream_read_all(lua_State *L) {
  weft_stream *s = weft__checkstream(L, 1);
  lua_settop(L, 1);
  return do_read(L, s, READ_ALL);
}

/* }======== */

/* {======== writes and shutdown */

static void request_done(weft_stream *s, int status) {
  weft_task *t = s->writer;
  s->status = status;
  s->pending = 0;
  if (s->close_when_written) {
    weft__stream_close(s);
    return;
  }
  if (t != NULL) {
    s->writer = NULL;
    ref_for(s, 0);
    weft__task_wake(t, WEFT_WOKEN);
  }
}

static void write_cb(uv_write_t *req, int status) {
  request_done((weft_stream *)req->handle->data, status);
}

static void shutdown_cb(uv_shutdown_t *req, int status) {
  request_done((weft_stream *)req->handle->data, status);
}

/* Continuation of write and shutdown: ctx is 1 for shutdown. */
static int finish_request(lua_State *L, int status, lua_KContext ctx) {
  weft_task *t = WEFT_UPRT(L)->current;
  weft_stream *s = *toslot(L, 1);
  (void)status;
  if (s != NULL && s->pending) {      /* cancelled: leave no request behind */
    s->writer = NULL;
    weft__stream_close(s);
    s = NULL;
  }
  weft__check_pending(L, t);
  if (s == NULL)
    return luaL_error(L, "the stream was closed while writing");
  if (s->status < 0)
    return weft__raise_uv_error(L, s->status, ctx ? "stream shutdown" : "stream write", NULL);
  lua_settop(L, 1);
  return 1;
}

static weft_task *begin_request(lua_State *L, weft_stream *s, const char *what) {
  weft_task *t = weft__current(L, WEFT_UPRT(L), what);
  if (s->writer != NULL || s->pending)
    luaL_error(L, "%s: another task is already writing to this stream", what);
  return t;
}

static int suspend_request(lua_State *L, weft_stream *s, weft_task *t, int is_shutdown) {
  s->writer = t;
  s->pending = 1;
  ref_for(s, 1);
  return weft__suspend(L, t, is_shutdown ? "stream shutdown" : "stream write", 1,
                       is_shutdown, finish_request);
}

/* Drops the first 'done' bytes of bufs[0..*n), returning the rest. */
static uv_buf_t *advance(uv_buf_t *bufs, unsigned int *n, size_t done) {
  while (*n > 0 && done >= bufs->len) {
    done -= bufs->len;
    bufs++;
    (*n)--;
  }
  if (*n > 0) {
    bufs->base += done;
    bufs->len -= done;
  }
  return bufs;
}

/* Returns 0 when the kernel took everything, 1 when a write request was
   started for the rest, or a negative libuv error. */
static int write_bufs(weft_stream *s, uv_buf_t *bufs, unsigned int n, size_t total) {
  int rc = uv_try_write(&s->u.stream, bufs, n);
  if (rc >= 0 && (size_t)rc == total)
    return 0;
  if (rc < 0 && rc != UV_EAGAIN)
    return rc;
  bufs = advance(bufs, &n, rc > 0 ? (size_t)rc : 0);
  rc = uv_write(&s->wreq, &s->u.stream, bufs, n, write_cb);
  return rc < 0 ? rc : 1;
}

void weft__stream_write_close(weft_stream *s, char *data, size_t len) {
  uv_buf_t b = buf_of(data, len);
  s->wdata = data;
  s->close_when_written = 1;
  if (len == 0 || write_bufs(s, &b, 1, len) != 1)
    weft__stream_close(s);
}

static int stream_write(lua_State *L) {
  weft_stream *s = weft__checkstream(L, 1);
  int nargs = lua_gettop(L) - 1, i, rc;
  uv_buf_t small[STREAM_NBUFS], *bufs = small;
  size_t total = 0;
  weft_task *t;
  for (i = 1; i <= nargs; i++)
    luaL_checkstring(L, i + 1);
  t = begin_request(L, s, "stream:write");
  if (nargs > STREAM_NBUFS)   /* stays on the stack while used */
    bufs = (uv_buf_t *)lua_newuserdatauv(L, (size_t)nargs * sizeof *bufs, 0);
  for (i = 0; i < nargs; i++) {
    size_t len;
    const char *p = lua_tolstring(L, i + 2, &len);
    bufs[i] = buf_of((char *)p, len);
    total += len;
  }
  if (total == 0) {
    lua_settop(L, 1);
    return 1;
  }
  rc = write_bufs(s, bufs, (unsigned int)nargs, total);
  if (rc == 0) {
    lua_settop(L, 1);
    return 1;
  }
  if (rc < 0)
    return weft__raise_uv_error(L, rc, "stream write", NULL);
  return suspend_request(L, s, t, 0);
}

static int stream_shutdown(lua_State *L) {
  weft_stream *s = weft__checkstream(L, 1);
  weft_task *t = begin_request(L, s, "stream:shutdown");
  int rc;
  lua_settop(L, 1);
  rc = uv_shutdown(&s->sreq, &s->u.stream, shutdown_cb);
  if (rc < 0)
    return weft__raise_uv_error(L, rc, "stream shutdown", NULL);
  return suspend_request(L, s, t, 1);
}

/* }======== */

static const luaL_Reg stream_methods[] = {
  {"read", stream_read},
  {"read_line", stream_read_line},
  {"read_all", stream_read_all},
  {"write", stream_write},
  {"shutdown", stream_shutdown},
  {"close", stream_close},
  {NULL, NULL}
};

static const luaL_Reg stream_metas[] = {
  {"__tostring", stream_tostring},
  {"__gc", stream_gc},
  {"__close", stream_gc},
  {NULL, NULL}
};

int weft__open_stream(lua_State *L, weft_runtime *rt) {
  weft__class(L, rt, WEFT_STREAM_MT, stream_methods, NULL, stream_metas);
  lua_pop(L, 1);
  return 0;
}
