/*
** http.c: weft.http, an HTTP client on libcurl's multi-socket interface
** driven by weft's loop: curl tells which sockets to watch
** (CURLMOPT_SOCKETFUNCTION: one uv_poll_t per socket) and when to call it
** back (CURLMOPT_TIMERFUNCTION: one uv_timer_t); those callbacks only call
** curl_multi_socket_action and wake the tasks whose transfers finished or
** brought data. Lua never runs from a libuv or curl callback: on_data
** chunks are queued in the transfer and handed to Lua by the waiting task's
** continuation.
**
** One multi handle per runtime (created on the first request), so
** connections are reused across requests. The poll handles and the timer
** are unreferenced; a uv_async_t that is referenced while transfers are in
** progress keeps the run alive (an idle cached connection does not).
**
** Ownership: the http_state (multi, timer, async, sockets) is malloc'd and
** owned by a registry userdata whose __gc removes what is left and closes
** the handles; it is freed when the last close callback has run. A
** transfer (easy handle, buffers) is malloc'd and owned by a userdata on
** the requesting C frame: the continuation releases it, and so does that
** userdata's __gc if the frame dies some other way. A cancelled request
** removes its easy handle from the multi at once.
** libcurl (and the thirty libraries it pulls in: TLS, Kerberos, LDAP...)
** is loaded with dlopen on the first request, not linked: linking it made
** every weft start pay for their relocations (weft -e '' took 6x lua5.4).
** User docs: docs/io.md "HTTP client".
*/
#include <ctype.h>
#include <limits.h>
#include <dlfcn.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>
#define CURL_DISABLE_TYPECHECK   /* calls go through pointers, as plain functions */
#include <curl/curl.h>

#include "io.h"

/* {======== libcurl, loaded on first use */

#define WEFT_CURL_LIBRARY "libcurl.so.4"

#define WEFT_CURL_FUNCTIONS(XX) \
  XX(curl_global_init) XX(curl_easy_init) XX(curl_easy_cleanup) XX(curl_easy_setopt) \
  XX(curl_easy_getinfo) XX(curl_easy_pause) XX(curl_easy_strerror) XX(curl_slist_append) \
  XX(curl_slist_free_all) XX(curl_multi_init) XX(curl_multi_cleanup) XX(curl_multi_setopt) \
  XX(curl_multi_add_handle) XX(curl_multi_remove_handle) XX(curl_multi_assign) \
  XX(curl_multi_socket_action) XX(curl_multi_info_read) XX(curl_multi_strerror)

/* The library is process-wide, and so is this table (filled once). */
static struct {
  void *lib;
#define XX(name) __typeof__(name) *name;
  WEFT_CURL_FUNCTIONS(XX)
#undef XX
} curl_api;

