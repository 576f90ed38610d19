/*
** internal.h: what host/ files share and nothing else sees: the runtime, the
** task, waiters and completions, the weft__ prototypes and metatable names.
**
** Ownership in one paragraph: a runtime belongs to one Lua state and lives in
** a full userdata kept in that state's registry. The runtime's anchor table
** holds every unfinished task (its object, or a light task's thread), so a
** spawned task is never collected.
** Objects keep their Lua values (functions, results, names) in user values,
** traced by the GC. Wait lists are intrusive: a waiter node lives inside the
** task (or inside a userdata on the waiting C frame's stack) and unlinks itself.
*/
#ifndef WEFT_INTERNAL_H
#define WEFT_INTERNAL_H

#include <stdint.h>
#include <lua.h>
#include <lauxlib.h>
#include <uv.h>

#include "compat.h"
#include "heap.h"
#include "queue.h"

#define WEFT_VERSION "0.1.0"

#define WEFT_TASK_MT "weft.task"
#define WEFT_FUTURE_MT "weft.future"
#define WEFT_EVENT_MT "weft.event"
#define WEFT_LOCK_MT "weft.lock"
#define WEFT_SEMAPHORE_MT "weft.semaphore"
#define WEFT_CONDITION_MT "weft.condition"
#define WEFT_QUEUE_MT "weft.queue"
#define WEFT_GROUP_MT "weft.group"
#define WEFT_ERROR_MT "weft.error"

typedef struct weft_runtime weft_runtime;
typedef struct weft_task weft_task;
typedef struct weft_waiter weft_waiter;

/* Why a suspended task was made ready again. */
enum {
  WEFT_WOKEN = 1,     /* what it waited on happened (a lock or slot may be its) */
  WEFT_TIMEDOUT,      /* its own deadline fired */
  WEFT_INTERRUPTED,   /* a pending error (Cancelled, Deadlock) must be raised */
  WEFT_CLOSED         /* the object it waited on was closed */
};

/* A node in some wait list. wake() is called once, after the node has been
   unlinked, from C (never with Lua running for the woken task). */
typedef void (*weft_wake_cb)(weft_waiter *w, int reason);
struct weft_waiter {
  weft_queue node;
  weft_wake_cb wake;
};

/* What tasks and futures have in common: an outcome and a wait list. */
enum { WEFT_PENDING = 0, WEFT_DONE, WEFT_FAILED, WEFT_CANCELLED };
typedef struct weft_completion {
  weft_queue waiters;
  unsigned char state;      /* WEFT_PENDING ... WEFT_CANCELLED */
  unsigned char observed;   /* someone took its outcome (for error reports) */
  int nresults;             /* results kept in user value 1, packed if > 1 */
} weft_completion;

/* Task life cycle, as the scheduler sees it. */
enum {
  WEFT_T_NEW = 0,     /* spawned, never resumed (it is in the ready queue) */
  WEFT_T_READY,       /* in the ready queue */
  WEFT_T_RUNNING,
  WEFT_T_SUSPENDED,   /* waiting for its waiter or deadline to fire */
  WEFT_T_FINISHED
};

/* Task user values. */
enum {
  WEFT_TASK_UV_RESULTS = 1,   /* the results (a table if more than one) or the error */
  WEFT_TASK_UV_THREAD,        /* its thread, while unfinished (task.c: hold_object) */
  WEFT_TASK_UV_MORE,          /* nil, or a table of the rarely set values below */
  WEFT_TASK_UV_ANCHOR,        /* a light task's object: what holds its memory */
  WEFT_TASK_NUV = WEFT_TASK_UV_MORE
};

/* What a task object rarely holds: keys of its MORE table, read and set
   with weft__task_getuv and weft__task_setuv (as lua_getiuservalue and
   lua_setiuservalue would). Most tasks have none of them: two user values
   fewer is 32 bytes less for each task. */
