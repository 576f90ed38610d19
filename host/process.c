/*
** process.c: weft.process, a running process to talk to through its
** pipes, built on the spawn path of spawn.h (own process group, TERM then
** KILL after the grace period, reaping) and on the stream type of stream.c
** (each "pipe" is a weft stream: reads that keep what a cancelled read did
** not take, writes with back-pressure).
**
** Ownership: a live_proc (the weft_proc and its waiters) is malloc'd, since
** libuv holds the process handle until its close callback. The Lua userdata
** is a box pointing to it; the live_proc is freed once both the box let go
** (close or __gc) and the handle's close callback has run. The streams are
** separate userdata kept in the box's user values 1-3 (stdin, stdout,
** stderr); they own their pipes. The process handle is closed as soon as
** the leader has been reaped; after a termination by weft, an unreferenced
** timer first watches the rest of the group until it is gone or KILLed at
** the end of the grace period. An exited process holds nothing else.
** A box collected while its process runs terminates it (TERM, grace, KILL);
** when the runtime closes, spawn.c reaps what is left.
** User docs: docs/io.md "Processes" (weft.process).
*/
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "spawn.h"

#define WEFT_PROCESS_MT "weft.process"

enum { PIPE_PIPE = 0, PIPE_INHERIT, PIPE_NULL };

typedef struct live_proc {
  weft_proc proc;
  uv_timer_t straggle;    /* after a terminated leader's exit: the rest of its group */
  double kill_at;         /* when the stragglers get KILL (runtime clock) */
  int watching;           /* straggle is open */
  weft_queue waiters;     /* tasks in wait() or close() */
  weft_holder hold;       /* freed once the box let go and every handle closed */
} live_proc;

typedef struct proc_box {
  live_proc *lp;          /* NULL once released */
  int pid;
  int exited, code, signal;   /* copied when released after the exit */
} proc_box;

static const char *const stdio_names[] = {"stdin", "stdout", "stderr"};

/* {======== life of a live_proc */

static void live_free(weft_holder *h) {
  free(weft_queue_data(h, live_proc, hold));
}

static void wake_all(live_proc *lp) {
  weft__wake_waiters(&lp->waiters, WEFT_WOKEN, -1);
}

static void proc_closed(weft_proc *p) {
  weft__holder_closed(&((live_proc *)p->data)->hold);
}

static void straggle_closed(uv_handle_t *h) {
  weft__holder_closed(&((live_proc *)h->data)->hold);
}

static void stop_straggle(live_proc *lp) {
  if (lp->watching) {
    lp->watching = 0;
    uv_close((uv_handle_t *)&lp->straggle, straggle_closed);
  }
}

/* Every 10 ms after the leader's exit: closes once the group is gone,
   KILLs it when the grace period ends. */
static void straggle_tick(uv_timer_t *h) {
  live_proc *lp = (live_proc *)h->data;
  weft_proc *p = &lp->proc;
  if (weft__proc_group_alive(p)) {
    if (weft__now(p->rt) < lp->kill_at)
      return;
    kill(-p->pid, SIGKILL);
    p->killed = 1;
  }
  stop_straggle(lp);
  weft__proc_close(p);
}

/* The leader was terminated by weft and reaped but its group lives on (or
   has not been reaped by init yet): watch it with an unreferenced timer
   instead of the grace deadline, so nothing waits on the stragglers. */
static void watch_stragglers(live_proc *lp) {
  weft_proc *p = &lp->proc;
  lp->kill_at = p->grace.slot != WEFT_HEAP_NONE ? p->grace.when : weft__now(p->rt);
  weft__deadline_disarm(p->rt, &p->grace);
  uv_timer_init(p->rt->loop, &lp->straggle);
  lp->straggle.data = lp;
  lp->watching = 1;
  lp->hold.nopen++;
  uv_timer_start(&lp->straggle, straggle_tick, 10, 10);
  uv_unref((uv_handle_t *)&lp->straggle);
}

static void proc_exited(weft_proc *p) {
  live_proc *lp = (live_proc *)p->data;
  if (p->terminating && !p->killed && weft__proc_group_alive(p))
    watch_stragglers(lp);
  else
    weft__proc_close(p);
  wake_all(lp);
}

/* The runtime closes with the process still open (spawn.c reaped it). */
static void on_abandon(weft_proc *p) {
  stop_straggle((live_proc *)p->data);
  weft__proc_close(p);
  wake_all((live_proc *)p->data);
}

/* }======== */

/* {======== the box */