/* Loads libcurl once; raises a clear error if it cannot. */
static void curl_load(lua_State *L) {
  void *lib;
  if (curl_api.lib != NULL)
    return;
  lib = dlopen(WEFT_CURL_LIBRARY, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL)
    luaL_error(L, "weft.http: cannot load libcurl (%s): %s", WEFT_CURL_LIBRARY, dlerror());
#define XX(name)                                                             \
  if ((*(void **)&curl_api.name = dlsym(lib, #name)) == NULL) {              \
    dlclose(lib);                                                            \
    luaL_error(L, "weft.http: libcurl has no %s", #name);                    \
  }
  WEFT_CURL_FUNCTIONS(XX)
#undef XX
  curl_api.lib = lib;
}

#undef curl_easy_setopt    /* curl.h's argument-count checks */
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_global_init (*curl_api.curl_global_init)
#define curl_easy_init (*curl_api.curl_easy_init)
#define curl_easy_cleanup (*curl_api.curl_easy_cleanup)
#define curl_easy_setopt (*curl_api.curl_easy_setopt)
#define curl_easy_getinfo (*curl_api.curl_easy_getinfo)
#define curl_easy_pause (*curl_api.curl_easy_pause)
#define curl_easy_strerror (*curl_api.curl_easy_strerror)
#define curl_slist_append (*curl_api.curl_slist_append)
#define curl_slist_free_all (*curl_api.curl_slist_free_all)
#define curl_multi_init (*curl_api.curl_multi_init)
#define curl_multi_cleanup (*curl_api.curl_multi_cleanup)
#define curl_multi_setopt (*curl_api.curl_multi_setopt)
#define curl_multi_add_handle (*curl_api.curl_multi_add_handle)
#define curl_multi_remove_handle (*curl_api.curl_multi_remove_handle)
#define curl_multi_assign (*curl_api.curl_multi_assign)
#define curl_multi_socket_action (*curl_api.curl_multi_socket_action)
#define curl_multi_info_read (*curl_api.curl_multi_info_read)
#define curl_multi_strerror (*curl_api.curl_multi_strerror)

/* }======== */

#define HTTP_PAUSE_AT (1024 * 1024)   /* on_data: undelivered bytes before pausing */
#define HTTP_MAX_REDIRS 20

typedef struct http_state http_state;
typedef struct http_xfer http_xfer;

struct http_state {
  weft_holder hold;           /* first: handle data may point at either */
  CURLM *multi;
  uv_timer_t timer;           /* curl's timeout */
  uv_async_t keep;            /* referenced while transfers run */
  weft_runtime *rt;
  weft_queue xfers;           /* transfers added to the multi */
  weft_queue socks;           /* sockets being watched */
  int cleaning;               /* curl_multi_cleanup is running */
  int ntransfers;
};

typedef struct http_sock {
  uv_poll_t poll;
  weft_queue node;            /* in hs->socks */
  http_state *hs;
  curl_socket_t fd;
} http_sock;

typedef struct http_buf {
  char *p;
  size_t len, cap;
} http_buf;

struct http_xfer {
  weft_queue node;            /* in hs->xfers while added */
  CURL *easy;
  http_state *hs;             /* NULL once the state is gone */
  weft_task *task;            /* the waiting task, or NULL */
  struct curl_slist *headers;
  http_buf body, hdr;
  CURLcode result;
  int added, done, on_data, paused, oom;
  char errbuf[CURL_ERROR_SIZE];
};

/* {======== curl error names */

#define HTTP_CODES(XX) \
  XX(UNSUPPORTED_PROTOCOL) XX(FAILED_INIT) XX(URL_MALFORMAT) XX(NOT_BUILT_IN) \
  XX(COULDNT_RESOLVE_PROXY) XX(COULDNT_RESOLVE_HOST) XX(COULDNT_CONNECT) \
  XX(WEIRD_SERVER_REPLY) XX(REMOTE_ACCESS_DENIED) XX(HTTP2) XX(PARTIAL_FILE) \
  XX(HTTP_RETURNED_ERROR) XX(WRITE_ERROR) XX(UPLOAD_FAILED) XX(READ_ERROR) \
  XX(OUT_OF_MEMORY) XX(OPERATION_TIMEDOUT) XX(RANGE_ERROR) XX(HTTP_POST_ERROR) \
  XX(SSL_CONNECT_ERROR) XX(BAD_DOWNLOAD_RESUME) XX(ABORTED_BY_CALLBACK) \
  XX(BAD_FUNCTION_ARGUMENT) XX(INTERFACE_FAILED) XX(TOO_MANY_REDIRECTS) \
  XX(UNKNOWN_OPTION) XX(GOT_NOTHING) XX(SSL_ENGINE_NOTFOUND) \
  XX(SSL_ENGINE_SETFAILED) XX(SEND_ERROR) XX(RECV_ERROR) XX(SSL_CERTPROBLEM) \
  XX(SSL_CIPHER) XX(PEER_FAILED_VERIFICATION) XX(BAD_CONTENT_ENCODING) \
  XX(FILESIZE_EXCEEDED) XX(USE_SSL_FAILED) XX(SEND_FAIL_REWIND) \
  XX(SSL_ENGINE_INITFAILED) XX(LOGIN_DENIED) XX(SSL_CACERT_BADFILE) \
  XX(SSL_SHUTDOWN_FAILED) XX(AGAIN) XX(SSL_CRL_BADFILE) XX(SSL_ISSUER_ERROR) \
  XX(HTTP2_STREAM) XX(HTTP3) XX(QUIC_CONNECT_ERROR) XX(PROXY) XX(SSL_CLIENTCERT)

static const char *code_name(CURLcode rc) {
#define XX(n) case CURLE_##n: return #n;
  switch (rc) {
    HTTP_CODES(XX)
    default: return "UNKNOWN";
  }
#undef XX
}

/* }======== */

/* {======== the multi handle on the loop */

static void state_free(weft_holder *h) {
  free(h);   /* (the holder is the state's first member) */
}

static void sock_closed(uv_handle_t *h) {
  http_sock *s = (http_sock *)h->data;
  http_state *hs = s->hs;
  free(s);
  weft__holder_closed(&hs->hold);
}

/* Marks every finished transfer done and wakes its task. */
static void check_done(http_state *hs) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(hs->multi, &left)) != NULL) {
    http_xfer *x;
    if (m->msg != CURLMSG_DONE)
      continue;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    x->result = m->data.result;
    x->done = 1;
    if (x->task != NULL)
      weft__task_wake(x->task, WEFT_WOKEN);
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  http_sock *s = (http_sock *)h->data;
  int flags = 0, running;
  if (status < 0)
    flags = CURL_CSELECT_IN | CURL_CSELECT_OUT | CURL_CSELECT_ERR;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  curl_multi_socket_action(s->hs->multi, s->fd, flags, &running);
  check_done(s->hs);
}

static void on_timer(uv_timer_t *h) {
  http_state *hs = (http_state *)h->data;
  int running;
  curl_multi_socket_action(hs->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(hs);
}

/* CURLMOPT_TIMERFUNCTION: curl must not be called back from here, so a
   zero timeout also goes through the timer. */
static int on_curl_timer(CURLM *multi, long ms, void *ud) {
  http_state *hs = (http_state *)ud;
  (void)multi;
  if (ms < 0)
    uv_timer_stop(&hs->timer);
  else
    uv_timer_start(&hs->timer, on_timer, (uint64_t)ms, 0);
  return 0;
}

static void sock_close(http_state *hs, http_sock *s) {
  weft_queue_remove(&s->node);
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, sock_closed);
  if (!hs->cleaning)
    curl_multi_assign(hs->multi, s->fd, NULL);
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what curl asks, or stop. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *ud, void *sockp) {
  http_state *hs = (http_state *)ud;
  http_sock *s = (http_sock *)sockp;
  int events = 0;
  (void)easy;
  if (what == CURL_POLL_REMOVE) {
    if (s != NULL)
      sock_close(hs, s);
    return 0;
  }
  if (s == NULL) {
    if ((s = (http_sock *)malloc(sizeof *s)) == NULL)
      return -1;
    if (uv_poll_init_socket(hs->rt->loop, &s->poll, fd) != 0) {
      free(s);
      return -1;
    }
    s->poll.data = s;
    s->hs = hs;
    s->fd = fd;
    hs->hold.nopen++;
    weft_queue_insert_tail(&hs->socks, &s->node);
    uv_unref((uv_handle_t *)&s->poll);
    curl_multi_assign(hs->multi, fd, s);
  }
  if (what != CURL_POLL_OUT)
    events |= UV_READABLE;
  if (what != CURL_POLL_IN)
    events |= UV_WRITABLE;
  uv_poll_start(&s->poll, events, on_poll);
  return 0;
}

static char state_key;

static void close_state_handle(http_state *hs, uv_handle_t *h) {
  h->data = &hs->hold;
  uv_close(h, weft__holder_close_cb);
}

/* The registry box's __gc: transfers still added are removed (their own
   box frees them), then the multi and the handles go. */
static int state_gc(lua_State *L) {
  http_state **box = (http_state **)lua_touserdata(L, 1);
  http_state *hs = *box;
  if (hs == NULL)
    return 0;
  *box = NULL;
  while (!weft_queue_empty(&hs->xfers)) {
    http_xfer *x = weft_queue_data(weft_queue_head(&hs->xfers), http_xfer, node);
    weft_queue_remove(&x->node);
    curl_multi_remove_handle(hs->multi, x->easy);
    x->added = 0;
    x->hs = NULL;
  }
  hs->cleaning = 1;
  curl_multi_cleanup(hs->multi);
  while (!weft_queue_empty(&hs->socks))   /* what curl did not remove */
    sock_close(hs, weft_queue_data(weft_queue_head(&hs->socks), http_sock, node));
  close_state_handle(hs, (uv_handle_t *)&hs->timer);
  close_state_handle(hs, (uv_handle_t *)&hs->keep);
  weft__holder_release(&hs->hold);
  return 0;
}

static void keep_cb(uv_async_t *h) {
  (void)h;
}

/* The runtime's http_state, created on first use. */
static http_state *get_state(lua_State *L, weft_runtime *rt) {
  http_state **box, *hs;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &state_key) == LUA_TUSERDATA) {
    hs = *(http_state **)lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (hs != NULL)
      return hs;
    luaL_error(L, "weft.http: the runtime is closing");
  }
  lua_pop(L, 1);
  curl_load(L);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  hs = (http_state *)calloc(1, sizeof *hs);
  if (hs == NULL || (hs->multi = curl_multi_init()) == NULL) {
    free(hs);
    luaL_error(L, "weft.http: cannot create a curl multi handle");
  }
  hs->rt = rt;
  weft_queue_init(&hs->xfers);
  weft_queue_init(&hs->socks);
  uv_timer_init(rt->loop, &hs->timer);
  uv_async_init(rt->loop, &hs->keep, keep_cb);
  hs->timer.data = hs;
  hs->keep.data = hs;
  hs->hold.nopen = 2;
  hs->hold.free = state_free;
  uv_unref((uv_handle_t *)&hs->timer);
  uv_unref((uv_handle_t *)&hs->keep);
  curl_multi_setopt(hs->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
  curl_multi_setopt(hs->multi, CURLMOPT_SOCKETDATA, hs);
  curl_multi_setopt(hs->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(hs->multi, CURLMOPT_TIMERDATA, hs);
  box = (http_state **)lua_newuserdatauv(L, sizeof *box, 0);
  *box = hs;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, state_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &state_key);
  return hs;
}

