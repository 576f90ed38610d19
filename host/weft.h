/*
** weft.h: the public C API of weft, for applications that embed it.
**
** A weft runtime belongs to one lua_State and runs its tasks on one libuv
** loop: its own, or the application's. With the application's loop, weft
** never calls uv_run: its handles live on that loop, so tasks move whenever
** the application runs it, and weft_step() runs ready tasks in between.
**
** Threads: every function here is called from the loop's thread, except
** weft_future_post() and weft_interrupt(), which any thread may call.
**
** Errors follow Lua: functions that run Lua return a Lua status (LUA_OK,
** LUA_ERRRUN, ...) and leave the error value on the stack. Stack notes
** follow lua.h's manual: [-o, +p] pops o values and pushes p.
**
** The whole guide: docs/embedding.md (installed in share/doc/weft).
*/
#ifndef WEFT_H
#define WEFT_H

/* uv.h needs POSIX types; a strict -std=c11 build without feature macros
   gets them here when weft.h comes first. weft.h itself needs only the
   name uv_loop_t, so it also works when uv.h cannot be included. */
#if defined(__STRICT_ANSI__) && !defined(_FEATURES_H) && !defined(_POSIX_C_SOURCE) && \
    !defined(_XOPEN_SOURCE) && !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <stddef.h>
#include <lua.h>

#if !defined(__STRICT_ANSI__) || defined(_POSIX_C_SOURCE) || defined(_XOPEN_SOURCE) || \
    defined(_GNU_SOURCE) || defined(_DEFAULT_SOURCE)
#include <uv.h>
#else
typedef struct uv_loop_s uv_loop_t;
#endif

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(WEFT_STATIC)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0
#define WEFT_VERSION_STRING "0.1.0"

typedef struct weft_runtime weft_runtime;   /* opaque */
typedef struct weft_cfuture weft_cfuture;   /* a future C code resolves */
typedef struct weft_task weft_task;         /* a task (see "Tasks from C") */

/* The Lua module entry point: require "weft" (creates a runtime with its
   own loop in L if there is none yet). */
WEFT_API int luaopen_weft(lua_State *L);

/* {======== life */

/* Creates a Lua state with the standard libraries and weft (also as the
   global 'weft'), running on 'loop' (NULL: weft owns a loop of its own).
   Returns NULL when out of memory. */
WEFT_API weft_runtime *weft_new(uv_loop_t *loop);

/* The same on an existing state (weft must not be loaded in it yet); the
   state stays the caller's: weft_close then does not close it. */
WEFT_API weft_runtime *weft_open(lua_State *L, uv_loop_t *loop);

/* The runtime of a state, or NULL (e.g. in a C function called from Lua). */
WEFT_API weft_runtime *weft_from_state(lua_State *L);              /* [-0, +0] */

/* Step one of two of a clean shutdown: cancels every task (also those
   spawned while cleanup runs), lets their cleanup (finally, <close>) run
   while the application keeps driving its loop (or calling weft_step),
   reports errors nobody observed, and calls done(rt, ud) once, on the loop
   thread, when no task is left (at once if none is). New weft_spawn calls
   fail from now on. Returns 0, or -1 if a shutdown was already asked. */
typedef void (*weft_shutdown_fn)(weft_runtime *rt, void *ud);
WEFT_API int weft_shutdown(weft_runtime *rt, weft_shutdown_fn done, void *ud);

/* Frees the runtime (and, for weft_new, the Lua state). Tasks still alive
   are cancelled and given the turns weft can run on its own (all of them
   with weft's loop; on the application's loop only what is ready now: use
   weft_shutdown first). C futures: see weft_future_post. With the
   application's loop, run it until its handles have closed before
   uv_loop_close. */
WEFT_API void weft_close(weft_runtime *rt);

WEFT_API lua_State *weft_state(weft_runtime *rt);
WEFT_API uv_loop_t *weft_loop(weft_runtime *rt);

/* }======== */

/* {======== running code */