enum {
  WEFT_TASK_MORE_NAME = 1,         /* name string, nil for the default "task-<id>" */
  WEFT_TASK_MORE_PENDING,          /* error to raise at the next await point */
  WEFT_TASK_MORE_CREATED,          /* "file:line" of its spawn (debug mode) */
  WEFT_TASK_MORE_TRACEBACK = WEFT_TASK_MORE_PENDING   /* after a failure */
};

struct weft_task {
  weft_runtime *rt;
  lua_State *co;              /* its thread while unfinished */
  weft_queue ready_node;      /* in rt->ready while ready */
  weft_queue live_node;       /* in rt->live while unfinished, oldest first */
  weft_waiter wait;           /* its own node for whatever it waits on */
  weft_deadline deadline;     /* its own deadline (sleep, wait_for) */
  weft_completion done;       /* who waits for this task */
  uint64_t id;
  double started;             /* clock at spawn */
  int co_slot;                /* its thread's slot in the runtime's anchor table, which
                                 holds its object while it has one and is unfinished */
  int anchor_ref;             /* light: registry ref to what holds this memory */
  int cancel_requests;        /* cancels not yet taken back (as asyncio's cancelling()) */
  int on_idx;                 /* while suspended: the awaited object's index on on_L (0: none) */
  unsigned char state;        /* WEFT_T_* */
  unsigned char wake_reason;  /* WEFT_WOKEN ... of the last wake-up */
  unsigned char deliver;      /* user value PENDING must be raised at the next await */
  unsigned char hook_raised;  /* an error was raised from a hook: never pool its thread */
  unsigned char light;        /* no Lua object yet (weft__spawn_light) */
  const char *on;             /* what it waits on, for Deadlock and weft.tasks() */
  lua_State *on_L;            /* while suspended: the thread whose stack holds the
                                 awaited object (at on_idx) */
  weft_task *run_child;       /* the task a nested weft.run in it waits for */
  /* Output attribution (issue 15): whose output this task's prints and
     processes are, copied from the spawning task in init_task; stdlib reads
     and sets it with weft._label (the pipeline puts a task record's index). */
  lua_Integer label;
};

struct weft_runtime {
  lua_State *L;               /* the main thread of the state it belongs to */
  uv_loop_t *loop;
  uv_loop_t own_loop;
  int owns_loop;
  uv_idle_t idle;             /* active (and referenced) while tasks are ready */
  uv_timer_t timer;           /* armed for the earliest deadline */
  uv_prepare_t prepare;       /* with check: measures idle time for instruments */
  uv_check_t check;
  uint64_t poll_started;      /* hrtime when the loop began to wait */
  int instruments;            /* how many are installed: the one branch on hot paths */
  int instruments_ref;        /* registry: array of instrument handles */
  weft_heap deadlines;
  weft_queue ready;
  weft_queue live;
  int nlive;
  weft_task *current;         /* the running task, or NULL */
  const void *task_mt;        /* the task metatable, for fast type checks */
  const void *sorter_mt;      /* the same for weft.sorter */
  int task_mt_ref;
  weft_task *main_task;       /* the CLI's main task: its top level counts as outside tasks */
  int at_prompt;              /* main_task is a REPL entry: other tasks may be alive beside it */
  int chain_yieldable;        /* can the current resume chain reach the scheduler? */
  int driving;                /* weft.run depth on this runtime */
  int stop_driving;           /* the CLI got a signal: weft__drive_all returns */
  int closing;
  uint64_t next_id;
  uint64_t turns;             /* scheduler turns run so far */
  double turn_clock;          /* weft__now() when the current turn began */
  double timer_armed_for;     /* deadline the uv timer is armed for, or -1 */
  int anchor_ref;             /* table: slot -> a thread of a task or of the pool */
  int *free_slots, nfree_slots, cap_free_slots, next_slot;
  int npool;                  /* finished threads kept for reuse: */
  struct { lua_State *co; int slot; } *pool;
  int unobserved_ref;         /* table: light task pointer -> failed task nobody observed */
  int nhandles_open;          /* weft's own handles not yet closed */
  int nlisteners;             /* listening servers (net.c): no work under virtual time */
  void *cfutures;             /* cfuture.c's state, or NULL */
  void (*cfutures_close)(weft_runtime *rt);   /* cfuture.c's, called at close */
  int cfutures_pending;       /* C futures C still owes (cfuture.c counts them) */
  int debug;                  /* record spawn sites, warn on slow steps */
  int virtual_time;           /* the clock is virtual (weft.run_virtual) */
  double vclock;              /* the virtual clock, seconds */
  int may_drive;              /* weft.run may run the loop (not an application's) */
  int owns_state;             /* weft_new made the Lua state: weft_close closes it */
  void (*report)(weft_runtime *rt, const char *msg, void *ud);
  void *report_ud;
  void (*host_report)(const char *msg, void *ud);   /* weft_set_report */
  void (*print)(const char *msg, void *ud);
  void *print_ud;
  int nreported;              /* unobserved errors reported so far */
  void *envelope;             /* envelope.c's state (memory limit, step budget) */
  int envelope_on;            /* the scheduler calls envelope.c at each resume */
  void *watch;                /* watch.c's state (reports, deadlock, shutdown) */
};

