/*
** main.c: the weft command. Flags follow lua(1): a script with arguments,
** -e, -l, -i, -v, -E, -W, -, and weft's own --debug and --trace before them;
** `weft run ...` goes to the pipeline runner in stdlib. Every chunk runs
** inside one main task, so top-level code can await.
**
** The process exits once the main task has returned and nothing keeps the
** run alive. Exit codes (docs/weft.1): 0, 1 for an uncaught error (also one
** in a task nobody awaited, or a deadlock), 2 for usage errors, 129 after
** SIGHUP, 130 after SIGINT, 143 after SIGTERM. The first signal cancels every task at its
** await point (a hook interrupts a task that never awaits); a second one
** exits at once.
**
** Signal state is static here because a signal handler needs it; the
** library itself keeps none.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <lualib.h>

#include <sqlite3.h>

#include "internal.h"
#include "weft.h"

static const char *progname = "weft";

/* {======== signals */

static weft_runtime *volatile signal_rt;   /* NULL once the run is closing */
static uv_async_t signal_async;
static volatile sig_atomic_t signal_count;
static volatile sig_atomic_t first_signal;
static volatile sig_atomic_t cancel_pending;
static volatile sig_atomic_t dump_pending;
static int serving;   /* finish_run drives what the main task left running */

static int signal_exit_code(int sig) {
  return 128 + sig;   /* 129 SIGHUP, 130 SIGINT, 143 SIGTERM, as a shell reports them */
}

/* Runs inside a task that did not await since the signal: cancel it there. */
static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  weft__cancel_from_hook(L, signal_rt);
}

