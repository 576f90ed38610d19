/*
** net.c: weft.net: connect and listen on TCP and Unix domain sockets, and
** resolve. Streams are stream.c's.
**
** connect resolves through the loop (uv_getaddrinfo on the thread pool;
** numeric hosts skip it), then tries each address in turn; its 'timeout'
** bounds the whole call and the task's own deadline carries it. A cancelled
** resolve is uv_cancel'd and its request freed by its callback; a cancelled
** connect closes the half-made stream (libuv then fails the connect
** request before the close callback frees it).
**
** A server is a malloc'd listening handle plus a userdata that holds a
** registry reference to itself while it listens, so a server nobody refers
** to goes on serving until closed. Each connection runs the Lua function
** stdlib/weft/net_serve.lua's serve as a task: handler(stream) under xpcall, then the stream is
** closed and a failure printed (with the peer) without failing the task.
** User values: 1 handler, 2 set of running handler tasks, 3 Unix path.
** User docs: docs/io.md (weft.net).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "io.h"

/* {======== addresses */

typedef struct addr_list {
  int n;
  struct sockaddr_storage a[1];
} addr_list;

static void format_addr(const struct sockaddr *sa, char *buf, size_t len, int with_port) {
  char ip[64] = "?";
  int port = 0;
  if (sa->sa_family == AF_INET6) {
    uv_ip6_name((const struct sockaddr_in6 *)sa, ip, sizeof ip);
    port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    if (with_port) {
      snprintf(buf, len, "[%s]:%d", ip, port);
      return;
    }
  } else if (sa->sa_family == AF_INET) {
    uv_ip4_name((const struct sockaddr_in *)sa, ip, sizeof ip);
    port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
  }
  if (with_port)
    snprintf(buf, len, "%s:%d", ip, port);
  else
    snprintf(buf, len, "%s", ip);
}

/* Pushes an addr_list userdata of the addresses in ai (duplicates out). */
static addr_list *push_addrs(lua_State *L, const struct addrinfo *ai, int port) {
  const struct addrinfo *p;
  int n = 0, i;
  addr_list *l;
  for (p = ai; p != NULL; p = p->ai_next)
    n++;
  l = (addr_list *)lua_newuserdatauv(L, sizeof *l + (size_t)(n ? n : 1) * sizeof l->a[0], 0);
  l->n = 0;
  for (p = ai; p != NULL; p = p->ai_next) {
    if ((p->ai_family != AF_INET && p->ai_family != AF_INET6) ||
        p->ai_addrlen > sizeof l->a[0])
      continue;
    for (i = 0; i < l->n; i++)
      if (memcmp(&l->a[i], p->ai_addr, p->ai_addrlen) == 0)
        break;
    if (i < l->n)
      continue;
    memset(&l->a[l->n], 0, sizeof l->a[0]);
    memcpy(&l->a[l->n], p->ai_addr, p->ai_addrlen);
    if (p->ai_family == AF_INET)
      ((struct sockaddr_in *)&l->a[l->n])->sin_port = htons((uint16_t)port);
    else
      ((struct sockaddr_in6 *)&l->a[l->n])->sin6_port = htons((uint16_t)port);
    l->n++;
  }
  return l;
}

/* A numeric host needs no resolver: returns 1 with the address. */
static int numeric_addr(const char *host, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
    return 1;
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
    return 1;
  return 0;
}

/* }======== */

/* {======== resolve: an awaited uv_getaddrinfo */

typedef struct resolve_req {
  uv_getaddrinfo_t req;
  weft_task *task;           /* NULL once the waiter left */
  struct addrinfo *res;
  int status;
  int done;
} resolve_req;

static void resolve_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  resolve_req *r = (resolve_req *)req->data;
  if (r->task == NULL) {
    uv_freeaddrinfo(res);
    free(r);
    return;
  }
  r->status = status;
  r->res = res;
  r->done = 1;
  weft__task_wake(r->task, WEFT_WOKEN);
}

