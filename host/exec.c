/*
** exec.c: weft.exec and weft.sh, a command run to completion on the spawn
** path (spawn.h), its output captured or handed over line by line.
**
** Ownership: weft.exec owns a malloc'd exec_state (libuv holds the process
** handle until its close callback) reached from a userdata box on the
** calling C frame; the state is freed when both the Lua side let go and the
** handle has closed. The pipes are weft streams (stream.c) that exec owns
** from C (no userdata): output is read into each stream's growing buffer
** (doubling, so a 100 MB capture costs amortised O(n) copies), stdin is
** written with back-pressure and closes its stream when done. Line callbacks
** never run from libuv: a read that brings a newline only wakes the task, and
** the exec continuation hands the complete lines to Lua, then suspends again.
** User docs: docs/io.md "Processes", docs/pipelines.md (line callbacks).
*/
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "spawn.h"

/* {======== weft.exec: state */

enum { OUT_CAPTURE = 0, OUT_INHERIT, OUT_NULL };

/* Stack slots of exec_run while it waits (see exec_run). */
enum { S_ARGV = 1, S_OPTS, S_ON_OUT, S_ON_ERR, S_CBERR, S_BOX, S_SINK };

typedef struct exec_state exec_state;

/* One output pipe. Its unread bytes are s->buf[s->off, s->len); seen and
   scanned count from s->off. A capture keeps every byte (off stays 0);
   otherwise delivered lines are dropped by advancing off. */
typedef struct exec_out {
  weft_stream *s;     /* NULL when not piped or once closed (s->slot) */
  exec_state *ex;
  size_t seen;        /* bytes already handed to the line callback */
  size_t scanned;     /* bytes searched for a newline */
  int mode;           /* OUT_* */
  int lines;          /* a line callback wants this stream */
  int piped, eof;
  int truncated;      /* max_capture cut the captured copy */
  /* With max_capture and a line callback, the captured copy lives here
     (the stream's buffer drops delivered lines, as without capture). */
  char *cap;
  size_t cap_len, cap_size;
} exec_out;

struct exec_state {
  weft_proc proc;
  exec_out out[2];
  weft_stream *in;        /* NULL unless piped, and once it closed */
  char *in_data;          /* until handed to the stdin stream */
  size_t in_len;
  int in_null;            /* stdin = "": the child reads /dev/null */
  weft_deadline timeout;
  weft_task *task;        /* the task waiting, or NULL */
  weft_holder hold;       /* freed once the box let go and every handle closed */
  int timed_out;
  int check;
  int batch;              /* line callbacks get every complete line at once */
  int sink;               /* batches go through the line sink in S_SINK */
  size_t max_capture;     /* bytes of each stream kept in the result */
  char **argv, **env;     /* until the spawn */
};

static void exec_free(weft_holder *h) {
  exec_state *ex = weft_queue_data(h, exec_state, hold);
  free(ex->in_data);
  free(ex->out[0].cap);
  free(ex->out[1].cap);
  weft__proc_free_strv(ex->argv);
  weft__proc_free_strv(ex->env);
  free(ex);
}

static void proc_handle_closed(weft_proc *p) {
  weft__holder_closed(&((exec_state *)p->data)->hold);
}

/* Closes the pipes still open (each clears its pointer). */
static void close_pipes(exec_state *ex) {
  int i;
  for (i = 0; i < 2; i++)
    if (ex->out[i].s != NULL)
      weft__stream_close(ex->out[i].s);
  if (ex->in != NULL)
    weft__stream_close(ex->in);
}

/* Closes every handle still open; the state is freed by the last close. */
static void exec_close(exec_state *ex) {
  weft__deadline_disarm(ex->proc.rt, &ex->timeout);
  close_pipes(ex);
  weft__proc_close(&ex->proc);
}

static void exec_wake(exec_state *ex) {
  if (ex->task != NULL)
    weft__task_wake(ex->task, WEFT_WOKEN);
}

static int exec_complete(exec_state *ex) {
  int i;
  if (!ex->proc.exited)
    return 0;
  if (ex->proc.killed)
    return 1;
  /* Past a timeout or cancel, what still holds a pipe open escaped the
     group (setsid): waiting for its EOF would wait for it to end. */
  if (ex->proc.terminating && !weft__proc_group_alive(&ex->proc))
    return 1;
  for (i = 0; i < 2; i++)
    if (ex->out[i].piped && !ex->out[i].eof)
      return 0;
  return 1;
}