static void on_signal(int sig) {
  weft_task *t;
  if (signal_rt == NULL) {   /* the runtime is closing or gone: nothing to cancel */
    weft__process_kill_all_now();
    _exit(signal_exit_code(sig));
  }
  t = signal_rt->current;
  if (signal_count++ > 0) {
    weft__process_kill_all_now();
    _exit(signal_exit_code(first_signal));
  }
  first_signal = sig;
  cancel_pending = 1;
  if (t != NULL && t->co != NULL)
    lua_sethook(t->co, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  uv_async_send(&signal_async);
}

/* SIGQUIT (Ctrl-\): print every live task on stderr; the run goes on. */
static void on_quit(int sig) {
  (void)sig;
  dump_pending = 1;
  uv_async_send(&signal_async);
}

static void cancel_all(weft_runtime *rt) {
  weft_queue *q;
  for (q = rt->live.next; q != &rt->live; q = q->next)
    weft__task_cancel(rt->L, weft_queue_data(q, weft_task, live_node), 0);
}

/* On the loop: cancel every task at its await point, or dump them. */
static void signal_work(uv_async_t *h) {
  weft_runtime *rt = (weft_runtime *)h->data;
  if (dump_pending) {
    dump_pending = 0;
    weft__dump_tasks(rt->L, rt);
    weft__report(rt, lua_tostring(rt->L, -1));   /* the REPL writes it above its prompt */
    lua_pop(rt->L, 1);
  }
  if (cancel_pending) {
    cancel_pending = 0;
    cancel_all(rt);
    /* past the main task, what keeps the run alive may be an open server:
       finish_run now only waits for the cancelled tasks' cleanup */
    if (serving)
      rt->stop_driving = 1;
  }
}

static void set_handler(int sig, void (*fn)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}

/* weft._restore_signal(name): weft.on_signal's last handler of SIGINT or
   SIGTERM was closed and libuv put the default action back: the CLI's
   cancel-everything handling comes back instead. */
static int restore_signal(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  if (strcmp(name, "SIGINT") == 0)
    set_handler(SIGINT, on_signal);
  else if (strcmp(name, "SIGTERM") == 0)
    set_handler(SIGTERM, on_signal);
  else if (strcmp(name, "SIGHUP") == 0)
    set_handler(SIGHUP, on_signal);
  else if (strcmp(name, "SIGQUIT") == 0)
    set_handler(SIGQUIT, on_quit);
  return 0;
}

static void install_signals(lua_State *L, weft_runtime *rt) {
  signal_rt = rt;
  uv_async_init(rt->loop, &signal_async, signal_work);
  signal_async.data = rt;
  uv_unref((uv_handle_t *)&signal_async);
  set_handler(SIGINT, on_signal);
  set_handler(SIGTERM, on_signal);
  set_handler(SIGHUP, on_signal);   /* a closed terminal: clean up as for TERM */
  set_handler(SIGQUIT, on_quit);
  signal(SIGPIPE, SIG_IGN);
  lua_getglobal(L, "weft");
  lua_pushcfunction(L, restore_signal);
  lua_setfield(L, -2, "_restore_signal");
  lua_pop(L, 1);
}

/* }======== */

/* {======== arguments */

typedef struct cli {
  int script;          /* index of the script in argv, 0 if none */
  int interactive;     /* -i */
  int version;         /* -v */
  int ignore_env;      /* -E */
  int has_chunks;      /* some -e or -l */
  int debug;
  const char *trace;
  const char *max_memory;   /* --max-memory SIZE */
  const char *step_budget;  /* --step-budget DURATION */
  int preempt;              /* --preempt */
} cli;

static void usage(const char *badopt) {
  if (badopt != NULL)
    fprintf(stderr, "%s: unrecognized option '%s'\n", progname, badopt);
  fprintf(stderr,
          "usage: %s [options] [script [args]]\n"
          "       %s run [-f FILE] [TARGET...] [options]   (see 'weft run --help')\n"
          "Available options are:\n"
          "  -e stat   execute string 'stat'\n"
          "  -i        enter interactive mode after executing 'script'\n"
          "  -l mod    require library 'mod' into global 'mod'\n"
          "  -l g=mod  require library 'mod' into global 'g'\n"
          "  -v        show version information\n"
          "  -E        ignore environment variables\n"
          "  -W        turn warnings on\n"
          "  --debug   debug mode: spawn sites, slow-step warnings (also WEFT_DEBUG=1)\n"
          "  --trace F write a Chrome trace-event JSON file of the run\n"
          "  --max-memory SIZE   fail a task that takes the state past SIZE (64M)\n"
          "  --step-budget TIME  interrupt a task running TIME without awaiting (50ms)\n"
          "  --preempt           with --step-budget: requeue such a task instead\n"
          "  --        stop handling options\n"
          "  -         stop handling options and execute stdin\n",
          progname, progname);
}

/* Parses argv like lua.c's collectargs, collecting -e/-l into 'actions'
   (a table on top of L). Returns 0, or -1 after a usage message. */
static int collect_args(lua_State *L, int argc, char **argv, cli *c) {
  int i, n = 0;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-') {
      c->script = i;
      return 0;
    }
    if (strcmp(a, "--") == 0) {
      c->script = i + 1 < argc ? i + 1 : 0;
      return 0;
    }
    if (strcmp(a, "-") == 0) {
      c->script = i;
      return 0;
    }
    if (strcmp(a, "--debug") == 0) {
      c->debug = 1;
    } else if (strcmp(a, "--trace") == 0) {
      if (++i >= argc) {
        usage(NULL);
        return -1;
      }
      c->trace = argv[i];
    } else if (strcmp(a, "--max-memory") == 0 || strcmp(a, "--step-budget") == 0) {
      if (++i >= argc) {
        usage(NULL);
        return -1;
      }
      *(a[2] == 'm' ? &c->max_memory : &c->step_budget) = argv[i];
    } else if (strcmp(a, "--preempt") == 0) {
      c->preempt = 1;
    } else if (strcmp(a, "-i") == 0) {
      c->interactive = 1;
      c->version = 1;
    } else if (strcmp(a, "-v") == 0) {
      c->version = 1;
    } else if (strcmp(a, "-E") == 0) {
      c->ignore_env = 1;
    } else if (strcmp(a, "-W") == 0) {
      lua_warning(L, "@on", 0);
    } else if (a[1] == 'e' || a[1] == 'l') {
      const char *v = a[2] != '\0' ? a + 2 : argv[++i];
      if (v == NULL) {
        usage(NULL);
        return -1;
      }
      c->has_chunks = 1;
      lua_createtable(L, 2, 0);
      lua_pushlstring(L, a + 1, 1);
      lua_rawseti(L, -2, 1);
      lua_pushstring(L, v);
      lua_rawseti(L, -2, 2);
      lua_rawseti(L, -2, ++n);
    } else {
      usage(a);
      return -1;
    }
  }
  return 0;
}

/* The global 'arg', as lua.c makes it. */
static void create_arg_table(lua_State *L, char **argv, int argc, int script) {
  int i, narg;
  narg = argc - (script + 1);   /* no script: script is 0, arg[0] the program */
  lua_createtable(L, narg, script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

/* -E, as lua.c's: the package library already read LUA_PATH and LUA_CPATH
   (the libraries are open before the arguments are read), so put back the
   compiled-in paths and mark the state as lua.c does for later loaders. */
static void ignore_lua_env(lua_State *L) {
  lua_pushboolean(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  lua_getglobal(L, "package");
  lua_pushliteral(L, LUA_PATH_DEFAULT);
  lua_setfield(L, -2, "path");
  lua_pushliteral(L, LUA_CPATH_DEFAULT);
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
}

/* }======== */

/* Prints the failure of the finished task on top of L, as lua(1) does. */
static void report_failure(lua_State *L) {
  int task = lua_gettop(L);
  const char *msg;
  lua_getiuservalue(L, task, WEFT_TASK_UV_RESULTS);
  if (lua_type(L, -1) == LUA_TSTRING || luaL_getmetafield(L, -1, "__tostring") != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TSTRING)
      lua_pop(L, 1);
    msg = luaL_tolstring(L, -1, NULL);
  } else {
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, -1));
  }
  fprintf(stderr, "%s: %s\n", progname, msg);
  if (weft__task_getuv(L, task, WEFT_TASK_MORE_TRACEBACK) == LUA_TSTRING)
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
  fflush(stderr);
  lua_settop(L, task);
}