static proc_box *checkbox(lua_State *L, int idx) {
  return (proc_box *)luaL_checkudata(L, idx, WEFT_PROCESS_MT);
}

/* The box lets go of its live_proc, terminating a process still running. */
static void release(proc_box *b) {
  live_proc *lp = b->lp;
  if (lp == NULL)
    return;
  b->lp = NULL;
  b->exited = lp->proc.exited;
  b->code = weft__proc_code(&lp->proc);
  b->signal = lp->proc.term_signal;
  if (!lp->proc.exited)
    weft__proc_terminate(&lp->proc);
  else if (!lp->proc.closing && !lp->watching)
    weft__proc_close(&lp->proc);
  weft__holder_release(&lp->hold);
}

static int process_gc(lua_State *L) {
  release(checkbox(L, 1));
  return 0;
}

/* Pushes {code=, signal=} of an exited process. */
static int push_status(lua_State *L, int code, int sig) {
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, code);
  lua_setfield(L, -2, "code");
  if (sig != 0) {
    lua_pushinteger(L, sig);
    lua_setfield(L, -2, "signal");
  }
  return 1;
}

static int push_result(lua_State *L, proc_box *b) {
  if (b->lp != NULL)
    return push_status(L, weft__proc_code(&b->lp->proc), b->lp->proc.term_signal);
  return push_status(L, b->code, b->signal);
}

static int process_index(lua_State *L) {
  proc_box *b = checkbox(L, 1);
  const char *key = lua_tostring(L, 2);
  int i;
  if (key != NULL && strcmp(key, "pid") == 0) {
    lua_pushinteger(L, b->pid);
    return 1;
  }
  for (i = 0; key != NULL && i < 3; i++) {
    if (strcmp(key, stdio_names[i]) == 0) {
      lua_getiuservalue(L, 1, i + 1);
      return 1;
    }
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(2));   /* the methods */
  return 1;
}

static int process_tostring(lua_State *L) {
  proc_box *b = checkbox(L, 1);
  int running = b->lp != NULL && !b->lp->proc.exited;
  lua_pushfstring(L, "weft.process (pid %d, %s)", b->pid, running ? "running" : "exited");
  return 1;
}

/* }======== */

/* {======== wait, close, kill */

/* Can the running code suspend here (a task, no C boundary)? */
static weft_task *can_wait(lua_State *L, weft_runtime *rt) {
  weft_task *t = rt->current;
  if (t == NULL || !lua_isyieldable(L) || (L != t->co && !rt->chain_yieldable))
    return NULL;
  return t;
}

/* Continuation of wait and close (ctx 1 for close): a cancellation
   terminates the group, and the task resumes only once it is reaped. */
static int finish_wait(lua_State *L, int status, lua_KContext ctx) {
  weft_task *t = WEFT_UPRT(L)->current;
  proc_box *b = checkbox(L, 1);
  live_proc *lp = b->lp;
  (void)status;
  if (lp != NULL && !lp->proc.exited) {
    if (t->deliver)
      weft__proc_terminate(&lp->proc);
    weft_queue_insert_tail(&lp->waiters, &t->wait.node);
    return weft__suspend(L, t, "process", 1, ctx, finish_wait);
  }
  weft__check_pending(L, t);
  if (ctx)
    return 0;
  return push_result(L, b);
}

static int process_wait(lua_State *L) {
  proc_box *b = checkbox(L, 1);
  weft_task *t;
  lua_settop(L, 1);
  if (b->lp == NULL || b->lp->proc.exited)
    return push_result(L, b);
  t = weft__current(L, WEFT_UPRT(L), "process:wait");
  weft_queue_insert_tail(&b->lp->waiters, &t->wait.node);
  return weft__suspend(L, t, "process", 1, 0, finish_wait);
}

/* Closes the streams, terminates a running process and waits for it (not
   outside a task or where Lua cannot yield: then the loop reaps it later).
   Idempotent; wait() still tells the outcome afterwards. */
static int process_close(lua_State *L) {
  proc_box *b = checkbox(L, 1);
  weft_runtime *rt = WEFT_UPRT(L);
  weft_task *t;
  int i;
  lua_settop(L, 1);
  for (i = 1; i <= 3; i++) {
    weft_stream **slot;
    if (lua_getiuservalue(L, 1, i) == LUA_TUSERDATA) {
      slot = (weft_stream **)lua_touserdata(L, -1);
      if (*slot != NULL)
        weft__stream_close(*slot);
    }
    lua_pop(L, 1);
  }
  if (b->lp == NULL || b->lp->proc.exited)
    return 0;
  weft__proc_terminate(&b->lp->proc);
  if ((t = can_wait(L, rt)) == NULL)
    return 0;
  weft_queue_insert_tail(&b->lp->waiters, &t->wait.node);
  return weft__suspend(L, t, "process", 1, 1, finish_wait);
}