static void on_exit_or_kill(weft_proc *p) {
  exec_wake((exec_state *)p->data);
}

/* The runtime is closing with this process still open. */
static void on_abandon(weft_proc *p) {
  exec_state *ex = (exec_state *)p->data;
  ex->task = NULL;
  exec_close(ex);
}

static void timeout_fire(weft_deadline *d) {
  exec_state *ex = weft_queue_data(d, exec_state, timeout);
  ex->timed_out = 1;
  weft__proc_terminate(&ex->proc);
  exec_wake(ex);
}

/* }======== */

/* {======== weft.exec: pipes */

/* A read brought bytes, EOF or an error (a failed read ends the output
   as EOF does: what was read is kept). */
static void out_read(weft_stream *s, ssize_t n) {
  exec_out *o = (exec_out *)s->owner;
  if (n > 0 && !o->lines && o->mode == OUT_CAPTURE && s->len > o->ex->max_capture) {
    s->len = o->ex->max_capture;   /* a plain capture keeps its offset at 0 */
    o->truncated = 1;
  }
  if (n > 0) {
    if (o->lines && memchr(s->buf + s->len - (size_t)n, '\n', (size_t)n) != NULL)
      exec_wake(o->ex);
  } else if (s->eof || s->rerr) {
    o->eof = 1;
    exec_wake(o->ex);
  }
}

/* A pipe stream held from C: its pointer *slot is cleared when it closes. */
static int new_pipe(exec_state *ex, weft_stream **slot, uv_stdio_container_t *c, int flags) {
  weft_stream *s = weft__stream_alloc(ex->proc.rt);
  if (s == NULL)
    return UV_ENOMEM;
  uv_pipe_init(ex->proc.rt->loop, &s->u.pipe, 0);
  s->slot = slot;
  *slot = s;
  c->flags = (uv_stdio_flags)(UV_CREATE_PIPE | flags);
  c->data.stream = weft__stream_handle(s);
  return 0;
}

/* Fills the uv stdio entries and creates the pipes they name. Returns 0
   or UV_ENOMEM (pipes made so far are closed by close_pipes). */
static int setup_stdio(exec_state *ex, uv_stdio_container_t *stdio) {
  int i;
  if (ex->in_data != NULL) {
    if (new_pipe(ex, &ex->in, &stdio[0], UV_READABLE_PIPE) != 0)
      return UV_ENOMEM;
  } else if (ex->in_null) {
    stdio[0].flags = UV_IGNORE;   /* the same empty input, without a pipe to write */
  } else {
    stdio[0].flags = UV_INHERIT_FD;
    stdio[0].data.fd = 0;
  }
  for (i = 0; i < 2; i++) {
    exec_out *o = &ex->out[i];
    o->ex = ex;
    if (o->mode == OUT_CAPTURE || o->lines) {
      if (new_pipe(ex, &o->s, &stdio[i + 1], UV_WRITABLE_PIPE) != 0)
        return UV_ENOMEM;
      o->piped = 1;
    } else if (o->mode == OUT_INHERIT) {
      stdio[i + 1].flags = UV_INHERIT_FD;
      stdio[i + 1].data.fd = i + 1;
    } else {
      stdio[i + 1].flags = UV_IGNORE;   /* the child gets /dev/null for 0-2 */
    }
  }
  return 0;
}

static void start_io(exec_state *ex) {
  int i;
  for (i = 0; i < 2; i++)
    if (ex->out[i].s != NULL && weft__stream_watch(ex->out[i].s, out_read, &ex->out[i]) != 0)
      ex->out[i].eof = 1;
  if (ex->in != NULL) {
    /* a child that does not read its input is not an error: a failed
       write only closes the pipe */
    weft__stream_write_close(ex->in, ex->in_data, ex->in_len);
    ex->in_data = NULL;
  }
}

/* }======== */

/* {======== weft.exec: options */

static int opt_field(lua_State *L, const char *name, int type, const char *what) {
  int t = lua_getfield(L, S_OPTS, name);
  if (t != LUA_TNIL && t != type && !(type == LUA_TNUMBER && lua_isnumber(L, -1)))
    return luaL_error(L, "bad option '%s' (%s expected, got %s)", name, what,
                      luaL_typename(L, -1));
  return t != LUA_TNIL;
}

static int opt_mode(lua_State *L, const char *name) {
  static const char *const modes[] = {"capture", "inherit", "null", NULL};
  return weft__proc_opt_stdio(L, S_OPTS, name, modes);   /* OUT_CAPTURE when absent */
}