/* }======== */

/* {======== a transfer */

static int buf_add(http_buf *b, const char *p, size_t n) {
  if (b->cap - b->len < n) {
    size_t cap = b->cap ? b->cap : 16384;
    char *grown;
    while (cap - b->len < n)
      cap *= 2;
    if ((grown = (char *)realloc(b->p, cap)) == NULL)
      return -1;
    b->p = grown;
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
  return 0;
}

static size_t write_cb(char *p, size_t size, size_t n, void *ud) {
  http_xfer *x = (http_xfer *)ud;
  size_t len = size * n;
  if (x->on_data && x->body.len >= HTTP_PAUSE_AT) {
    x->paused = 1;
    return CURL_WRITEFUNC_PAUSE;
  }
  if (buf_add(&x->body, p, len) != 0) {
    x->oom = 1;
    return 0;
  }
  if (x->on_data && x->task != NULL)
    weft__task_wake(x->task, WEFT_WOKEN);
  return len;
}

/* Keeps the header lines of the last response (a redirect or a
   "100 Continue" starts over). */
static size_t header_cb(char *p, size_t size, size_t n, void *ud) {
  http_xfer *x = (http_xfer *)ud;
  size_t len = size * n;
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
    x->hdr.len = 0;
  if (buf_add(&x->hdr, p, len) != 0) {
    x->oom = 1;
    return 0;
  }
  return len;
}

static void xfer_remove(http_xfer *x) {
  if (x->added && x->hs != NULL) {
    weft_queue_remove(&x->node);
    curl_multi_remove_handle(x->hs->multi, x->easy);
    if (--x->hs->ntransfers == 0)
      uv_unref((uv_handle_t *)&x->hs->keep);
  }
  x->added = 0;
}

static void xfer_free(http_xfer *x) {
  xfer_remove(x);
  if (x->easy != NULL)
    curl_easy_cleanup(x->easy);
  curl_slist_free_all(x->headers);
  free(x->body.p);
  free(x->hdr.p);
  free(x);
}

#define XFER_BOX_MT "weft.http_transfer"

static int xfer_gc(lua_State *L) {
  http_xfer **box = (http_xfer **)lua_touserdata(L, 1);
  if (*box != NULL)
    xfer_free(*box);
  *box = NULL;
  return 0;
}

/* }======== */

/* {======== options */

/* Stack of a request while it runs. */
enum { S_OPTS = 1, S_BOX, S_ONDATA, S_CBERR, S_URL, S_NSLOTS = S_URL };

static int opt_get(lua_State *L, const char *name, int type, const char *what) {
  int t = lua_getfield(L, S_OPTS, name);
  if (t != LUA_TNIL && t != type && !(type == LUA_TNUMBER && lua_isnumber(L, -1)))
    return luaL_error(L, "bad option '%s' (%s expected, got %s)", name, what,
                      luaL_typename(L, -1));
  return t != LUA_TNIL;
}

/* Sets a string option from the options table when given. */
static void opt_string(lua_State *L, CURL *e, const char *name, CURLoption o) {
  if (opt_get(L, name, LUA_TSTRING, "string"))
    curl_easy_setopt(e, o, lua_tostring(L, -1));   /* curl copies strings */
  lua_pop(L, 1);
}

static int opt_bool(lua_State *L, const char *name, int dflt) {
  int v = dflt;
  if (opt_get(L, name, LUA_TBOOLEAN, "boolean"))
    v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

static int add_header(http_xfer *x, const char *line) {
  struct curl_slist *l = curl_slist_append(x->headers, line);
  if (l == NULL)
    return -1;
  x->headers = l;
  return 0;
}

/* headers = {name = value, ...} (or "Name: value" strings in the array
   part). An "Expect:" is added to turn off 100-continue waits. */
static void opt_headers(lua_State *L, http_xfer *x) {
  int has_expect = 0;
  if (opt_get(L, "headers", LUA_TTABLE, "table")) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      const char *line;
      if (lua_type(L, -2) == LUA_TNUMBER && lua_type(L, -1) == LUA_TSTRING) {
        lua_pushvalue(L, -1);
        line = lua_tostring(L, -1);
      } else if (lua_type(L, -2) == LUA_TSTRING &&
               (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER)) {
        line = lua_pushfstring(L, "%s: %s", lua_tostring(L, -2), lua_tostring(L, -1));
      } else {
        line = NULL;
        luaL_error(L, "bad option 'headers' (names and values must be strings)");
      }
      if (strncasecmp(line, "expect:", 7) == 0)
        has_expect = 1;
      if (add_header(x, line) != 0)
        luaL_error(L, "weft: out of memory");
      lua_pop(L, 2);
    }
  }
  lua_pop(L, 1);
  if (!has_expect && add_header(x, "Expect:") != 0)
    luaL_error(L, "weft: out of memory");
  curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
}