/* Starts resolving host and suspends with continuation k (ctx = the req). */
static int resolve_start(lua_State *L, weft_task *t, const char *host, lua_KFunction k) {
  weft_runtime *rt = WEFT_UPRT(L);
  struct addrinfo hints;
  resolve_req *r = (resolve_req *)calloc(1, sizeof *r);
  int rc;
  if (r == NULL)
    return luaL_error(L, "out of memory");
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  r->req.data = r;
  r->task = t;
  weft__size_pool();
  rc = uv_getaddrinfo(rt->loop, &r->req, resolve_cb, host, NULL, &hints);
  if (rc < 0) {
    free(r);
    return weft__raise_uv_error(L, rc, "resolve", host);
  }
  return weft__suspend(L, t, "resolve", 0, (lua_KContext)r, k);
}

/* In a continuation: 1 with the result taken (r freed by the caller after
   use), or 0 after giving up the request (not done yet). */
static int resolve_take(resolve_req *r) {
  if (r->done)
    return 1;
  r->task = NULL;
  uv_cancel((uv_req_t *)&r->req);
  return 0;
}

static void resolve_free(resolve_req *r) {
  uv_freeaddrinfo(r->res);
  free(r);
}

static int finish_resolve(lua_State *L, int status, lua_KContext ctx) {
  resolve_req *r = (resolve_req *)ctx;
  weft_task *t = WEFT_UPRT(L)->current;
  addr_list *l;
  int i;
  (void)status;
  if (!resolve_take(r))
    return weft__raise_pending(L, t);
  if (r->status < 0) {
    int rc = r->status;
    resolve_free(r);
    weft__check_pending(L, t);
    return weft__raise_uv_error(L, rc, "resolve", lua_tostring(L, 1));
  }
  l = push_addrs(L, r->res, 0);
  resolve_free(r);
  weft__check_pending(L, t);
  lua_createtable(L, l->n, 0);
  for (i = 0; i < l->n; i++) {
    char buf[80];
    format_addr((struct sockaddr *)&l->a[i], buf, sizeof buf, 0);
    lua_pushstring(L, buf);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int net_resolve(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  weft_task *t = weft__current(L, WEFT_UPRT(L), "weft.net.resolve");
  lua_settop(L, 1);
  return resolve_start(L, t, host, finish_resolve);
}

/* }======== */

/* {======== connect */

/* connect's stack: 1 host, 2 port, 3 opts, 4 deadline or nil, 5 addr_list,
   6 index of the address being tried, 7 last error or nil. */
enum { C_HOST = 1, C_PORT, C_OPTS, C_DEADLINE, C_ADDRS, C_INDEX, C_ERR };

static void connect_cb(uv_connect_t *req, int status) {
  weft_stream *s = (weft_stream *)req->handle->data;
  weft_task *t = s->writer;
  s->status = status;
  s->pending = 0;
  if (t != NULL) {
    s->writer = NULL;
    weft__task_wake(t, WEFT_WOKEN);
  }
}

static void deadline_fire(weft_deadline *d) {
  weft__task_wake(weft_queue_data(d, weft_task, deadline), WEFT_TIMEDOUT);
}

/* Arms the task's deadline for the call's timeout, if any. */
static void arm_deadline(lua_State *L, weft_task *t) {
  if (lua_isnumber(L, C_DEADLINE)) {
    t->deadline.fire = deadline_fire;
    weft__deadline_arm(t->rt, &t->deadline, lua_tonumber(L, C_DEADLINE));
  }
}

static int raise_timeout(lua_State *L) {
  weft__push_uv_error(L, UV_ETIMEDOUT, "connect", NULL);
  lua_pushfstring(L, "connect to %s port %d: timed out", lua_tostring(L, C_HOST),
                  (int)lua_tointeger(L, C_PORT));
  lua_setfield(L, -2, "message");
  return lua_error(L);
}

static int connect_next(lua_State *L, weft_task *t);

static int finish_connect(lua_State *L, int status, lua_KContext ctx) {
  weft_stream *s = (weft_stream *)ctx;
  weft_task *t = WEFT_UPRT(L)->current;
  char peer[96];
  (void)status;
  if (s->pending) {                     /* cancelled or timed out */
    s->writer = NULL;
    weft__stream_close(s);
    weft__check_pending(L, t);
    return raise_timeout(L);
  }
  weft__deadline_disarm(t->rt, &t->deadline);
  if (s->status < 0) {
    lua_pushinteger(L, s->status);
    lua_replace(L, C_ERR);
    weft__stream_close(s);
    weft__check_pending(L, t);
    return connect_next(L, t);
  }
  if (t->deliver) {
    weft__stream_close(s);
    return weft__raise_pending(L, t);
  }
  {
    addr_list *l = (addr_list *)lua_touserdata(L, C_ADDRS);
    format_addr((struct sockaddr *)&l->a[lua_tointeger(L, C_INDEX) - 1], peer, sizeof peer, 1);
  }
  weft__stream_push(L, s, peer);
  return 1;
}

/* Tries the next address, or raises the last error. */
static int connect_next(lua_State *L, weft_task *t) {
  addr_list *l = (addr_list *)lua_touserdata(L, C_ADDRS);
  lua_Integer i = lua_tointeger(L, C_INDEX);
  weft_stream *s;
  int rc;
  if (i >= l->n) {
    int err = lua_isinteger(L, C_ERR) ? (int)lua_tointeger(L, C_ERR) : UV_EAI_NONAME;
    lua_pushfstring(L, "connect to %s port %d", lua_tostring(L, C_HOST),
                    (int)lua_tointeger(L, C_PORT));
    weft__push_uv_error(L, err, lua_tostring(L, -1), NULL);
    return lua_error(L);
  }
  lua_pushinteger(L, i + 1);
  lua_replace(L, C_INDEX);
  if ((s = weft__stream_alloc(t->rt)) == NULL)
    return luaL_error(L, "out of memory");
  uv_tcp_init(t->rt->loop, &s->u.tcp);
  s->inited = 1;
  rc = uv_tcp_connect(&s->creq, &s->u.tcp, (struct sockaddr *)&l->a[i], connect_cb);
  if (rc < 0) {
    lua_pushinteger(L, rc);
    lua_replace(L, C_ERR);
    weft__stream_close(s);
    return connect_next(L, t);
  }
  s->writer = t;
  s->pending = 1;
  arm_deadline(L, t);
  return weft__suspend(L, t, "connect", 0, (lua_KContext)s, finish_connect);
}

static int finish_connect_resolve(lua_State *L, int status, lua_KContext ctx) {
  resolve_req *r = (resolve_req *)ctx;
  weft_task *t = WEFT_UPRT(L)->current;
  int timed_out = t->wake_reason == WEFT_TIMEDOUT;
  (void)status;
  if (!resolve_take(r)) {
    weft__check_pending(L, t);
    if (timed_out)
      return raise_timeout(L);
    return luaL_error(L, "connect: resolving was interrupted");
  }
  if (r->status < 0) {
    int rc = r->status;
    resolve_free(r);
    weft__check_pending(L, t);
    return weft__raise_uv_error(L, rc, "connect: resolve", lua_tostring(L, C_HOST));
  }
  push_addrs(L, r->res, (int)lua_tointeger(L, C_PORT));
  resolve_free(r);
  lua_replace(L, C_ADDRS);
  weft__check_pending(L, t);
  return connect_next(L, t);
}

static int net_connect(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  lua_Integer port = luaL_checkinteger(L, 2);
  weft_runtime *rt = WEFT_UPRT(L);
  weft_task *t;
  addr_list *l;
  luaL_argcheck(L, port >= 0 && port <= 65535, 2, "not a port number");
  if (!lua_isnoneornil(L, 3))
    luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  t = weft__current(L, rt, "weft.net.connect");
  if (lua_istable(L, 3) && lua_getfield(L, 3, "timeout") != LUA_TNIL) {
    lua_Number s = lua_tonumber(L, -1);
    if (lua_type(L, -1) != LUA_TNUMBER)
      return luaL_error(L, "bad option 'timeout' (number expected, got %s)", luaL_typename(L, -1));
    lua_pop(L, 1);
    lua_pushnumber(L, weft__now(rt) + s);
  } else {
    lua_settop(L, 3);
    lua_pushnil(L);
  }
  l = (addr_list *)lua_newuserdatauv(L, sizeof *l, 0);
  lua_pushinteger(L, 0);
  lua_pushnil(L);                               /* C_ERR */
  if (numeric_addr(host, (int)port, &l->a[0])) {
    l->n = 1;
    return connect_next(L, t);
  }
  l->n = 0;
  arm_deadline(L, t);
  return resolve_start(L, t, host, finish_connect_resolve);
}

/* }======== */

/* {======== servers */

typedef struct weft_server {
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } u;
  weft_runtime *rt;
  struct weft_server **slot;
  int ref;                   /* registry ref to the userdata while open */
  int serve_ref;             /* stdlib/weft/net_serve.lua's serve */
  int port;
  int is_unix;
} weft_server;

static weft_server **toserver(lua_State *L, int idx) {
  return (weft_server **)luaL_checkudata(L, idx, WEFT_SERVER_MT);
}

static void server_closed(uv_handle_t *h) {
  free(h->data);
}

/* Spawns serve(handler, stream, tasks, peer) for a new connection. */
static void connection_cb(uv_stream_t *h, int status) {
  weft_server *sv = (weft_server *)h->data;
  lua_State *L = sv->rt->L;
  weft_stream *s;
  char peer[96] = "unix";
  struct sockaddr_storage ss;
  int len = sizeof ss, top = lua_gettop(L);
  if (status < 0 || (s = weft__stream_alloc(sv->rt)) == NULL)
    return;
  if (sv->is_unix)
    uv_pipe_init(sv->rt->loop, &s->u.pipe, 0);
  else
    uv_tcp_init(sv->rt->loop, &s->u.tcp);
  s->inited = 1;
  if (uv_accept(h, &s->u.stream) != 0) {
    weft__stream_close(s);
    return;
  }
  if (!sv->is_unix && uv_tcp_getpeername(&s->u.tcp, (struct sockaddr *)&ss, &len) == 0)
    format_addr((struct sockaddr *)&ss, peer, sizeof peer, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, sv->serve_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, sv->ref);          /* server */
  lua_getiuservalue(L, -1, 1);                          /* handler */
  weft__stream_push(L, s, peer);
  lua_getiuservalue(L, -3, 2);                          /* tasks */
  lua_pushstring(L, peer);
  lua_remove(L, -5);                                    /* the server */
  weft__spawn(L, sv->rt, 4);
  lua_settop(L, top);
}

/* Stops listening; unlinks a Unix socket file. Returns the handle's tasks
   table (nil if already closed). */
/* server:_stop(), called by the Lua close(): a misuse is close's. */
static int server_stop(lua_State *L) {
  weft_server **slot = (weft_server **)luaL_testudata(L, 1, WEFT_SERVER_MT);
  weft_server *sv;
  if (slot == NULL)
    return luaL_error(L, "bad argument #1 to 'close' (weft.server expected, got %s)",
                      luaL_typename(L, 1));
  sv = *slot;
  if (sv == NULL)
    return 0;
  *slot = NULL;
  if (sv->is_unix && lua_getiuservalue(L, 1, 3) == LUA_TSTRING)
    unlink(lua_tostring(L, -1));
  luaL_unref(L, LUA_REGISTRYINDEX, sv->ref);
  sv->rt->nlisteners -= uv_is_active(&sv->u.handle) != 0;
  uv_close(&sv->u.handle, server_closed);
  lua_getiuservalue(L, 1, 2);
  return 1;
}

static int server_index(lua_State *L) {
  weft_server *sv = *toserver(L, 1);
  const char *key = luaL_checkstring(L, 2);
  if (strcmp(key, "port") == 0) {
    if (sv == NULL || sv->is_unix)
      return 0;
    lua_pushinteger(L, sv->port);
    return 1;
  }
  lua_getiuservalue(L, 1, 4);       /* methods */
  lua_getfield(L, -1, key);
  return 1;
}

static int server_gc(lua_State *L) {
  weft_server *sv = *toserver(L, 1);
  if (sv != NULL) {
    lua_settop(L, 1);
    server_stop(L);
  }
  return 0;
}

static int server_tostring(lua_State *L) {
  weft_server *sv = *toserver(L, 1);
  if (sv == NULL)
    lua_pushliteral(L, "weft.server (closed)");
  else if (sv->is_unix)
    lua_pushliteral(L, "weft.server (unix)");
  else
    lua_pushfstring(L, "weft.server (port %d)", sv->port);
  return 1;
}

/* Pushes a server userdata for sv with handler at 'handler' and starts
   listening. Raises (and closes sv) on failure. */
static int server_push(lua_State *L, weft_server *sv, int handler, const char *path) {
  weft_server **slot = (weft_server **)lua_newuserdatauv(L, sizeof *slot, 4);
  int rc;
  *slot = sv;
  sv->slot = slot;
  luaL_setmetatable(L, WEFT_SERVER_MT);
  lua_pushvalue(L, handler);
  lua_setiuservalue(L, -2, 1);
  lua_newtable(L);
  lua_setiuservalue(L, -2, 2);
  if (path != NULL) {
    lua_pushstring(L, path);
    lua_setiuservalue(L, -2, 3);
  }
  lua_pushvalue(L, lua_upvalueindex(2));       /* methods */
  lua_setiuservalue(L, -2, 4);
  lua_pushvalue(L, lua_upvalueindex(3));
  sv->serve_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, -1);
  sv->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  rc = uv_listen(&sv->u.stream, 511, connection_cb);
  if (rc < 0) {
    lua_pushvalue(L, -1);
    lua_insert(L, 1);
    lua_settop(L, 1);
    server_stop(L);
    return weft__raise_uv_error(L, rc, "listen", path);
  }
  sv->rt->nlisteners++;
  return 1;
}