static double opt_seconds(lua_State *L, const char *name, double dflt) {
  double s = dflt;
  if (opt_field(L, name, LUA_TNUMBER, "number")) {
    s = lua_tonumber(L, -1);
    if (!(s >= 0))
      luaL_error(L, "bad option '%s' (a number >= 0 expected)", name);
  }
  lua_pop(L, 1);
  return s;
}

/* Pushes the line callback option 'name' (or nil) into stack slot 'slot'. */
static void opt_callback(lua_State *L, const char *name, int slot) {
  opt_field(L, name, LUA_TFUNCTION, "function");
  lua_replace(L, slot);
}

/* Reads every option into ex (slots S_ON_OUT, S_ON_ERR are filled). */
static void parse_opts(lua_State *L, exec_state *ex, double *timeout) {
  ex->out[0].mode = opt_mode(L, "stdout");
  ex->out[1].mode = opt_mode(L, "stderr");
  opt_callback(L, "on_stdout", S_ON_OUT);
  opt_callback(L, "on_stderr", S_ON_ERR);
  opt_field(L, "on_spawn", LUA_TFUNCTION, "function");   /* called by exec_run */
  lua_pop(L, 1);
  ex->out[0].lines = !lua_isnil(L, S_ON_OUT);
  ex->out[1].lines = !lua_isnil(L, S_ON_ERR);
  *timeout = opt_seconds(L, "timeout", -1);
  ex->proc.grace_s = opt_seconds(L, "grace", WEFT_PROC_GRACE);
  if (ex->proc.grace_s == 0)
    ex->proc.grace_s = 1e-9;   /* zero means KILL right after TERM */
  ex->check = 1;
  if (lua_getfield(L, S_OPTS, "check") != LUA_TNIL)
    ex->check = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, S_OPTS, "batch");
  ex->batch = lua_toboolean(L, -1);
  lua_pop(L, 1);
  /* weft run's output layer (outlines.c): with batch, each batch is
     written by the sink and the callback gets only its last lines */
  lua_getfield(L, S_OPTS, "_sink");
  if (!lua_isnil(L, -1) && !weft__is_line_sink(L, -1))
    luaL_error(L, "bad option '_sink' (weft._line_sink expected, got %s)", luaL_typename(L, -1));
  ex->sink = ex->batch && !lua_isnil(L, -1);
  lua_replace(L, S_SINK);
  ex->max_capture = (size_t)-1;
  if (opt_field(L, "max_capture", LUA_TNUMBER, "number")) {
    lua_Number m = lua_tonumber(L, -1);
    if (!(m >= 0))
      luaL_error(L, "bad option 'max_capture' (a number >= 0 expected)");
    if (m < (lua_Number)((size_t)-1 / 2))
      ex->max_capture = (size_t)m;
  }
  lua_pop(L, 1);
  if (opt_field(L, "stdin", LUA_TSTRING, "string")) {
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    ex->in_null = len == 0;   /* what weft run gives every task's process */
    if (!ex->in_null) {
      ex->in_data = (char *)malloc(len);
      if (ex->in_data == NULL)
        luaL_error(L, "weft: out of memory");
      memcpy(ex->in_data, s, len);
      ex->in_len = len;
    }
  }
  lua_pop(L, 1);
}

/* }======== */

/* {======== weft.exec: the wait */

#define EXEC_BOX_MT "weft.exec_box"

static int box_gc(lua_State *L) {
  exec_state **box = (exec_state **)lua_touserdata(L, 1);
  exec_state *ex = *box;
  if (ex == NULL)
    return 0;
  *box = NULL;
  ex->task = NULL;
  if (!ex->proc.exited && !ex->proc.closing)
    weft__proc_terminate(&ex->proc);   /* reap_all_now finishes the job */
  weft__holder_release(&ex->hold);
  return 0;
}

/* Adds n delivered bytes to the captured copy of a stream with a line
   callback and a max_capture (past it they are only counted as cut). */
static void capture_delivered(exec_out *o, const char *p, size_t n) {
  size_t room = o->ex->max_capture - o->cap_len;
  if (n > room) {
    n = room;
    o->truncated = 1;
  }
  if (n == 0)
    return;
  if (o->cap_len + n > o->cap_size) {
    size_t size = o->cap_size ? o->cap_size : 65536;
    char *grown;
    while (size < o->cap_len + n)
      size *= 2;
    grown = (char *)realloc(o->cap, size);
    if (grown == NULL) {   /* keep what fits; the output itself goes on */
      o->truncated = 1;
      return;
    }
    o->cap = grown;
    o->cap_size = size;
  }
  memcpy(o->cap + o->cap_len, p, n);
  o->cap_len += n;
}