static void opt_method_body(lua_State *L, http_xfer *x) {
  const char *method = NULL;
  if (opt_get(L, "method", LUA_TSTRING, "string"))
    method = lua_tostring(L, -1);
  if (opt_get(L, "body", LUA_TSTRING, "string")) {
    size_t len;
    const char *body = lua_tolstring(L, -1, &len);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(x->easy, CURLOPT_COPYPOSTFIELDS, body);
  }
  if (method != NULL && strcmp(method, "HEAD") == 0)
    curl_easy_setopt(x->easy, CURLOPT_NOBODY, 1L);
  else if (method != NULL)
    curl_easy_setopt(x->easy, CURLOPT_CUSTOMREQUEST, method);
  lua_pop(L, 2);
}

static void opt_timeout(lua_State *L, CURL *e) {
  if (opt_get(L, "timeout", LUA_TNUMBER, "number")) {
    double s = lua_tonumber(L, -1);
    long ms;
    if (!(s > 0))
      luaL_error(L, "bad option 'timeout' (a number > 0 expected)");
    /* a deadline past what a long holds (math.huge included) is no
       deadline at all: libcurl's 0 means "never time out", and casting such
       a double to long would be undefined behaviour */
    if (s * 1000 >= (double)LONG_MAX) ms = 0;
    else ms = (long)(s * 1000 + 0.5) > 0 ? (long)(s * 1000 + 0.5) : 1L;
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms);
  }
  lua_pop(L, 1);
}