static weft_server *server_alloc(lua_State *L, weft_runtime *rt) {
  weft_server *sv = (weft_server *)calloc(1, sizeof *sv);
  if (sv == NULL)
    luaL_error(L, "out of memory");
  sv->rt = rt;
  sv->u.handle.data = sv;
  sv->ref = sv->serve_ref = LUA_NOREF;
  return sv;
}

/* Resolves a listening address without a task (listen binds before it
   returns): numeric hosts directly, names with a synchronous lookup. */
static int listen_addr(weft_runtime *rt, const char *host, int port,
                       struct sockaddr_storage *ss) {
  uv_getaddrinfo_t req;
  struct addrinfo hints;
  int rc;
  if (numeric_addr(host, port, ss))
    return 0;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  weft__size_pool();
  rc = uv_getaddrinfo(rt->loop, &req, NULL, host, NULL, &hints);
  if (rc < 0)
    return rc;
  memset(ss, 0, sizeof *ss);
  memcpy(ss, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
  if (ss->ss_family == AF_INET)
    ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
  else
    ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
  uv_freeaddrinfo(req.addrinfo);
  return 0;
}

static int net_listen(lua_State *L) {
  weft_runtime *rt = WEFT_UPRT(L);
  const char *host = luaL_checkstring(L, 1);
  lua_Integer port = luaL_checkinteger(L, 2);
  struct sockaddr_storage ss, bound;
  int rc, len = sizeof bound;
  weft_server *sv;
  luaL_argcheck(L, port >= 0 && port <= 65535, 2, "not a port number");
  luaL_checktype(L, 3, LUA_TFUNCTION);
  if ((rc = listen_addr(rt, host, (int)port, &ss)) < 0)
    return weft__raise_uv_error(L, rc, "listen: resolve", host);
  sv = server_alloc(L, rt);
  uv_tcp_init(rt->loop, &sv->u.tcp);
  rc = uv_tcp_bind(&sv->u.tcp, (struct sockaddr *)&ss, 0);
  if (rc < 0) {
    uv_close(&sv->u.handle, server_closed);
    lua_pushfstring(L, "listen on %s port %d", host, (int)port);
    weft__push_uv_error(L, rc, lua_tostring(L, -1), NULL);
    return lua_error(L);
  }
  if (uv_tcp_getsockname(&sv->u.tcp, (struct sockaddr *)&bound, &len) == 0)
    sv->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                 : ((struct sockaddr_in *)&bound)->sin_port);
  return server_push(L, sv, 3, NULL);
}