/* Does the stream's buffer keep every byte (a capture without a separate
   captured copy)? */
static int keeps_all(exec_state *ex, exec_out *o) {
  return o->mode == OUT_CAPTURE && ex->max_capture == (size_t)-1;
}

#define SINK_TAIL_LINES 20   /* lines of a sunk batch its callback gets (a task's tail) */

/* Pushes the last SINK_TAIL_LINES lines of p[0, n). */
static void push_last_lines(lua_State *L, const char *p, size_t n) {
  const char *start = weft__tail_start(p, n, SINK_TAIL_LINES);
  lua_pushlstring(L, start, (size_t)(p + n - start));
}

/* Calls the line callback of stream o (stack slot fn) for every complete
   line (with batch: once, for all of them, joined by newlines; with a
   sink, the sink then writes them and the callback gets the last ones
   only), and for the rest too when 'final'. A callback error is kept in
   S_CBERR, stops further delivery and terminates the process. */
static void deliver(lua_State *L, exec_state *ex, exec_out *o, int fn, int final) {
  weft_stream *s = o->s;
  while (o->lines && s != NULL && s->buf != NULL) {
    char *base = s->buf + s->off, *start = base + o->seen, *nl;
    size_t len = s->len - s->off, n;
    if (ex->batch)
      nl = (char *)memrchr(base + o->scanned, '\n', len - o->scanned);
    else
      nl = (char *)memchr(base + o->scanned, '\n', len - o->scanned);
    if (nl == NULL) {
      o->scanned = len;
      if (!final || o->seen == len)
        break;
      n = len - o->seen;
    } else {
      n = (size_t)(nl - start);
    }
    o->seen += n + (nl != NULL);
    o->scanned = o->seen;
    lua_pushvalue(L, fn);
    if (ex->sink)
      push_last_lines(L, start, n);
    else
      lua_pushlstring(L, start, n);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
      lua_replace(L, S_CBERR);
      ex->out[0].lines = ex->out[1].lines = 0;
      weft__proc_terminate(&ex->proc);
    } else if (ex->sink) {
      weft__line_sink_write(L, S_SINK, o == &ex->out[1], start, n);
    }
  }
  if (!keeps_all(ex, o) && o->seen > 0 && s != NULL) {   /* keep only the partial line */
    if (o->mode == OUT_CAPTURE)
      capture_delivered(o, s->buf + s->off, o->seen);
    s->off += o->seen;
    o->scanned -= o->seen;
    o->seen = 0;
  }
}

static void push_stream(lua_State *L, exec_state *ex, exec_out *o) {
  weft_stream *s = o->s;
  if (o->mode != OUT_CAPTURE) {
    lua_pushnil(L);
  } else if (!keeps_all(ex, o) && o->lines) {   /* the copy, and what was never delivered */
    if (s != NULL && s->buf != NULL)
      capture_delivered(o, s->buf + s->off, s->len - s->off);
    lua_pushlstring(L, o->cap != NULL ? o->cap : "", o->cap_len);
  } else if (s == NULL || s->buf == NULL) {
    lua_pushliteral(L, "");
  } else {
    lua_pushlstring(L, s->buf + s->off, s->len - s->off);
  }
}

/* Pushes {code=, signal=, stdout=, stderr=}. */
static void push_result(lua_State *L, exec_state *ex) {
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, ex->timed_out ? 124 : weft__proc_code(&ex->proc));
  lua_setfield(L, -2, "code");
  if (ex->proc.term_signal) {
    lua_pushinteger(L, ex->proc.term_signal);
    lua_setfield(L, -2, "signal");
  }
  push_stream(L, ex, &ex->out[0]);
  lua_setfield(L, -2, "stdout");
  push_stream(L, ex, &ex->out[1]);
  lua_setfield(L, -2, "stderr");
  if (ex->out[0].truncated || ex->out[1].truncated) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "truncated");
  }
}

/* Pushes the command line for messages: argv joined by spaces, cut at
   about 200 bytes. */