static int run_main(lua_State *L, weft_runtime *rt, cli *c, int argc, char **argv) {
  int status = 0, i;
  weft_task *t;
  /* actions table is on top */
  lua_getglobal(L, "require");   /* what the main task runs: stdlib/weft/main.lua */
  lua_pushliteral(L, "weft.main");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK)
    return 1;
  lua_getfield(L, -1, "run");
  lua_remove(L, -2);
  lua_insert(L, -2);                                    /* chunk, actions */
  if (c->script)
    lua_pushstring(L, argv[c->script]);
  else if (!c->has_chunks && !c->version && !isatty(0))
    lua_pushliteral(L, "-");
  else
    lua_pushnil(L);
  lua_createtable(L, argc, 1);
  for (i = c->script ? c->script + 1 : argc; i < argc; i++)
    {
      lua_pushstring(L, argv[i]);
      lua_rawseti(L, -2, i - c->script);
    }
  lua_pushinteger(L, c->script ? argc - c->script - 1 : 0);
  lua_setfield(L, -2, "n");
  t = weft__spawn(L, rt, 3);
  t = weft__totask(L, -1);
  lua_pushliteral(L, "main");
  weft__task_setuv(L, -2, WEFT_TASK_MORE_NAME);
  rt->main_task = t;
  weft__drive(L, rt, t);
  rt->main_task = NULL;
  if (t->done.state == WEFT_FAILED) {
    weft__mark_observed(L, t);
    report_failure(L);
    status = 1;
  }
  lua_pop(L, 1);
  return status;
}

/* After the main task: serve what is still alive; after a signal or when
   the main task failed, cancel what is left and only wait for the tasks to
   finish their cleanup (as asyncio.run does). */
static int finish_run(lua_State *L, weft_runtime *rt, int main_failed) {
  int status = 0, rc;
  if (main_failed)
    cancel_all(rt);
  for (;;) {
    if (signal_count > 0 || main_failed) {
      while (rt->nlive > 0 && uv_loop_alive(rt->loop))
        uv_run(rt->loop, UV_RUN_ONCE);
      break;
    }
    serving = 1;
    rc = weft__drive_all(L, rt);
    serving = 0;
    rt->stop_driving = 0;
    if (rc == 0 && signal_count > 0)
      continue;   /* a signal ended the serving: wait for the cleanup */
    if (rc == 0)
      break;
    fprintf(stderr, "%s: %s\n", progname, luaL_tolstring(L, -1, NULL));
    lua_pop(L, 2);
    status = 1;
    break;
  }
  if (weft__report_unobserved(L, rt) > 0 || rt->nreported > 0)
    status = 1;   /* also errors in luv callbacks, reported as they happened */
  return status;
}

/* --trace FILE: start recording before anything runs; a file that cannot
   be written is an error now, not at the end. */
static int trace_call(lua_State *L, const char *fn, const char *path) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "weft.trace_run");
  if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
    lua_getfield(L, -1, fn);
    lua_remove(L, -2);
    lua_pushstring(L, path);
    if (lua_pcall(L, 1, 0, 0) == LUA_OK)
      return 0;
  }
  fprintf(stderr, "%s: --trace: %s\n", progname, lua_tostring(L, -1));
  lua_pop(L, 1);
  return 1;
}

/* The collector's pause while weft starts and, for `weft run`, while the
   Weftfile loads (weft.cli sets Lua's default back then): the stdlib and
   a Weftfile are a few hundred KiB, nearly all of it live, which the
   default pause (a cycle each time the heap doubles) marks again and
   again: 0.2-0.7 M instructions of an examples/build no-op, by where the
   cycles fall (issue 13). Garbage made meanwhile stays within about 4x
   what is live, as against 2x (startup_spec checks it stays bounded). */
#define STARTUP_GC_PAUSE 400
#define DEFAULT_GC_PAUSE 200   /* Lua's LUAI_GCPAUSE */

static void print_version(void) {
  printf("weft %s (%s, libuv %s)\n", WEFT_VERSION, LUA_RELEASE, uv_version_string());
  fflush(stdout);
}