static void opt_auth(lua_State *L, CURL *e) {
  int has_user = opt_get(L, "user", LUA_TSTRING, "string");
  if (has_user) {
    curl_easy_setopt(e, CURLOPT_USERNAME, lua_tostring(L, -1));
    curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
  }
  lua_pop(L, 1);
  opt_string(L, e, "password", CURLOPT_PASSWORD);
}

/* Applies every option to the new transfer (raising on a bad one). */
static void parse_opts(lua_State *L, http_xfer *x) {
  CURL *e = x->easy;
  curl_easy_setopt(e, CURLOPT_URL, lua_tostring(L, S_URL));
  curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)x);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "weft/" WEFT_VERSION);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, (long)opt_bool(L, "follow", 1));
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)HTTP_MAX_REDIRS);
  if (opt_bool(L, "insecure", 0)) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  opt_string(L, e, "cainfo", CURLOPT_CAINFO);
  opt_string(L, e, "proxy", CURLOPT_PROXY);
  opt_auth(L, e);
  opt_timeout(L, e);
  opt_method_body(L, x);
  opt_headers(L, x);
  opt_get(L, "on_data", LUA_TFUNCTION, "function");
  lua_replace(L, S_ONDATA);
  x->on_data = !lua_isnil(L, S_ONDATA);
}