static const char *push_cmdline(lua_State *L) {
  luaL_Buffer b;
  lua_Integer i, n = luaL_len(L, S_ARGV);
  luaL_buffinit(L, &b);
  for (i = 1; i <= n && luaL_bufflen(&b) < 200; i++) {
    if (i > 1)
      luaL_addchar(&b, ' ');
    lua_geti(L, S_ARGV, i);
    luaL_addvalue(&b);
  }
  if (i <= n || luaL_bufflen(&b) > 200) {
    luaL_buffsub(&b, luaL_bufflen(&b) > 200 ? luaL_bufflen(&b) - 200 : 0);
    luaL_addstring(&b, "...");
  }
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

#define TAIL_LINES 5      /* lines of captured stderr a failure message quotes */
#define TAIL_BYTES 400    /* and at most this many bytes of them */

/* Pushes the end of the captured stderr (the string p of length end, or
   NULL) for a failure message: "" when there is none, ": line" for one
   line, else the lines indented below. */
static void push_stderr_tail(lua_State *L, const char *p, size_t end) {
  const char *start;
  size_t lines = 0;
  luaL_Buffer b;
  if (p == NULL)
    end = 0;
  while (end > 0 && (p[end - 1] == '\n' || p[end - 1] == '\r' || p[end - 1] == ' '))
    end--;
  if (end == 0) {
    lua_pushliteral(L, "");
    return;
  }
  start = p + end;
  while (start > p && (start[-1] != '\n' || ++lines < TAIL_LINES))
    start--;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, memchr(start, '\n', (size_t)(p + end - start)) ? ":\n  " : ": ");
  if (p + end - start > TAIL_BYTES) {
    start = p + end - TAIL_BYTES;
    luaL_addstring(&b, "...");
  }
  for (; start < p + end; start++) {
    luaL_addchar(&b, *start);
    if (*start == '\n')
      luaL_addstring(&b, "  ");
  }
  luaL_pushresult(&b);
}

/* Turns the result on top into a ProcessError and raises it. */
static int raise_failure(lua_State *L, exec_state *ex) {
  int res = lua_gettop(L);
  const char *prog = push_cmdline(L);
  const char *tail, *err;
  size_t errlen = 0;
  lua_getfield(L, res, "stderr");
  err = lua_tolstring(L, -1, &errlen);
  push_stderr_tail(L, err, errlen);
  lua_remove(L, -2);
  tail = lua_tostring(L, -1);
  if (ex->timed_out)
    weft__error_new(L, "ProcessError", "'%s' timed out (killed by signal %d)%s", prog,
                    ex->proc.term_signal, tail);
  else if (ex->proc.term_signal)
    weft__error_new(L, "ProcessError", "'%s' was killed by signal %d%s", prog,
                    ex->proc.term_signal, tail);
  else
    weft__error_new(L, "ProcessError", "'%s' exited with code %d%s", prog,
                    (int)ex->proc.exit_status, tail);
  lua_pushnil(L);
  while (lua_next(L, res)) {   /* copy code, signal, stdout, stderr */
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_settable(L, -4);
  }
  if (ex->timed_out) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "timeout");
  }
  lua_pushvalue(L, S_ARGV);
  lua_setfield(L, -2, "argv");
  return lua_error(L);
}

/* The process is reaped and its output read: release everything, then
   raise (cancellation, callback error, timeout, failure) or return. */
static int exec_done(lua_State *L, weft_task *t, exec_state *ex) {
  exec_state **box = (exec_state **)lua_touserdata(L, S_BOX);
  push_result(L, ex);
  ex->task = NULL;
  *box = NULL;
  ex->hold.released = 1;   /* the last close callback frees it */
  exec_close(ex);
  if (t->deliver)
    return weft__raise_pending(L, t);
  if (!lua_isnil(L, S_CBERR)) {
    lua_pushvalue(L, S_CBERR);
    return lua_error(L);
  }
  if (ex->timed_out || (ex->check && (ex->proc.term_signal || ex->proc.exit_status != 0)))
    return raise_failure(L, ex);
  return 1;
}

static int finish_exec(lua_State *L, int status, lua_KContext ctx) {
  weft_task *t = WEFT_UPRT(L)->current;
  exec_state *ex = *(exec_state **)lua_touserdata(L, S_BOX);
  int final;
  (void)status;
  (void)ctx;
  if (t->deliver)
    weft__proc_terminate(&ex->proc);
  final = exec_complete(ex);
  deliver(L, ex, &ex->out[0], S_ON_OUT, final);
  deliver(L, ex, &ex->out[1], S_ON_ERR, final);
  if (final)
    return exec_done(L, t, ex);
  return weft__suspend(L, t, "process", 0, 0, finish_exec);
}

