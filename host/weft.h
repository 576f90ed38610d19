/*
** weft.h: the public C API of weft, for applications that embed it.
**
** A weft runtime belongs to one lua_State and runs its tasks on one libuv
** loop: its own, or the application's. With the application's loop, weft
** never calls uv_run: its handles live on that loop, so tasks move whenever
** the application runs it, and weft_step() runs ready tasks in between.
** Every function here is called from the loop's thread, except
** weft_future_post(), which any thread may call.
**
** Errors follow Lua: functions that run Lua return a Lua status (LUA_OK,
** LUA_ERRRUN, ...) and leave the error value on the stack.
*/
#ifndef WEFT_H
#define WEFT_H

#include <stddef.h>
#include <lua.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0
#define WEFT_VERSION_STRING "0.1.0"

typedef struct weft_runtime weft_runtime;   /* opaque */
typedef struct weft_cfuture weft_cfuture;   /* a future C code resolves */

/* The Lua module entry point: require "weft" (creates a runtime with its
   own loop in L if there is none yet). */
int luaopen_weft(lua_State *L);

/* {======== life */

/* Creates a Lua state with the standard libraries and weft (also as the
   global 'weft'), running on 'loop' (NULL: weft owns a loop of its own).
   Returns NULL when out of memory. */
weft_runtime *weft_new(uv_loop_t *loop);

/* The same on an existing state (weft must not be loaded in it yet); the
   state stays the caller's: weft_close then does not close it. */
weft_runtime *weft_open(lua_State *L, uv_loop_t *loop);

/* Cancels every task and lets them finish their cleanup (running the loop
   only if weft owns it), closes weft's handles and, for weft_new, the Lua
   state. With the application's loop, run it until its handles have
   closed before uv_loop_close. */
void weft_close(weft_runtime *rt);

lua_State *weft_state(weft_runtime *rt);
uv_loop_t *weft_loop(weft_runtime *rt);

/* }======== */

/* {======== running code */

/* Loads a chunk as a function on top of the stack (as luaL_loadbuffer). */
int weft_load(weft_runtime *rt, const char *code, size_t len, const char *name);

/* Spawns the function below its nargs arguments on top of the stack as a
   task; leaves the task on the stack. Returns LUA_OK or an error status. */
int weft_spawn(weft_runtime *rt, int nargs);

/* Runs the function below its nargs arguments as a task until it
   finishes, as weft.run: its results (or its error) are left on the stack.
   Only with a loop weft owns (it must run the loop); with the
   application's loop, spawn and let the loop run. */
int weft_run(weft_runtime *rt, int nargs);

/* One non-blocking step: with weft's own loop, one uv_run(UV_RUN_NOWAIT);
   with the application's, the tasks that are ready now. Returns the number
   of unfinished tasks. */
int weft_step(weft_runtime *rt);

/* Unfinished tasks. */
int weft_pending(weft_runtime *rt);

/* }======== */

/* {======== where output goes */

/* Reports: errors of tasks nobody awaited, hook failures, debug warnings.
   Default: stderr. */
typedef void (*weft_report_fn)(const char *message, void *ud);
void weft_set_report(weft_runtime *rt, weft_report_fn fn, void *ud);

/* print() in the runtime's state writes its line through fn (with the
   trailing newline). Default: stdout, as Lua's print. */
void weft_set_print(weft_runtime *rt, weft_report_fn fn, void *ud);

/* }======== */

/* {======== C awaitables */

/* Pushes a new weft.future onto L and returns its C handle. Lua code awaits
   it (f:await()). C resolves it exactly once, with weft_future_set / fail /
   fail_message, or from another thread with weft_future_post, also after
   a cancellation (the call then returns -1): that call frees the handle.
   While C still owes the result, the run stays alive (no Deadlock). */
weft_cfuture *weft_future_new(lua_State *L);

/* Resolves with the nvalues values on top of L (popped), any thread of the
   runtime's state. Returns 0, or -1 if it was already done or cancelled
   (the values are popped all the same). */
int weft_future_set(weft_cfuture *f, lua_State *L, int nvalues);

/* Fails with the value on top of L (popped), or with a message. */
int weft_future_fail(weft_cfuture *f, lua_State *L);
int weft_future_fail_message(weft_cfuture *f, const char *message);

/* Called once on the loop thread if the future is cancelled before C
   resolved it: its awaiting task was cancelled, or Lua called f:cancel().
   The operation behind it should stop; later set/fail calls return -1. */
typedef void (*weft_cancel_fn)(weft_cfuture *f, void *ud);
void weft_future_on_cancel(weft_cfuture *f, weft_cancel_fn fn, void *ud);

/* From any thread: arranges for push(L, data) to run on the loop thread;
   it pushes the results and returns how many, or returns -1 with an error
   value pushed to fail the future. Returns 0, or -1 when out of memory. */
typedef int (*weft_push_fn)(lua_State *L, void *data);
int weft_future_post(weft_cfuture *f, weft_push_fn push, void *data);

/* }======== */

#ifdef __cplusplus
}
#endif

#endif