/* }======== */

/* {======== results */

/* Pushes the headers of the last response as a table: lower-case names,
   repeated ones joined by ", ". */
static void push_headers(lua_State *L, http_xfer *x) {
  const char *p = x->hdr.p, *end = p + x->hdr.len;
  lua_newtable(L);
  while (p != NULL && p < end) {
    const char *eol = (const char *)memchr(p, '\n', (size_t)(end - p));
    const char *line_end = eol ? eol : end, *colon, *v, *ve;
    colon = (const char *)memchr(p, ':', (size_t)(line_end - p));
    if (colon != NULL && colon > p && memcmp(p, "HTTP/", 5) != 0) {
      luaL_Buffer b;
      const char *c;
      luaL_buffinit(L, &b);
      for (c = p; c < colon; c++)
        luaL_addchar(&b, (char)tolower((unsigned char)*c));
      luaL_pushresult(&b);
      for (v = colon + 1; v < line_end && (*v == ' ' || *v == '\t'); v++)
        ;
      for (ve = line_end; ve > v && isspace((unsigned char)ve[-1]); ve--)
        ;
      lua_pushvalue(L, -1);
      if (lua_rawget(L, -3) == LUA_TSTRING) {
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, v, (size_t)(ve - v));
        lua_concat(L, 3);
      } else {
        lua_pop(L, 1);
        lua_pushlstring(L, v, (size_t)(ve - v));
      }
      lua_rawset(L, -3);
    }
    p = eol ? eol + 1 : end;
  }
}