/* Is someone listening on the Unix socket at path? 1 yes, 0 no (stale). */
static int unix_live(const char *path) {
  struct sockaddr_un sa;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), live;
  if (fd < 0)
    return 1;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  strncpy(sa.sun_path, path, sizeof sa.sun_path - 1);
  live = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
  close(fd);
  return live;
}

/* Binds, replacing a stale socket file. Returns 0 or a libuv error. */
static int unix_bind(uv_pipe_t *p, const char *path) {
  struct stat st;
  int rc = uv_pipe_bind(p, path);
  if (rc != UV_EADDRINUSE)
    return rc;
  if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode))
    return UV_EEXIST;
  if (unix_live(path))
    return UV_EADDRINUSE;
  unlink(path);
  return uv_pipe_bind(p, path);
}

static int net_listen_unix(lua_State *L) {
  weft_runtime *rt = WEFT_UPRT(L);
  const char *path = luaL_checkstring(L, 1);
  weft_server *sv;
  int rc;
  luaL_checktype(L, 2, LUA_TFUNCTION);
  sv = server_alloc(L, rt);
  sv->is_unix = 1;
  uv_pipe_init(rt->loop, &sv->u.pipe, 0);
  if ((rc = unix_bind(&sv->u.pipe, path)) < 0) {
    uv_close(&sv->u.handle, server_closed);
    return weft__raise_uv_error(L, rc, "listen_unix", path);
  }
  return server_push(L, sv, 2, path);
}