static const struct { const char *name; int sig; } signals[] = {
  {"SIGHUP", SIGHUP}, {"SIGINT", SIGINT}, {"SIGQUIT", SIGQUIT}, {"SIGKILL", SIGKILL},
  {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2}, {"SIGTERM", SIGTERM}, {"SIGALRM", SIGALRM},
  {"SIGPIPE", SIGPIPE}, {"SIGCONT", SIGCONT}, {"SIGSTOP", SIGSTOP}, {"SIGTSTP", SIGTSTP},
  {"SIGWINCH", SIGWINCH}, {NULL, 0}
};

static int check_signal(lua_State *L, int idx) {
  int i;
  const char *name;
  if (lua_isnoneornil(L, idx))
    return SIGTERM;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer n = luaL_checkinteger(L, idx);
    luaL_argcheck(L, n > 0 && n < 65, idx, "not a signal number");
    return (int)n;
  }
  name = luaL_checkstring(L, idx);
  for (i = 0; signals[i].name != NULL; i++)
    if (strcmp(name, signals[i].name) == 0 || strcmp(name, signals[i].name + 3) == 0)
      return signals[i].sig;
  return luaL_argerror(L, idx, lua_pushfstring(L, "unknown signal '%s'", name));
}

/* p:kill([signal]): signals the group; false when the process has exited. */
static int process_kill(lua_State *L) {
  proc_box *b = checkbox(L, 1);
  int sig = check_signal(L, 2);
  int ok = b->lp != NULL && !b->lp->proc.exited && weft__proc_signal(&b->lp->proc, sig) == 0;
  lua_pushboolean(L, ok);
  return 1;
}

/* }======== */

/* {======== weft.process */

/* Stack of process_new: argv, options, box, then scratch. */
enum { S_ARGV = 1, S_OPTS, S_BOX };

static int opt_stdio(lua_State *L, const char *name) {
  static const char *const modes[] = {"pipe", "inherit", "null", NULL};
  return weft__proc_opt_stdio(L, S_OPTS, name, modes);   /* PIPE_PIPE when absent */
}

static double opt_grace(lua_State *L) {
  double s = WEFT_PROC_GRACE;
  int t = lua_getfield(L, S_OPTS, "grace");
  if (t != LUA_TNIL) {
    if (!lua_isnumber(L, -1) || !((s = lua_tonumber(L, -1)) >= 0))
      luaL_error(L, "bad option 'grace' (a number >= 0 expected)");
  }
  lua_pop(L, 1);
  return s > 0 ? s : 1e-9;   /* zero means KILL right after TERM */
}

/* The options that can raise, read before anything is allocated. */
typedef struct spawn_opts {
  int mode[3];
  double grace;
  const char *cwd;      /* kept alive by the options table */
} spawn_opts;

static void parse_opts(lua_State *L, spawn_opts *so) {
  int i, t;
  for (i = 0; i < 3; i++)
    so->mode[i] = opt_stdio(L, stdio_names[i]);
  so->grace = opt_grace(L);
  so->cwd = NULL;
  t = lua_getfield(L, S_OPTS, "cwd");
  if (t != LUA_TNIL && t != LUA_TSTRING)
    luaL_error(L, "bad option 'cwd' (string expected, got %s)", luaL_typename(L, -1));
  so->cwd = lua_tostring(L, -1);
  lua_pop(L, 1);
  t = lua_getfield(L, S_OPTS, "env");
  if (t != LUA_TNIL && t != LUA_TTABLE)
    luaL_error(L, "bad option 'env' (table expected, got %s)", luaL_typename(L, -1));
  lua_pop(L, 1);
}

/* Creates the pipe streams the modes ask for and fills stdio. Returns 0 or
   a negative code (streams made so far are in s[] either way). */