/* The scheduler's files call downwards only, in this order (bottom
   first): future.c, runtime.c, task.c, instrument.c, sched.c, then the Lua
   faces task_lua.c, future_lua.c, run.c, then cfuture.c, and
   runtime_life.c on top (docs/internals.md "Who calls whom"). */

/* future.c */
void weft__completion_init(weft_completion *c);
void weft__completion_wake_all(weft_completion *c);
int weft__unpack_results(lua_State *L, int nres);   /* stored results on top -> pushed */
/* Unlinks and wakes the first n waiters of q (all of them if n < 0). */
void weft__wake_waiters(weft_queue *q, int reason, lua_Integer n);

/* runtime.c */
extern char weft__runtime_key;                   /* the registry key of its box */
weft_runtime *weft__runtime_find(lua_State *L);  /* NULL if none */
double weft__now(weft_runtime *rt);
void weft__deadline_arm(weft_runtime *rt, weft_deadline *d, double when);
void weft__deadline_disarm(weft_runtime *rt, weft_deadline *d);
int weft__loop_alive(weft_runtime *rt);        /* work that keeps the loop alive */
int weft__virtual_jump(weft_runtime *rt);      /* virtual clock to the next deadline: 1 if moved */
void weft__deadlines_to_virtual(weft_runtime *rt);   /* a virtual run begins */
void weft__deadlines_to_real(weft_runtime *rt);      /* ... and ends */
void weft__report(weft_runtime *rt, const char *msg);
void weft__report_stderr(weft_runtime *rt, const char *msg, void *ud);   /* rt->report's default */
void weft__runtime_free(weft_runtime *rt);
void weft__handle_closed(weft_runtime *rt);   /* a close callback of weft's own handles ran */
void weft__where(lua_State *L, int level);      /* pushes "file:line" of a Lua caller, or "?" */

/* sched.c */
weft_task *weft__spawn(lua_State *L, weft_runtime *rt, int nargs);  /* fn, args on top -> task */
/* Spawns fn(args...) (the top nargs + 1 slots, popped) as a task in the
   caller's memory t, with no Lua object until one is asked for
   (weft__push_task makes it then). anchor_ref is a registry ref to what
   keeps t's memory alive, valid while the task is unfinished. When a light
   task finishes with results, its waiters are woken with the first result
   (or nil) on top of rt->L and t must not be reused before that returns. */
void weft__spawn_light(lua_State *L, weft_runtime *rt, weft_task *t, int nargs,
                       int anchor_ref);