/* }======== */

static int finish_connect_unix(lua_State *L, int status, lua_KContext ctx) {
  weft_stream *s = (weft_stream *)ctx;
  weft_task *t = WEFT_UPRT(L)->current;
  (void)status;
  if (s->pending) {
    s->writer = NULL;
    weft__stream_close(s);
    return weft__raise_pending(L, t);
  }
  if (s->status < 0) {
    int rc = s->status;
    weft__stream_close(s);
    weft__check_pending(L, t);
    return weft__raise_uv_error(L, rc, "connect_unix", lua_tostring(L, 1));
  }
  if (t->deliver) {
    weft__stream_close(s);
    return weft__raise_pending(L, t);
  }
  weft__stream_push(L, s, lua_tostring(L, 1));
  return 1;
}

static int net_connect_unix_k(lua_State *L) {
  weft_runtime *rt = WEFT_UPRT(L);
  const char *path = luaL_checkstring(L, 1);
  weft_task *t = weft__current(L, rt, "weft.net.connect_unix");
  weft_stream *s = weft__stream_alloc(rt);
  lua_settop(L, 1);
  if (s == NULL)
    return luaL_error(L, "out of memory");
  uv_pipe_init(rt->loop, &s->u.pipe, 0);
  s->inited = 1;
  uv_pipe_connect(&s->creq, &s->u.pipe, path, connect_cb);
  s->writer = t;
  s->pending = 1;
  return weft__suspend(L, t, "connect_unix", 0, (lua_KContext)s, finish_connect_unix);
}