static int setup_stdio(weft_runtime *rt, const spawn_opts *so, weft_stream **s,
                       uv_stdio_container_t *stdio) {
  int i;
  for (i = 0; i < 3; i++) {
    s[i] = NULL;
    if (so->mode[i] == PIPE_INHERIT) {
      stdio[i].flags = UV_INHERIT_FD;
      stdio[i].data.fd = i;
    } else if (so->mode[i] == PIPE_NULL) {
      stdio[i].flags = UV_IGNORE;   /* spawn.c gives them /dev/null */
    } else {
      if ((s[i] = weft__stream_alloc(rt)) == NULL)
        return UV_ENOMEM;
      uv_pipe_init(rt->loop, &s[i]->u.pipe, 0);
      stdio[i].flags = (uv_stdio_flags)(UV_CREATE_PIPE |
                                        (i == 0 ? UV_READABLE_PIPE : UV_WRITABLE_PIPE));
      stdio[i].data.stream = weft__stream_handle(s[i]);
    }
  }
  return 0;
}

/* Spawns with argv and env copied from Lua; frees them. */
static int spawn(lua_State *L, weft_runtime *rt, live_proc *lp, const spawn_opts *so,
                 uv_stdio_container_t *stdio) {
  uv_process_options_t o;
  char **argv = weft__proc_argv(L, S_ARGV), **env;
  int rc;
  lua_getfield(L, S_OPTS, "env");
  env = weft__proc_env(L, -1);   /* raises only on a bad table: checked above */
  lua_pop(L, 1);
  memset(&o, 0, sizeof o);
  o.file = argv[0];
  o.args = argv;
  o.env = env;
  o.cwd = so->cwd;
  o.stdio_count = 3;
  o.stdio = stdio;
  rc = weft__proc_spawn(L, rt, &lp->proc, &o);
  weft__proc_free_strv(argv);
  weft__proc_free_strv(env);
  return rc;
}

static live_proc *new_live_proc(lua_State *L, double grace) {
  live_proc *lp = (live_proc *)calloc(1, sizeof *lp);
  if (lp == NULL)
    luaL_error(L, "weft: out of memory");
  weft_queue_init(&lp->waiters);
  lp->hold.free = live_free;
  lp->proc.grace_s = grace;
  lp->proc.data = lp;
  lp->proc.on_exit = proc_exited;
  lp->proc.on_close = proc_closed;
  lp->proc.on_abandon = on_abandon;
  return lp;
}

static int process_new(lua_State *L) {
  weft_runtime *rt = WEFT_UPRT(L);
  uv_stdio_container_t stdio[3];
  weft_stream *s[3];
  spawn_opts so;
  proc_box *b;
  live_proc *lp;
  int rc, i;
  luaL_checktype(L, 1, LUA_TTABLE);
  weft__proc_args(L);
  parse_opts(L, &so);
  weft__proc_free_strv(weft__proc_argv(L, S_ARGV));   /* raise before allocating */
  b = (proc_box *)lua_newuserdatauv(L, sizeof *b, 3);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, WEFT_PROCESS_MT);
  memset(stdio, 0, sizeof stdio);
  lp = new_live_proc(L, so.grace);
  rc = setup_stdio(rt, &so, s, stdio);
  if (rc == 0)
    rc = spawn(L, rt, lp, &so, stdio);
  if (rc != 0) {
    for (i = 0; i < 3; i++)
      if (s[i] != NULL)
        weft__stream_close(s[i]);
    if (lp->proc.closing)   /* the handle was initialised: its callback frees */
      lp->hold.nopen = 1;
    weft__holder_release(&lp->hold);
    weft__proc_push_spawn_error(L, rc, S_ARGV, so.cwd);
    return lua_error(L);
  }
  lp->hold.nopen = 1;
  b->lp = lp;
  b->pid = lp->proc.pid;
  for (i = 0; i < 3; i++) {
    if (s[i] == NULL)
      continue;
    lua_pushfstring(L, "pid %d %s", b->pid, stdio_names[i]);
    weft__stream_push(L, s[i], lua_tostring(L, -1));
    lua_setiuservalue(L, S_BOX, i + 1);
    lua_pop(L, 1);
  }
  return 1;
}

/* }======== */

static const luaL_Reg process_methods[] = {
  {"wait", process_wait},
  {"kill", process_kill},
  {"close", process_close},
  {NULL, NULL}
};

static const luaL_Reg process_metas[] = {
  {"__tostring", process_tostring},
  {"__gc", process_gc},
  {"__close", process_close},
  {NULL, NULL}
};

static const luaL_Reg process_funcs[] = {
  {"process", process_new},
  {NULL, NULL}
};

int weft__open_process(lua_State *L, weft_runtime *rt) {
  weft__class(L, rt, WEFT_PROCESS_MT, process_methods, process_index, process_metas);
  lua_pop(L, 1);
  lua_pushlightuserdata(L, rt);
  luaL_setfuncs(L, process_funcs, 1);
  return 0;
}