void weft__ready(weft_runtime *rt, weft_task *t);
weft_task *weft__current(lua_State *L, weft_runtime *rt, const char *what);
void weft__task_wake(weft_task *t, int reason);
int weft__task_cancel(lua_State *L, weft_task *t, int reason_idx);
void weft__task_interrupt(lua_State *L, weft_task *t);   /* error on top -> delivered at await */
/* Yields t to the back of the ready queue (it runs again next turn), going
   on in k: what weft.yield does. */
int weft__requeue(lua_State *L, weft_task *t, lua_KContext ctx, lua_KFunction k);
int weft__suspend(lua_State *L, weft_task *t, const char *on, int on_idx,
                  lua_KContext ctx, lua_KFunction k);
int weft__raise_pending(lua_State *L, weft_task *t);
void weft__take_pending(lua_State *L, weft_task *t);   /* pushes it, cleared */
void weft__keep_pending(lua_State *L, weft_task *t, int slot);   /* into slot if nil */
/* Waits that absorb a first interruption (to clean up) use it to stop at a
   second Deadlock: nothing can end their wait any more. */
int weft__pending_is(lua_State *L, weft_task *t, const char *kind);
/* From a count hook set by a signal handler: cancels the task running on
   L at once (a task busy in a loop that never awaits). */
void weft__cancel_from_hook(lua_State *L, weft_runtime *rt);
void weft__check_pending(lua_State *L, weft_task *t);
void weft__uncancel(weft_task *t);
void weft__step(weft_runtime *rt, weft_task *t);
void weft__runtime_turn(weft_runtime *rt);
int weft__open_sched(lua_State *L, weft_runtime *rt);

/* task.c */
weft_task *weft__checktask(lua_State *L, int idx);
weft_task *weft__totask(lua_State *L, int idx);
weft_task *weft__task_at(weft_runtime *rt, lua_State *L, int idx);   /* fast totask */
void weft__push_awaited(lua_State *L, weft_task *t);   /* what a suspended task waits on, or nil */
/* A task for fn(args...), not yet ready: weft__spawn's first half. */
weft_task *weft__task_new(lua_State *L, weft_runtime *rt, int nargs);
void weft__task_new_light(lua_State *L, weft_runtime *rt, weft_task *t, int nargs,
                          int anchor_ref);   /* weft__spawn_light's first half */
weft_task *weft__task_ptr(lua_State *L, int idx);   /* the task of a known task object */
int weft__task_getuv(lua_State *L, int obj, int which);    /* pushes WEFT_TASK_MORE_NAME ...; its type */
void weft__task_setuv(lua_State *L, int obj, int which);   /* value on top (popped) */
/* Light task memory for a spawner (run_graph): chunks held by the owner's
   user value, spares reused. */
typedef struct weft_task_slab {
  weft_task **spare;
  int nspare, cap;
  weft_task *release;         /* given back last: spare from the next give */
} weft_task_slab;
weft_task *weft__slab_take(lua_State *L, weft_task_slab *s, int owner, int uv);
void weft__slab_give(lua_State *L, weft_task_slab *s, weft_task *t);
void weft__slab_free(weft_task_slab *s);
void weft__push_task(lua_State *L, weft_task *t);  /* unfinished tasks only; makes a light one's object */
void weft__push_task_name(lua_State *L, int idx);
void weft__push_name(lua_State *L, weft_task *t, int ud);   /* its name; its object at ud */
int weft__push_results(lua_State *L, int idx);   /* pushes results or raises the error */
void weft__push_outcome(lua_State *L, int idx);  /* first result or the error value */
void weft__describe_wait(lua_State *L, weft_task *t);   /* pushes "event created at x:3" */
void weft__mark_observed(lua_State *L, weft_task *t);
/* Stores the outcome of a task that returned (status LUA_OK, nres results
   on top of its thread) or failed, gives its thread back and wakes its
   waiters. Returns 0 for a light task gone with its waiters, else 1: the
   caller then lets go of it with weft__task_release. */