static long status_of(http_xfer *x) {
  long status = 0;
  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
  return status;
}

/* Pushes {status=, headers=, body=}. */
static void push_response(lua_State *L, http_xfer *x) {
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, status_of(x));
  lua_setfield(L, -2, "status");
  push_headers(L, x);
  lua_setfield(L, -2, "headers");
  if (!x->on_data) {
    lua_pushlstring(L, x->body.p != NULL ? x->body.p : "", x->body.len);
    lua_setfield(L, -2, "body");
  }
}

/* Pushes an HTTPError for a failed transfer. */
static void push_transport_error(lua_State *L, http_xfer *x) {
  const char *detail = x->errbuf[0] ? x->errbuf : curl_easy_strerror(x->result);
  const char *code = code_name(x->result);
  if (x->oom)
    detail = "out of memory";
  weft__error_new(L, "HTTPError", "%s: %s (%s)", lua_tostring(L, S_URL), detail, code);
  lua_pushvalue(L, S_URL);
  lua_setfield(L, -2, "url");
  lua_pushstring(L, code);
  lua_setfield(L, -2, "code");
}

/* Pushes the HTTPError of check = true and a status >= 400. */
static void push_status_error(lua_State *L, http_xfer *x) {
  long status = status_of(x);
  weft__error_new(L, "HTTPError", "%s: the server answered %d (HTTP_RETURNED_ERROR)",
                  lua_tostring(L, S_URL), (int)status);
  lua_pushvalue(L, S_URL);
  lua_setfield(L, -2, "url");
  lua_pushliteral(L, "HTTP_RETURNED_ERROR");
  lua_setfield(L, -2, "code");
  lua_pushinteger(L, status);
  lua_setfield(L, -2, "status");
  if (!x->on_data) {
    lua_pushlstring(L, x->body.p != NULL ? x->body.p : "", x->body.len);
    lua_setfield(L, -2, "body");
  }
}

/* }======== */

/* {======== the request */

static http_xfer *box_xfer(lua_State *L) {
  return *(http_xfer **)lua_touserdata(L, S_BOX);
}

/* Frees the transfer now (the box forgets it). */
static void release(lua_State *L) {
  http_xfer **box = (http_xfer **)lua_touserdata(L, S_BOX);
  if (*box != NULL)
    xfer_free(*box);
  *box = NULL;
}

/* Hands the queued body bytes to on_data, resuming a paused transfer. An
   error in on_data is kept in S_CBERR and aborts the transfer. */
static void deliver(lua_State *L, http_xfer *x) {
  while (x->body.len > 0 && lua_isnil(L, S_CBERR)) {
    lua_pushvalue(L, S_ONDATA);
    lua_pushlstring(L, x->body.p, x->body.len);
    x->body.len = 0;
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
      lua_replace(L, S_CBERR);
      xfer_remove(x);
      return;
    }
    if (x->paused && x->added) {
      x->paused = 0;
      curl_easy_pause(x->easy, CURLPAUSE_CONT);   /* may write at once */
    }
  }
}

