/*
** spawn.h: the spawn path every weft process goes through (spawn.c),
** shared with what builds on it: exec.c (weft.exec, weft.sh) and process.c
** (weft.process).
**
** A weft_proc is one child started with posix_spawn (vfork semantics: no
** page tables are copied) in its own session and process group (setsid, so
** the group id is the pid). spawn.c reaps it itself: one SIGCHLD watcher
** per runtime, referenced only while some child is unreaped, waitpid()s each
** of the runtime's own pids (libuv's watcher for uv_spawn's pids never sees
** them). While its handle is open the proc is on the runtime's list of live
** groups and in a static, signal-safe table that weft__process_kill_all_now()
** walks.
**
** Life cycle, for an owner that embeds a weft_proc in its own malloc'd
** struct (never in Lua-managed memory: libuv holds the handle until its
** close callback):
**   1. zero it, fill a uv_process_options_t (file, args, env, cwd, stdio:
**      pipes are the owner's, uv_pipe_init'ed; UV_IGNORE, UV_CREATE_PIPE,
**      UV_INHERIT_FD and UV_INHERIT_STREAM are understood as uv_spawn does),
**      set p->on_exit / p->on_close / p->data;
**   2. weft__proc_spawn(): 0, or a negative UV_E* (p->closing is set then
**      and p->on_close runs later, as after weft__proc_close);
**   3. p->on_exit(p) runs (from libuv, never with Lua running) once the
**      leader was reaped: p->exited, p->exit_status, p->term_signal are set;
**      p->on_kill(p), if set, runs when the grace period ended in KILL;
**   4. weft__proc_close() once the owner is done: disarms the grace
**      deadline, leaves the live list, closes the handle; p->on_close(p)
**      runs from the close callback and may free the owner's struct.
** weft__proc_terminate() sends TERM to the group and KILL after 'grace'
** seconds (runtime clock) unless the group is gone by then. When the runtime
** closes (lua_close), every proc still open gets TERM, up to its grace period,
** then KILL, is reaped, and p->on_abandon(p) is asked to close the owner's
** handles (it must call weft__proc_close()).
*/
#ifndef WEFT_SPAWN_H
#define WEFT_SPAWN_H

#include "internal.h"

#define WEFT_PROC_GRACE 5.0     /* default seconds between TERM and KILL */

typedef struct weft_proc weft_proc;
struct weft_proc_set;           /* spawn.c's per-runtime state */
typedef void (*weft_proc_cb)(weft_proc *p);

struct weft_proc {
  uv_idle_t handle;             /* never started: only closed, for on_close */
  struct weft_proc_set *set;    /* the runtime's live list and reaper */
  weft_runtime *rt;
  weft_queue live_node;         /* in the runtime's list while open */
  weft_deadline grace;          /* KILL the group when it fires */
  double grace_s;               /* seconds from TERM to KILL */
  int pid;                      /* also the process group id */
  int slot;                     /* in the signal-safe table, or -1 */
  int64_t exit_status;
  int term_signal;
  unsigned char exited;         /* the leader was reaped */
  unsigned char terminating;    /* TERM was sent by weft */
  unsigned char killed;         /* KILL was sent after the grace period */
  unsigned char closing;        /* weft__proc_close was called */
  weft_proc_cb on_exit, on_kill, on_close, on_abandon;
  void *data;
};

/* Spawns as uv_spawn would with UV_PROCESS_DETACHED (o->exit_cb and
   o->flags other than that are ignored; UV_PROCESS_SETUID/SETGID give
   UV_ENOTSUP). Returns 0 or a negative UV_E* code. L finds the runtime's
   live list. */
int weft__proc_spawn(lua_State *L, weft_runtime *rt, weft_proc *p,
                     uv_process_options_t *o);

/* Sends sig to the whole group. Returns 0, or -1 if nothing is left. */
int weft__proc_signal(weft_proc *p, int sig);

/* TERM now, KILL after p->grace_s unless the group is gone. Idempotent. */
void weft__proc_terminate(weft_proc *p);

/* Is some process of the group still alive (the leader or another)? */
int weft__proc_group_alive(weft_proc *p);

/* Stops tracking p and closes its handle; p->on_close runs later. */
void weft__proc_close(weft_proc *p);

/* The exit code as a shell reports it: 128 + signal for a signal death. */
int weft__proc_code(const weft_proc *p);

/* argv from the array part of the table at idx (at least one string):
   a NULL-terminated malloc'd array of malloc'd copies, or raises. */
char **weft__proc_argv(lua_State *L, int idx);

/* environ merged with the table at idx (string values set, false removes);
   NULL when idx is 0 or nil (inherit). Raises on a bad table. */
char **weft__proc_env(lua_State *L, int idx);

void weft__proc_free_strv(char **v);

/* Leaves argv at 1 and the options table at 2 (argv itself when no options
   table was given): weft.exec(argv [, opts]) and weft.process alike. */
void weft__proc_args(lua_State *L);

/* The stdio option 'name' of the options table at opts: the index of its
   value in modes (three names, then NULL), 0 when it is absent. Raises
   "bad option 'stdout' ("a", "b" or "c" expected, got "x")". */
int weft__proc_opt_stdio(lua_State *L, int opts, const char *name,
                         const char *const modes[]);

/* Pushes a ProcessError for a failed spawn: "cannot run 'prog': ...",
   with err.errno (libuv's name, "ENOENT"), err.code 127 or 126, err.argv
   (a copy of the table at argv_idx). When cwd (may be NULL) is no directory
   the child can enter, the error names it (err.cwd) instead of the program. */
void weft__proc_push_spawn_error(lua_State *L, int rc, int argv_idx, const char *cwd);

/* guard.c: a forked guard process kills the groups weft started but did
   not see end, when weft dies (kill -9 included). */
void weft__guard_watch(int pgid);
void weft__guard_forget(int pgid);

#endif