int weft__task_finish(weft_runtime *rt, weft_task *t, int status, int nres);
void weft__task_release(weft_runtime *rt, weft_task *t);

/* task_lua.c */
int weft__open_task(lua_State *L, weft_runtime *rt);   /* the task methods, weft.spawn... */

/* future_lua.c */
/* the C side of a future C code resolves (cfuture.c) */
typedef struct weft_cfuture_hook weft_cfuture_hook;
struct weft_cfuture_hook {
  void (*cancelled)(weft_cfuture_hook *hook);   /* Lua will not take a result */
};
void weft__future_push_c(lua_State *L, weft_runtime *rt, weft_cfuture_hook *hook);
int weft__future_complete(lua_State *L, int fidx, int state, int nres);
int weft__open_future(lua_State *L, weft_runtime *rt);

/* run.c */
int weft__drive(lua_State *L, weft_runtime *rt, weft_task *t);
int weft__drive_all(lua_State *L, weft_runtime *rt);
int weft__report_unobserved(lua_State *L, weft_runtime *rt);
void weft__push_deadlock(lua_State *L, weft_runtime *rt);   /* the Deadlock error */
int weft__open_runtime(lua_State *L, weft_runtime *rt);   /* weft.run, run_virtual, now... */

/* runtime_life.c */
weft_runtime *weft__runtime(lua_State *L);      /* the runtime of L's state, created on first use */
weft_runtime *weft__runtime_create(lua_State *L, uv_loop_t *loop);
void weft__runtime_destroy(lua_State *L);        /* closes it; the state lives on */

/* class.c */
/* the metatables of weft's types */
void weft__class(lua_State *L, weft_runtime *rt, const char *name,
                 const luaL_Reg *methods, lua_CFunction index, const luaL_Reg *metas);
void weft__new_class(lua_State *L, weft_runtime *rt, const char *name,
                     const luaL_Reg *methods, lua_CFunction tostring);

/* errors.c */
void weft__error_new(lua_State *L, const char *kind, const char *fmt, ...);
void weft__uv_error_new(lua_State *L, const char *kind, int rc, const char *fmt, ...);
const char *weft__uv_err_name(int rc);
int weft__error_is(lua_State *L, int idx, const char *kind);
int weft__open_errors(lua_State *L, weft_runtime *rt);

/* coro.c */
extern char weft__suspend_token;               /* its address is the yield marker */
int weft__open_coro(lua_State *L, weft_runtime *rt);

/* instrument.c */
/* calls the hooks of every installed instrument. Each call
   is made only when rt->instruments != 0. */
void weft__hook_spawned(lua_State *L, weft_runtime *rt, weft_task *t);
void weft__hook_step(weft_runtime *rt, weft_task *t, uint64_t started, uint64_t ended);
void weft__hook_finished(weft_runtime *rt, weft_task *t);
void weft__hook_cancelled(lua_State *L, weft_runtime *rt, weft_task *t);
int weft__open_instrument(lua_State *L, weft_runtime *rt);
void weft__dump_tasks(lua_State *L, weft_runtime *rt);   /* pushes the text */

/* sync.c */
int weft__open_sync(lua_State *L, weft_runtime *rt);

/* sync_queue.c */
int weft__open_queue(lua_State *L, weft_runtime *rt);

/* combine.c */
int weft__open_combine(lua_State *L, weft_runtime *rt);

/* sorter_lua.c */
int weft__open_sorter(lua_State *L, weft_runtime *rt);

/* graph.c */
int weft__open_graph(lua_State *L, weft_runtime *rt);

/* process.c */
int weft__open_process(lua_State *L, weft_runtime *rt);  /* weft.process */

/* spawn.c */
int weft__open_spawn(lua_State *L, weft_runtime *rt);
/* from a signal handler (async-signal-safe): KILL every live
   child process group at once. */