static int finish_request(lua_State *L, int status, lua_KContext ctx) {
  weft_task *t = WEFT_UPRT(L)->current;
  http_xfer *x = box_xfer(L);
  int check, failed;
  (void)status;
  (void)ctx;
  x->task = NULL;
  if (t->deliver || x->hs == NULL) {   /* cancelled: remove it at once */
    release(L);
    weft__check_pending(L, t);
    return luaL_error(L, "weft.http: the runtime closed during the request");
  }
  if (x->on_data)
    deliver(L, x);
  if (!lua_isnil(L, S_CBERR)) {
    release(L);
    lua_pushvalue(L, S_CBERR);
    return lua_error(L);
  }
  if (!x->done) {
    x->task = t;
    return weft__suspend(L, t, "http request", S_URL, 0, finish_request);
  }
  xfer_remove(x);
  lua_getfield(L, S_OPTS, "check");
  check = lua_toboolean(L, -1);
  lua_pop(L, 1);
  failed = x->result != CURLE_OK || (check && status_of(x) >= 400);
  if (x->result != CURLE_OK)
    push_transport_error(L, x);
  else if (failed)
    push_status_error(L, x);
  else
    push_response(L, x);
  release(L);
  return failed ? lua_error(L) : 1;
}

/* request with the options table at 1. */
static int do_request(lua_State *L) {
  weft_runtime *rt = WEFT_UPRT(L);
  http_xfer *x, **box;
  http_state *hs;
  weft_task *t;
  CURLMcode mc;
  lua_settop(L, 1);
  lua_settop(L, S_NSLOTS);
  if (lua_getfield(L, S_OPTS, "url") != LUA_TSTRING)
    return luaL_error(L, "bad option 'url' (string expected, got %s)", luaL_typename(L, -1));
  lua_replace(L, S_URL);
  t = weft__current(L, rt, "weft.http.request");
  hs = get_state(L, rt);
  box = (http_xfer **)lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, XFER_BOX_MT);
  lua_replace(L, S_BOX);
  if ((x = (http_xfer *)calloc(1, sizeof *x)) == NULL)
    return luaL_error(L, "weft: out of memory");
  *box = x;
  if ((x->easy = curl_easy_init()) == NULL)
    return luaL_error(L, "weft.http: cannot create a transfer");
  x->hs = hs;
  parse_opts(L, x);
  lua_settop(L, S_NSLOTS);
  if ((mc = curl_multi_add_handle(hs->multi, x->easy)) != CURLM_OK)
    return luaL_error(L, "weft.http: %s", curl_multi_strerror(mc));
  weft_queue_insert_tail(&hs->xfers, &x->node);
  x->added = 1;
  if (hs->ntransfers++ == 0)
    uv_ref((uv_handle_t *)&hs->keep);
  x->task = t;
  return weft__suspend(L, t, "http request", S_URL, 0, finish_request);
}

/* Pushes the options table at idx, or an empty one. */
static void check_opts_table(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) {
    lua_newtable(L);
  } else {
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushvalue(L, idx);
  }
}

/* Copies the options table on top into a new one (also on top). */
static void copy_opts(lua_State *L) {
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, -3)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  lua_remove(L, -2);
}

static int http_request(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  return do_request(L);
}

static int http_get(lua_State *L) {
  luaL_checkstring(L, 1);
  check_opts_table(L, 2);
  copy_opts(L);
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "url");
  lua_replace(L, 1);
  return do_request(L);
}

static int http_post(lua_State *L) {
  luaL_checkstring(L, 1);
  luaL_checkstring(L, 2);
  check_opts_table(L, 3);
  copy_opts(L);
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "url");
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "body");
  lua_replace(L, 1);
  return do_request(L);
}

/* }======== */

static const luaL_Reg http_funcs[] = {
  {"request", http_request},
  {"get", http_get},
  {"post", http_post},
  {NULL, NULL}
};

int weft__open_http(lua_State *L, weft_runtime *rt) {
  static const luaL_Reg xfer_metas[] = {{"__gc", xfer_gc}, {NULL, NULL}};
  weft__class(L, rt, XFER_BOX_MT, NULL, NULL, xfer_metas);
  lua_pop(L, 1);
  lua_createtable(L, 0, 3);
  lua_pushlightuserdata(L, rt);
  luaL_setfuncs(L, http_funcs, 1);
  lua_setfield(L, -2, "http");
  return 0;
}