/* Loads a chunk as a function on top of the stack (as luaL_loadbuffer). */
WEFT_API int weft_load(weft_runtime *rt, const char *code, size_t len,
                       const char *name);                          /* [-0, +1] */

/* Spawns the function below its nargs arguments on top of the stack as a
   task; leaves the task on the stack. Returns LUA_OK or an error status
   (error value left instead). */
WEFT_API int weft_spawn(weft_runtime *rt, int nargs);    /* [-(nargs+1), +1] */

/* Runs the function below its nargs arguments as a task until it
   finishes, as weft.run: its results (or its error) are left on the stack.
   Only with a loop weft owns (it must run the loop); with the
   application's loop, spawn and let the loop run. */
WEFT_API int weft_run(weft_runtime *rt, int nargs);      /* [-(nargs+1), +?] */

/* One non-blocking step: with weft's own loop, one uv_run(UV_RUN_NOWAIT);
   with the application's, the tasks that are ready now (and the checks of
   a loop turn: reports, deadlock, shutdown). Returns the number of
   unfinished tasks. */
WEFT_API int weft_step(weft_runtime *rt);

/* Unfinished tasks. */
WEFT_API int weft_pending(weft_runtime *rt);

/* }======== */

/* {======== tasks from C

   A weft_task pointer is the task itself. Borrowed pointers (weft_totask)
   are valid while the task's Lua value is reachable (on a stack, in a
   table); weft_task_hold makes the pointer the application's until the
   matching weft_task_drop (holds count). */

enum {
  WEFT_TASK_PENDING = 0,      /* not finished (ready or waiting) */
  WEFT_TASK_RUNNING,          /* running now (the caller is inside it) */
  WEFT_TASK_DONE,
  WEFT_TASK_FAILED,
  WEFT_TASK_CANCELLED
};

/* The task at idx (borrowed), or NULL if the value is not a task. */
WEFT_API weft_task *weft_totask(lua_State *L, int idx);            /* [-0, +0] */

WEFT_API weft_task *weft_task_hold(weft_task *t);                  /* [-0, +0] */
WEFT_API void weft_task_drop(weft_task *t);                        /* [-0, +0] */

/* Pushes the task's Lua value. */
WEFT_API void weft_task_push(lua_State *L, weft_task *t);          /* [-0, +1] */

/* Asks for cancellation (Cancelled raised at its next await point).
   Returns 1, or 0 if it had already finished. */
WEFT_API int weft_task_cancel(weft_task *t);                       /* [-0, +0] */

/* One of WEFT_TASK_*. */
WEFT_API int weft_task_status(weft_task *t);                       /* [-0, +0] */

/* A finished task's outcome; taking it counts as observing the error.
   DONE: pushes the results, *n = how many, returns LUA_OK.
   FAILED / CANCELLED: pushes the error value and its traceback (a string,
   or nil for a cancellation), *n = 2, returns LUA_ERRRUN.
   Not finished: pushes nothing, *n = 0, returns -1. */
WEFT_API int weft_task_result(weft_task *t, lua_State *L, int *n);  /* [-0, +(0|n)] */

/* Calls cb(t, ud) once on the loop thread when t finishes (at once if it
   has). The task is held until then. Callbacks of tasks that never finish
   are dropped uncalled by weft_close. Returns 0, or -1 out of memory. */
typedef void (*weft_task_fn)(weft_task *t, void *ud);
WEFT_API int weft_task_on_done(weft_task *t, weft_task_fn cb, void *ud);  /* [-0, +0] */

/* }======== */

/* {======== where output goes */

/* Reports: errors of tasks nobody awaited (at the latest one loop turn
   after the task finished, in every driving mode), a deadlock among
   weft's tasks on the application's loop, hook failures, debug warnings.
   Default: stderr. */
typedef void (*weft_report_fn)(const char *message, void *ud);
WEFT_API void weft_set_report(weft_runtime *rt, weft_report_fn fn, void *ud);

/* print() in the runtime's state writes its line through fn (with the
   trailing newline). Default: stdout, as Lua's print. */