void weft__process_kill_all_now(void);
/* what a child's inherited stdout (1) or stderr (2) really gets,
   or -1 for the fd itself; the REPL relays a terminal through a pipe. */
extern int weft__inherit_fd[3];

/* exec.c */
int weft__open_exec(lua_State *L, weft_runtime *rt);     /* weft.exec, weft.sh */
/* outlines.c */
int weft__open_outlines(lua_State *L, weft_runtime *rt);                   /* weft._format_lines and friends */
/* exec's internal _sink option: is the value at idx a line sink, and
   write lines p[0, n) of stream 0 (stdout) or 1 (stderr) through it. */
int weft__is_line_sink(lua_State *L, int idx);
const char *weft__tail_start(const char *s, size_t n, int want);   /* the last want lines */
void weft__line_sink_write(lua_State *L, int idx, int stream, const char *p, size_t n);

/* io.c */
int weft__open_io(lua_State *L, weft_runtime *rt);       /* luv, fs, net, http, json, signals, threads */

/* repl.c */
/* Linked into the CLI only: the REPL on the runtime's loop.
   Returns the exit status. */
int weft__repl(lua_State *L, weft_runtime *rt);

/* envelope.c */
/* the safety envelope (memory limit, step budget, interrupt) */
void weft__envelope_open(weft_runtime *rt);
void weft__envelope_close(weft_runtime *rt);
void weft__envelope_embedded(weft_runtime *rt);
void weft__envelope_on_resume(weft_runtime *rt, weft_task *t);
int weft__envelope_after_resume(weft_runtime *rt, weft_task *t, int status);
lua_State *weft__envelope_enter(weft_runtime *rt, lua_State *co);
int weft__open_envelope(lua_State *L, weft_runtime *rt);
int weft__envelope_configure(lua_State *L, weft_runtime *rt, const char *memory,
                             const char *budget, int preempt);
double weft__parse_size(const char *s);
double weft__parse_duration(const char *s);

/* handle.c */
/* what an owner of libuv handles embeds to be freed once its
   Lua side let go (weft__holder_release) and each of its handles closed
   (weft__holder_closed from the close callback, or weft__holder_close_cb
   as the callback when handle->data is the holder). */
typedef struct weft_holder weft_holder;
struct weft_holder {
  int nopen;                  /* handles whose close callback has not run */
  int released;               /* the Lua side let go */
  void (*free)(weft_holder *h);   /* frees the owner */
};
void weft__holder_closed(weft_holder *h);
void weft__holder_release(weft_holder *h);
void weft__holder_close_cb(uv_handle_t *handle);

/* hash.c */
int weft__open_hash(lua_State *L, weft_runtime *rt);     /* weft._hash */

/* module.c */
void weft__stdlib_require(lua_State *L, const char *name);   /* pushes what it returns */

/* statedb.c */
int weft__open_statedb(lua_State *L, weft_runtime *rt);  /* weft._statedb */
int weft__statedb_open_handles(void);   /* SQLite connections and statements open */

/* sys.c */
int weft__open_sys(lua_State *L, weft_runtime *rt);      /* weft._sys */

/* watch.c */
/* once per loop turn outside weft.run: reports, deadlock, shutdown */
void weft__watch_open(lua_State *L, weft_runtime *rt);
void weft__watch_close(weft_runtime *rt);
void weft__watch_start(weft_runtime *rt);
void weft__watch_turn(weft_runtime *rt);
int weft__watch_refuses_spawn(weft_runtime *rt);

/* alloc.c: the CLI state's allocator (small blocks from free lists) */
typedef struct weft_pool weft_pool;
lua_State *weft__pool_state(weft_pool **pool);   /* as luaL_newstate */
void weft__pool_free(weft_pool *p);   /* after lua_close; NULL is fine */

#define WEFT_UPRT(L) ((weft_runtime *)lua_touserdata((L), lua_upvalueindex(1)))

#endif