/* `weft run ARGS` and `weft why TASK` (the latter as `--why TASK` to weft.cli). */
static int run_pipeline(lua_State *L, int argc, char **argv) {
  int i, why = strcmp(argv[1], "why") == 0;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "weft.cli");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "%s run: the pipeline runner is not available: %s\n", progname,
            lua_tostring(L, -1));
    return 2;
  }
  lua_createtable(L, argc, 0);
  if (why) {
    lua_pushliteral(L, "--why");
    lua_rawseti(L, -2, 1);
  }
  for (i = 2; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - 1 + why);
  }
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "%s run: %s\n", progname, luaL_tolstring(L, -1, NULL));
    return 1;
  }
  return (int)luaL_optinteger(L, -1, 0);
}

/* A closed stdin, stdout or stderr would be taken by the first fd weft
   opens (the loop's epoll fd, a pipe) and later written to or closed as
   if it were stdio: give each closed one /dev/null first. */
static void ensure_stdio(void) {
  int fd;
  for (fd = 0; fd <= 2; fd++)
    if (fcntl(fd, F_GETFD) == -1 && open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) == -1)
      return;
}

/* After `weft run`: true when closing the state would only free memory, so
   the process may end without lua_close (1.1 M instructions of the
   examples/build no-op). The runner has closed its state database and its
   run lock itself (a statement left to the collector would keep the
   database open: then the state is closed as before); no task is alive and
   nothing keeps the loop alive (no process running, no server listening,
   no write or request pending, no timer): what is left are closed or idle
   handles, whose fds the kernel closes as close would. stdio, the Lua io
   library's files included, is flushed by exit(). Finalizers a Weftfile
   set on its own tables are not run, as in any process that ends without
   closing its Lua state. */
static int only_memory_left(weft_runtime *rt) {
  return rt->nlive == 0 && !uv_loop_alive(rt->loop) && weft__statedb_open_handles() == 0;
}

int main(int argc, char **argv) {
  lua_State *L;
  weft_pool *pool;
  ensure_stdio();
  /* SQLite counts every allocation under a global mutex for
     sqlite3_memory_used(), which weft never asks: 0.18 M instructions of an
     examples/build no-op (issue 13). Set for this process only, before
     SQLite initializes; weft.so and libweft leave their host's SQLite be. */
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  L = weft__pool_state(&pool);   /* luaL_newstate's, with a faster allocator */
  weft_runtime *rt;
  cli c;
  int status = 0, pipeline = 0;
  if (L == NULL) {
    fprintf(stderr, "%s: cannot create state: not enough memory\n", progname);
    return 1;
  }
  memset(&c, 0, sizeof c);
  lua_gc(L, LUA_GCINC, STARTUP_GC_PAUSE, 0, 0);
  luaL_openlibs(L);
  luaL_requiref(L, "weft", luaopen_weft, 1);
  lua_pop(L, 1);
  rt = weft__runtime(L);
  install_signals(L, rt);
  if (argc > 1 && (strcmp(argv[1], "run") == 0 || strcmp(argv[1], "why") == 0)) {
    status = run_pipeline(L, argc, argv);
    pipeline = 1;
  } else {
    lua_gc(L, LUA_GCINC, DEFAULT_GC_PAUSE, 0, 0);   /* the user's code runs from here */
    lua_newtable(L);
    if (collect_args(L, argc, argv, &c) != 0) {
      status = 2;
    } else if (weft__envelope_configure(L, rt, c.max_memory, c.step_budget, c.preempt) != 0) {
      fprintf(stderr, "%s: %s\n", progname, lua_tostring(L, -1));
      status = 2;
    } else {
      if (c.debug)
        rt->debug = 1;
      if (c.ignore_env)
        ignore_lua_env(L);
      create_arg_table(L, argv, argc, c.script);
      if (c.version)
        print_version();
      if (c.trace != NULL && trace_call(L, "start", c.trace) != 0) {
        status = 1;
      } else {
        int repl = c.interactive || (c.script == 0 && !c.has_chunks && !c.version && isatty(0));
        if (repl && !c.interactive)
          print_version();   /* the banner, as lua(1) */
        status = run_main(L, rt, &c, argc, argv);
        if (status == 0 && signal_count == 0 && repl)
          status = weft__repl(L, rt);   /* right after the script, as lua -i */
        status |= finish_run(L, rt, status != 0);
        if (c.trace != NULL)
          status |= trace_call(L, "stop", c.trace);
      }
    }
  }
  if (signal_count > 0)
    status = signal_exit_code(first_signal);
  signal_rt = NULL;   /* a hangup after the run (a closed terminal) must not touch it */
  if (pipeline && only_memory_left(rt))
    exit(status);
  uv_close((uv_handle_t *)&signal_async, NULL);
  lua_close(L);
  weft__pool_free(pool);
  return status;
}