WEFT_API void weft_set_print(weft_runtime *rt, weft_report_fn fn, void *ud);

/* }======== */

/* {======== safety envelope, for untrusted scripts */

/* Limits the memory of the state to 'bytes' (0: no limit) for allocations
   made while a task runs: such a task fails with a MemoryError "memory
   limit exceeded"; weft's own work and the other tasks go on. Returns 0,
   or -1 out of memory. */
WEFT_API int weft_set_memory_limit(weft_runtime *rt, size_t bytes);
WEFT_API size_t weft_memory_used(weft_runtime *rt);

/* A task that runs 'seconds' (0: no budget) without awaiting is stopped
   where it is with a Timeout error naming it and its line; it cannot catch
   it. With preempt, it is requeued instead (it goes on next turn after the
   others ran), and stopped only where it cannot yield. Returns 0 or -1. */
WEFT_API int weft_set_step_budget(weft_runtime *rt, double seconds, int preempt);

/* Any thread (until weft_close): stops the task running now with a
   Cancelled error it cannot catch. Returns 1, or 0 when no task was
   running. */
WEFT_API int weft_interrupt(weft_runtime *rt);

/* Pushes a new environment table for untrusted code: the base functions
   without load of binary chunks, dofile, loadfile, require, collectgarbage
   and the metatables of values it did not make; copies of string (no dump),
   table, math, utf8, coroutine; weft without process, exec, sh, fs, net,
   http and threads; no os, io, debug, package. 'allow' (NULL-terminated,
   or NULL) adds globals ("os") or fields ("os.time", "weft.fs") from the
   full state. Returns LUA_OK, or an error status with the message pushed
   instead (a name that is not in the state). */
WEFT_API int weft_sandbox(weft_runtime *rt, const char *const *allow);  /* [-0, +1] */

/* Loads text (never bytecode) as a function whose _ENV is the table at
   env_idx (as made by weft_sandbox). */
WEFT_API int weft_load_env(weft_runtime *rt, const char *code, size_t len,
                           const char *name, int env_idx);          /* [-0, +1] */

/* }======== */

/* {======== C awaitables */

/* Pushes a new weft.future onto L and returns its C handle. Lua code awaits
   it (f:await()). C resolves it exactly once, with weft_future_set / fail /
   fail_message, or from another thread with weft_future_post, also after
   a cancellation (the call then returns -1): that call frees the handle.
   While C still owes the result, the run stays alive (no Deadlock). */
WEFT_API weft_cfuture *weft_future_new(lua_State *L);               /* [-0, +1] */

/* Resolves with the nvalues values on top of L (popped), any thread of the
   runtime's state. Returns 0, or -1 if it was already done or cancelled or
   the runtime closed (the values are popped all the same). */
WEFT_API int weft_future_set(weft_cfuture *f, lua_State *L, int nvalues); /* [-nvalues, +0] */

/* Fails with the value on top of L (popped), or with a message. */
WEFT_API int weft_future_fail(weft_cfuture *f, lua_State *L);      /* [-1, +0] */
WEFT_API int weft_future_fail_message(weft_cfuture *f, const char *message);

/* Called once on the loop thread if the future is cancelled before C
   resolved it: its awaiting task was cancelled, or Lua called f:cancel().
   The operation behind it should stop; later set/fail calls return -1. */
typedef void (*weft_cancel_fn)(weft_cfuture *f, void *ud);
WEFT_API void weft_future_on_cancel(weft_cfuture *f, weft_cancel_fn fn, void *ud);

/* From any thread: arranges for push(L, data) to run on the loop thread;
   it pushes the results and returns how many, or returns -1 with an error
   value pushed to fail the future. Returns 0 (queued: push will run,
   at the latest inside weft_close), or -1 when refused: the runtime has
   closed (or is out of memory). A refused post has freed f; data stays
   the caller's. */
typedef int (*weft_push_fn)(lua_State *L, void *data);
WEFT_API int weft_future_post(weft_cfuture *f, weft_push_fn push, void *data);

/* }======== */

#ifdef __cplusplus
}
#endif

#endif