/* exec with argv at S_ARGV and options at S_OPTS (stack exactly 2). */
static int exec_run(lua_State *L) {
  weft_runtime *rt = WEFT_UPRT(L);
  uv_process_options_t o;
  uv_stdio_container_t stdio[3];
  exec_state *ex, **box;
  double timeout;
  weft_task *t;
  int rc;
  lua_settop(L, S_SINK);
  box = (exec_state **)lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, EXEC_BOX_MT);
  lua_replace(L, S_BOX);
  ex = (exec_state *)calloc(1, sizeof *ex);
  if (ex == NULL)
    return luaL_error(L, "weft: out of memory");
  ex->timeout.slot = WEFT_HEAP_NONE;
  ex->hold.free = exec_free;
  ex->proc.rt = rt;
  ex->proc.grace.slot = WEFT_HEAP_NONE;
  *box = ex;             /* from here the box frees ex if we raise */
  parse_opts(L, ex, &timeout);
  ex->argv = weft__proc_argv(L, S_ARGV);
  lua_getfield(L, S_OPTS, "env");
  ex->env = weft__proc_env(L, -1);
  lua_pop(L, 1);
  t = weft__current(L, rt, "weft.exec");
  memset(&o, 0, sizeof o);
  memset(stdio, 0, sizeof stdio);
  o.file = ex->argv[0];
  o.args = ex->argv;
  o.env = ex->env;
  if (opt_field(L, "cwd", LUA_TSTRING, "string"))
    o.cwd = lua_tostring(L, -1);
  o.stdio_count = 3;
  o.stdio = stdio;
  ex->proc.data = ex;
  ex->proc.on_exit = on_exit_or_kill;
  ex->proc.on_kill = on_exit_or_kill;
  ex->proc.on_close = proc_handle_closed;
  ex->proc.on_abandon = on_abandon;
  ex->hold.nopen++;
  rc = setup_stdio(ex, stdio);
  if (rc == 0)
    rc = weft__proc_spawn(L, rt, &ex->proc, &o);
  else
    ex->hold.nopen--;   /* the process handle was never made */
  lua_pop(L, 1);
  weft__proc_free_strv(ex->argv);
  weft__proc_free_strv(ex->env);
  ex->argv = ex->env = NULL;
  if (rc != 0) {
    close_pipes(ex);
    weft__proc_push_spawn_error(L, rc, S_ARGV, o.cwd);
    return lua_error(L);
  }
  start_io(ex);
  /* on_spawn(pid): tells the caller the process group (weft run checks it
     for background leftovers when the task ends); an error there is
     treated as an on_stdout error: the process is terminated, then it is
     raised */
  if (lua_getfield(L, S_OPTS, "on_spawn") == LUA_TFUNCTION) {   /* checked by parse_opts */
    lua_pushinteger(L, ex->proc.pid);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
      lua_replace(L, S_CBERR);
      ex->out[0].lines = ex->out[1].lines = 0;
      weft__proc_terminate(&ex->proc);
    }
  } else {
    lua_pop(L, 1);
  }
  if (timeout >= 0) {
    ex->timeout.fire = timeout_fire;
    weft__deadline_arm(rt, &ex->timeout, weft__now(rt) + timeout);
  }
  ex->task = t;
  return weft__suspend(L, t, "process", 0, 0, finish_exec);
}

/* }======== */

/* {======== Lua functions */

static int process_exec(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  weft__proc_args(L);
  return exec_run(L);
}

static int process_sh(lua_State *L) {
  luaL_checkstring(L, 1);
  weft__proc_args(L);
  if (lua_type(L, 2) == LUA_TSTRING) {   /* no options given */
    lua_pop(L, 1);
    lua_newtable(L);
  }
  lua_createtable(L, 3, 0);
  lua_pushliteral(L, "/bin/sh");
  lua_rawseti(L, -2, 1);
  lua_pushliteral(L, "-c");
  lua_rawseti(L, -2, 2);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, 3);
  lua_replace(L, 1);
  return exec_run(L);
}

/* }======== */

static const luaL_Reg exec_funcs[] = {
  {"exec", process_exec},
  {"sh", process_sh},
  {NULL, NULL}
};

int weft__open_exec(lua_State *L, weft_runtime *rt) {
  static const luaL_Reg box_metas[] = {{"__gc", box_gc}, {NULL, NULL}};
  weft__class(L, rt, EXEC_BOX_MT, NULL, NULL, box_metas);
  lua_pop(L, 1);
  lua_pushlightuserdata(L, rt);
  luaL_setfuncs(L, exec_funcs, 1);
  return weft__open_outlines(L, rt);   /* what weft run does with exec's lines */
}