static const luaL_Reg net_funcs[] = {
  {"connect", net_connect},
  {"connect_unix", net_connect_unix_k},
  {"resolve", net_resolve},
  {NULL, NULL}
};

static const luaL_Reg server_funcs[] = {
  {"listen", net_listen},
  {"listen_unix", net_listen_unix},
  {NULL, NULL}
};

static int report_fn(lua_State *L) {
  weft__report(WEFT_UPRT(L), luaL_checkstring(L, 1));
  return 0;
}

/* Makes the server metatable; pushes the methods table and serve. */
static void open_server_class(lua_State *L, weft_runtime *rt) {
  static const luaL_Reg metas[] = {
    {"__index", server_index},   /* methods are the server's user value 4 */
    {"__gc", server_gc},
    {"__close", server_gc},
    {"__tostring", server_tostring},
    {NULL, NULL}
  };
  weft__class(L, rt, WEFT_SERVER_MT, NULL, NULL, metas);
  lua_pop(L, 1);
  lua_createtable(L, 0, 2);                         /* methods */
  lua_pushcfunction(L, server_stop);
  lua_setfield(L, -2, "_stop");
  weft__stdlib_require(L, "weft.net_serve");
  lua_getfield(L, -1, "bind");
  lua_remove(L, -2);
  lua_pushvalue(L, -3);                             /* the weft module */
  lua_pushlightuserdata(L, rt);
  lua_pushcclosure(L, report_fn, 1);
  lua_pushcfunction(L, server_stop);
  lua_call(L, 3, 2);                                /* serve, close */
  lua_setfield(L, -3, "close");                     /* methods.close */
}

int weft__open_net(lua_State *L, weft_runtime *rt) {
  open_server_class(L, rt);                         /* module, methods, serve */
  lua_createtable(L, 0, 6);
  lua_pushlightuserdata(L, rt);
  luaL_setfuncs(L, net_funcs, 1);
  lua_pushlightuserdata(L, rt);
  lua_pushvalue(L, -4);
  lua_pushvalue(L, -4);
  luaL_setfuncs(L, server_funcs, 3);
  lua_setfield(L, -4, "net");
  lua_pop(L, 2);
  return 0;
}
