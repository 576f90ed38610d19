/*
** repl.c: the weft REPL (API.md "CLI"; docs/repl.md). Linked into the CLI
** only. It runs on the runtime's loop: the terminal is read through libedit's
** readline-compatible callback interface fed by a uv_poll on stdin (the
** keys read go to libedit through its getc hook, or to the REPL's own
** Ctrl-R search), so tasks keep running while the user types; a pipe or
** file on stdin is read through the loop too (uv_pipe_t or uv_fs_read),
** without line editing or prompts.
**
** Each complete entry is compiled into the REPL environment (top-level
** `local`s become REPL locals, see stdlib/weft/repl.lua) and runs as a task
** named "main"; the prompt comes back when that task has finished. While
** the prompt shows, everything weft writes (print, io.write, io.stdout:write,
** error reports, the Ctrl-\ dump, children's inherited output relayed
** through pipes) goes through write_above: the prompt and line are erased
** over all their rows, the text written, and libedit redraws them.
**
** Signals: while the REPL runs, SIGINT and SIGTERM have handlers of their own
** (main.c's are saved and put back at the end). Ctrl-C interrupts whatever
** task is running at that moment by a hook (the entry that never awaits, or
** a task hogging the loop, which is named above the prompt), else cancels
** the running entry's task, or clears the line at the prompt. During the
** exit it leaves at once (130). SIGTERM cancels everything and ends the
** REPL with 143.
**
** Ownership: one REPL per process, so its state is static (a signal handler
** reads it). Its handles are closed, and their close callbacks run, before
** weft__repl returns. The Lua half, stdlib/weft/repl.lua, lives in the
** registry (helper_ref).
*/
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <editline/readline.h>

#include "internal.h"

/* {======== libedit, loaded when a REPL starts on a terminal

   Linking libedit loads it and its three libraries (libtinfo, libbsd,
   libmd) at every start of weft, a `weft run` or a script too: 0.3 ms of
   relocations for a REPL most runs never open. So it is dlopen'd by the
   first terminal REPL, and each name of its readline interface used below
   stands for the address found then (a macro per name, after edit_load). */

#define EDIT_SYMBOLS(X) \
  X(add_history) X(clear_history) X(history_base) X(history_get) X(history_length) \
  X(read_history) X(rl_add_defun) X(rl_attempted_completion_function) \
  X(rl_attempted_completion_over) X(rl_callback_handler_install) X(rl_callback_handler_remove) \
  X(rl_callback_read_char) X(rl_catch_signals) X(rl_completer_word_break_characters) \
  X(rl_completion_append_character) X(rl_completion_matches) X(rl_forced_update_display) \
  X(rl_getc_function) X(rl_initialize) X(rl_line_buffer) X(rl_parse_and_bind) X(rl_point) \
  X(rl_readline_name) X(rl_replace_line) X(rl_resize_terminal) X(stifle_history) \
  X(using_history) X(write_history)

#define EDIT_MEMBER(name) __typeof__(&name) name;
static struct { EDIT_SYMBOLS(EDIT_MEMBER) } edit;

/* 1 once libedit is loaded; 0 (with a note on stderr) if it cannot be,
   and the REPL reads the terminal as a plain file. */
static int edit_load(void) {
  static int state;   /* 0 not tried, 1 loaded, -1 failed */
  void *lib, *sym;
  if (state != 0)
    return state > 0;
  state = -1;
  lib = dlopen("libedit.so.2", RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL)
    lib = dlopen("libedit.so", RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    fprintf(stderr, "weft: no line editing: %s\n", dlerror());
    return 0;
  }
#define EDIT_BIND(name)                                                   \
  if ((sym = dlsym(lib, #name)) == NULL) {                                \
    fprintf(stderr, "weft: no line editing: libedit lacks %s\n", #name); \
    return 0;                                                             \
  }                                                                       \
  memcpy(&edit.name, &sym, sizeof sym);
  EDIT_SYMBOLS(EDIT_BIND)
  state = 1;
  return 1;
}

#define add_history (*edit.add_history)
#define clear_history (*edit.clear_history)
#define history_base (*edit.history_base)
#define history_get (*edit.history_get)
#define history_length (*edit.history_length)
#define read_history (*edit.read_history)
#define rl_add_defun (*edit.rl_add_defun)
#define rl_attempted_completion_function (*edit.rl_attempted_completion_function)
#define rl_attempted_completion_over (*edit.rl_attempted_completion_over)
#define rl_callback_handler_install (*edit.rl_callback_handler_install)
#define rl_callback_handler_remove (*edit.rl_callback_handler_remove)
#define rl_callback_read_char (*edit.rl_callback_read_char)
#define rl_catch_signals (*edit.rl_catch_signals)
#define rl_completer_word_break_characters (*edit.rl_completer_word_break_characters)
#define rl_completion_append_character (*edit.rl_completion_append_character)
#define rl_completion_matches (*edit.rl_completion_matches)
#define rl_forced_update_display (*edit.rl_forced_update_display)
#define rl_getc_function (*edit.rl_getc_function)
#define rl_initialize (*edit.rl_initialize)
#define rl_line_buffer (*edit.rl_line_buffer)
#define rl_parse_and_bind (*edit.rl_parse_and_bind)
#define rl_point (*edit.rl_point)
#define rl_readline_name (*edit.rl_readline_name)
#define rl_replace_line (*edit.rl_replace_line)
#define rl_resize_terminal (*edit.rl_resize_terminal)
#define stifle_history (*edit.stifle_history)
#define using_history (*edit.using_history)
#define write_history (*edit.write_history)

/* }======== */

enum { IN_TTY = 1, IN_PIPE, IN_FILE };
enum { ST_IDLE = 0, ST_PROMPTING, ST_RUNNING, ST_EXITING };
enum { GOT_LINE = 0, GOT_EOF, GOT_INTERRUPT, GOT_QUIT };

/* A key bound to probe_line, fed to libedit to learn where its cursor is
   (its rl_point is only updated when a bound function runs). Ctrl-^. */
#define PROBE_KEY 0x1e
#define SEARCH_KEY 0x12   /* Ctrl-R */
#define WEFT_HOG_MS 100   /* a turn of the loop this long means a task hogs it */
/* After a hang-up nobody can press Ctrl-C again to stop a cleanup that
   never ends: past this the REPL kills its children and exits. */
#define WEFT_HANGUP_GRACE_MS 3000

/* Bytes that grow at the end and are taken from the front. */
typedef struct text_buf {
  char *p;
  size_t len, cap;
} text_buf;

/* Appends n bytes. Returns 0, or -1 when memory ran out (b is unchanged). */
static int buf_add(text_buf *b, const char *s, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    char *p;
    while (cap < b->len + n)
      cap *= 2;
    if ((p = (char *)realloc(b->p, cap)) == NULL)
      return -1;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  return 0;
}

/* Drops the first n bytes. */
static void buf_take(text_buf *b, size_t n) {
  memmove(b->p, b->p + n, b->len - n);
  b->len -= n;
}

static struct repl {
  lua_State *L;
  weft_runtime *rt;
  int input;                  /* IN_* */
  int state;                  /* ST_* */
  int quit;                   /* exit status asked for by SIGTERM or :quit, or -1 */
  int helper_ref;             /* the Lua half */
  int seen_ref;               /* weak table task -> clock when first seen */
  uint64_t seen_id;           /* highest task id recorded there */
  weft_task *entry;           /* the task running the current entry */
  int entry_interrupted;      /* Ctrl-C cancelled it */
  uv_poll_t poll;             /* IN_TTY */
  uv_pipe_t pipe;             /* IN_PIPE */
  uv_fs_t fsreq;              /* IN_FILE */
  int fs_pending;
  char fsbuf[4096];
  text_buf in;                /* bytes read and not yet taken as lines */
  int eof;
  char *line;                 /* the line libedit handed over */
  int got_line;
  int interrupted;            /* Ctrl-C at the prompt */
  uv_async_t async;           /* signals -> loop */
  uv_check_t check;
  int nopen;                  /* handles not yet closed */
  volatile sig_atomic_t sigint;
  volatile sig_atomic_t endsig;   /* SIGTERM or SIGHUP received, or 0 */
  int hung_up;                /* SIGHUP or the terminal gone: no second signal will come */
  int tty_gone;               /* a read of the terminal gave EOF or an error */
  uv_timer_t grace;           /* after a hang-up, bounds the wait for cleanup */
  volatile uint64_t hog_id;   /* the task Ctrl-C interrupted as a hog, or 0 */
  char hog_name[96];
  struct sigaction old_int, old_term, old_hup;
  void (*old_report)(weft_runtime *rt, const char *msg, void *ud);
  void *old_report_ud;
  char history[1024];         /* history file, "" for none */
  const char *prompt;         /* the prompt showing */
  text_buf held;              /* a partial line written while the prompt shows */
  int heldfd;                 /* its stream, 1 or 2 */
  size_t cursor_cols;         /* prompt + line before the cursor, in columns */
  int in_libedit;             /* inside rl_callback_read_char */
  int inject;                 /* a key for libedit's next read, or -1 */
  unsigned char keys[256];    /* keys read from the terminal, not yet handled */
  size_t nkeys, keypos;
  int searching;              /* Ctrl-R: the search line shows */
  char query[256];
  size_t qlen;
  int match;                  /* history offset of the match shown, or -1 */
  uv_pipe_t relay[2];         /* children's inherited stdout, stderr (a terminal) */
  uv_signal_t winch;          /* the terminal was resized (IN_TTY) */
  int relay_fd[2];            /* their read ends, or -1 */
} R;


/* {======== calling the Lua half */

static int msghandler(lua_State *L) {
  luaL_traceback(L, L, luaL_tolstring(L, 1, NULL), 1);
  return 1;
}

/* Calls helper[name] with the nargs values on top; leaves nres results
   (nil on error, after printing it). Returns 0 on success. */
static int call_helper(const char *name, int nargs, int nres) {
  lua_State *L = R.L;
  int base = lua_gettop(L) - nargs, status, i;
  lua_pushcfunction(L, msghandler);
  lua_rawgeti(L, LUA_REGISTRYINDEX, R.helper_ref);
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  lua_rotate(L, base + 1, 2);                   /* msgh, fn, args */
  status = lua_pcall(L, nargs, nres, base + 1);
  lua_remove(L, base + 1);
  if (status != LUA_OK) {
    fflush(stdout);
    fprintf(stderr, "weft: repl: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    for (i = 0; i < nres; i++)
      lua_pushnil(L);
  }
  return status;
}

/* }======== */

/* {======== output while the prompt shows */

/* The one path for text written while the REPL runs (print, io.write,
   io.stdout:write, error reports, the Ctrl-\ dump, relayed child output).
   While an entry runs it goes straight out. While the prompt shows, whole
   lines go above it: the prompt and typed line are erased over every row
   they wrap on, the lines written, and libedit redraws prompt and line; a
   partial line is held until its newline or the end of the prompt. */

/* Out of memory: the text is lost, the REPL goes on. */
static void held_append(const char *s, size_t n) {
  (void)buf_add(&R.held, s, n);
}

static void put(int fd, const char *s, size_t n) {
  FILE *f = fd == 2 ? stderr : stdout;
  if (fd == 2)
    fflush(stdout);
  fwrite(s, 1, n, f);
  if (fd == 2 || R.input == IN_TTY)
    fflush(f);
}

/* Writes the held partial line, ending it: the next text starts a line. */
static void flush_held(void) {
  if (R.held.len == 0)
    return;
  if (R.held.p[R.held.len - 1] != '\n')
    held_append("\n", 1);
  put(R.heldfd, R.held.p, R.held.len);
  R.held.len = 0;
}

static int term_width(void) {
  struct winsize ws;
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    return ws.ws_col;
  return 80;
}

/* Columns taken by the n bytes at s (UTF-8: one per character). */
static size_t columns(const char *s, size_t n) {
  size_t i, cols = 0;
  for (i = 0; i < n && s[i] != '\0'; i++)
    cols += ((unsigned char)s[i] & 0xC0) != 0x80;
  return cols;
}

/* Runs one libedit command on the keys read. */
static void libedit_key(void) {
  R.in_libedit = 1;
  rl_callback_read_char();
  R.in_libedit = 0;
}

static void search_draw(void);

/* Bound to PROBE_KEY: libedit's wrapper has just updated rl_point. */
static int probe_line(int count, int key) {
  (void)count;
  (void)key;
  R.cursor_cols = columns(R.prompt, strlen(R.prompt)) +
                  (rl_line_buffer ? columns(rl_line_buffer, (size_t)rl_point) : 0);
  return 0;
}

/* Erases the prompt and the typed line (or the search line), from the
   first row they use. */
static void erase_prompt(void) {
  size_t rows, width = (size_t)term_width();
  if (R.searching) {   /* drawn by search_draw: the cursor stays on a full row */
    rows = R.cursor_cols > 0 ? (R.cursor_cols - 1) / width : 0;
  } else {
    if (!R.in_libedit) {   /* ask libedit where its cursor is */
      R.inject = PROBE_KEY;
      libedit_key();
    }
    rows = R.cursor_cols / width;   /* libedit moves to the next row at the margin */
  }
  if (rows > 0)
    printf("\r\033[%zuA\033[J", rows);
  else
    fputs("\r\033[J", stdout);
}

static void write_above(int fd, const char *s, size_t n) {
  const char *last;
  if (R.input != IN_TTY || R.state != ST_PROMPTING) {
    flush_held();
    put(fd, s, n);
    return;
  }
  if (R.held.len > 0 && R.heldfd != fd)
    held_append("\n", 1);   /* another stream: the held line ends first */
  else {
    R.heldfd = fd;
    held_append(s, n);
    s = NULL;
  }
  last = R.held.len ? (const char *)memrchr(R.held.p, '\n', R.held.len) : NULL;
  if (last != NULL) {
    size_t whole = (size_t)(last - R.held.p) + 1;
    fflush(stdout);
    erase_prompt();
    fflush(stdout);
    put(R.heldfd, R.held.p, whole);
    buf_take(&R.held, whole);
    if (R.searching) {
      R.cursor_cols = 0;   /* erased already: draw on the fresh row */
      search_draw();
    } else
      rl_forced_update_display();
    fflush(stdout);
  }
  if (s != NULL)
    write_above(fd, s, n);
}

static int lua_write(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  luaL_argcheck(L, fd == 1 || fd == 2, 1, "1 or 2 expected");
  write_above(fd, s, n);
  return 0;
}

/* rt->report while the REPL runs: error reports go above the prompt. */
static void report_above(weft_runtime *rt, const char *msg, void *ud) {
  (void)rt;
  (void)ud;
  write_above(2, msg, strlen(msg));
}

/* }======== */

/* {======== relaying children's output

   A child started with stdout or stderr "inherit" would write on the
   terminal over the prompt. On a terminal the REPL gives it a pipe instead
   (weft__inherit_fd, spawn.c) and relays what arrives through
   write_above. The read ends are unreferenced: they never keep the loop
   alive nor hide a deadlock. */

static void relay_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  static char chunk[4096];
  (void)h;
  (void)size;
  buf->base = chunk;
  buf->len = sizeof chunk;
}

static void on_relay(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  if (n > 0)
    write_above(s == (uv_stream_t *)&R.relay[0] ? 1 : 2, buf->base, (size_t)n);
  else if (n < 0)
    uv_read_stop(s);
}

/* Writes what children wrote and the loop has not relayed yet: before a
   result or a prompt, so that their output comes first. */
static void relay_drain(void) {
  char chunk[4096];
  ssize_t n;
  int i;
  for (i = 0; i < 2; i++)
    while (R.relay_fd[i] >= 0 && (n = read(R.relay_fd[i], chunk, sizeof chunk)) > 0)
      write_above(i + 1, chunk, (size_t)n);
}

static void on_closed(uv_handle_t *h);

static void relay_open(int fd) {
  int p[2], i = fd - 1;
  if (!isatty(fd) || pipe2(p, O_CLOEXEC) != 0)
    return;
  if (uv_pipe_init(R.rt->loop, &R.relay[i], 0) != 0) {
    close(p[0]);
    close(p[1]);
    return;
  }
  R.nopen++;
  if (uv_pipe_open(&R.relay[i], p[0]) != 0 ||
      uv_read_start((uv_stream_t *)&R.relay[i], relay_alloc, on_relay) != 0) {
    uv_close((uv_handle_t *)&R.relay[i], on_closed);   /* closes p[0] if it took it */
    close(p[1]);
    return;
  }
  uv_unref((uv_handle_t *)&R.relay[i]);
  R.relay_fd[i] = p[0];
  weft__inherit_fd[fd] = p[1];
}

static void relay_close(void) {
  int i;
  relay_drain();
  for (i = 0; i < 2; i++) {
    if (R.relay_fd[i] < 0)
      continue;
    close(weft__inherit_fd[i + 1]);
    weft__inherit_fd[i + 1] = -1;
    uv_close((uv_handle_t *)&R.relay[i], on_closed);
    R.relay_fd[i] = -1;
  }
}

/* }======== */

/* {======== task introspection for the Lua half */

/* traceback(task): where a failed task raised its error, or nil. */
static int lua_traceback(lua_State *L) {
  weft_task *t = weft__checktask(L, 1);
  if (t->state != WEFT_T_FINISHED || t->done.state != WEFT_FAILED ||
      weft__task_getuv(L, 1, WEFT_TASK_MORE_TRACEBACK) != LUA_TSTRING)
    lua_pushnil(L);
  return 1;
}

/* started(task): the clock when it was spawned (or first seen), or nil. */
static int lua_started(lua_State *L) {
  weft_task *t = weft__checktask(L, 1);
  if (t->started > 0) {
    lua_pushnumber(L, t->started);
    return 1;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, R.seen_ref);
  lua_pushvalue(L, 1);
  lua_rawget(L, -2);
  return 1;
}

/* awaited(task): the object a suspended task waits on, or nil. */
static int lua_awaited(lua_State *L) {
  weft__push_awaited(L, weft__checktask(L, 1));
  return 1;
}

/* Records the clock for tasks spawned since the last call: newest tasks
   are at the tail of rt->live, so this costs O(new tasks). */
static void record_new_tasks(void) {
  weft_runtime *rt = R.rt;
  weft_queue *q;
  uint64_t newest;
  double now;
  if (weft_queue_empty(&rt->live))
    return;
  newest = weft_queue_data(rt->live.prev, weft_task, live_node)->id;
  if (newest <= R.seen_id)
    return;
  now = weft__now(rt);
  lua_rawgeti(R.L, LUA_REGISTRYINDEX, R.seen_ref);
  for (q = rt->live.prev; q != &rt->live; q = q->prev) {
    weft_task *t = weft_queue_data(q, weft_task, live_node);
    if (t->id <= R.seen_id)
      break;
    weft__push_task(R.L, t);
    lua_pushnumber(R.L, now);
    lua_rawset(R.L, -3);
  }
  lua_pop(R.L, 1);
  R.seen_id = newest;
}

/* After each loop turn: note new tasks; at the prompt, report failures of
   background tasks nobody awaited. */
static void on_check(uv_check_t *h) {
  (void)h;
  record_new_tasks();
  if (R.state == ST_PROMPTING || R.state == ST_IDLE)
    weft__report_unobserved(R.L, R.rt);
}

/* }======== */

/* {======== signals */

/* Runs inside a task that has not awaited since Ctrl-C: cancel it there.
   A task other than the entry hogs the loop: its name goes in the notice. */
static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  weft_task *t = R.rt->current;
  (void)ar;
  if (t != NULL && t != R.entry && L == t->co && lua_checkstack(L, 2)) {
    weft__push_task(L, t);
    weft__push_task_name(L, -1);
    snprintf(R.hog_name, sizeof R.hog_name, "%s", lua_tostring(L, -1));
    lua_pop(L, 2);
  }
  weft__cancel_from_hook(L, R.rt);
}

/* Whether the loop has not come back from running tasks for a while (libuv
   updates loop->time, in ms, as each turn starts and when poll returns):
   a task running then hogs it, one running briefly is left alone. Called
   from the signal handler: clock_gettime is async-signal-safe. */
static int hogging(void) {
  return uv_hrtime() / 1000000 > R.rt->loop->time + WEFT_HOG_MS;
}

/* Ctrl-C while a task runs means it has not given the loop back: the entry
   that never awaits, or a task hogging the loop (the prompt cannot even
   read keys then). Either is interrupted by a hook at once. */
static void on_signal(int sig) {
  weft_task *t = R.rt->current;
  if (R.state == ST_EXITING || (sig != SIGINT && R.endsig)) {
    weft__process_kill_all_now();
    _exit(128 + (R.endsig ? R.endsig : sig));
  }
  if (sig != SIGINT) {
    R.endsig = sig;
  } else {
    R.sigint = 1;
    if (t != NULL && t->co != NULL && (t == R.entry || hogging())) {
      if (t != R.entry)
        R.hog_id = t->id;
      lua_sethook(t->co, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
    }
  }
  uv_async_send(&R.async);
}

/* After Ctrl-C stopped a hog: says so above the prompt; the typed line
   stays. Returns 1 when that was what the Ctrl-C did. */
static int hog_stopped(void) {
  weft_queue *q;
  char notice[160];
  if (R.hog_id == 0)
    return 0;
  for (q = R.rt->live.next; q != &R.rt->live; q = q->next) {
    weft_task *t = weft_queue_data(q, weft_task, live_node);
    if (t->id == R.hog_id && t->co != NULL)
      lua_sethook(t->co, NULL, 0, 0);   /* it finished its step before any hook */
  }
  R.hog_id = 0;
  if (R.hog_name[0] == '\0')
    return 0;
  snprintf(notice, sizeof notice, "weft: interrupted the task hogging the loop: %s\n", R.hog_name);
  R.hog_name[0] = '\0';
  write_above(2, notice, strlen(notice));
  return 1;
}

static void cancel_all(void) {
  weft_queue *q;
  for (q = R.rt->live.next; q != &R.rt->live; q = q->next)
    weft__task_cancel(R.L, weft_queue_data(q, weft_task, live_node), 0);
}

/* SIGTERM, SIGHUP, or the terminal gone: every task is cancelled and the
   REPL ends with 128 + sig once they have cleaned up. */
static void on_grace_over(uv_timer_t *h) {
  (void)h;
  fflush(stdout);
  fprintf(stderr, "weft: %d task%s did not finish after the hang-up; exiting\n", R.rt->nlive,
          R.rt->nlive == 1 ? "" : "s");
  weft__process_kill_all_now();
  _exit(129);
}

static void end_session(int sig) {
  if (sig == SIGHUP && !R.hung_up) {
    R.hung_up = 1;
    if (uv_timer_start(&R.grace, on_grace_over, WEFT_HANGUP_GRACE_MS, 0) == 0)
      uv_unref((uv_handle_t *)&R.grace);   /* it must not hide a deadlock */
  }
  if (R.quit >= 128)
    return;
  R.quit = 128 + sig;
  cancel_all();
}

/* On the loop, after a signal. */
static void on_async(uv_async_t *h) {
  (void)h;
  if (R.endsig)
    end_session(R.endsig);
  if (!R.sigint)
    return;
  R.sigint = 0;
  if (hog_stopped())
    return;
  if (R.entry != NULL) {
    if (R.entry->co != NULL)
      lua_sethook(R.entry->co, NULL, 0, 0);
    weft__task_cancel(R.L, R.entry, 0);
    R.entry_interrupted = 1;
    if (R.input == IN_TTY)
      fputs("\n", stdout);   /* after the terminal's echo of ^C */
  } else if (R.input == IN_TTY) {
    R.interrupted = 1;
  } else if (R.state != ST_EXITING) {
    R.quit = 130;   /* driven by a pipe: Ctrl-C ends the session */
  }
}

static void install_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &R.old_int);
  sigaction(SIGTERM, &sa, &R.old_term);
  sigaction(SIGHUP, &sa, &R.old_hup);
}

static void restore_signals(void) {
  sigaction(SIGINT, &R.old_int, NULL);
  sigaction(SIGTERM, &R.old_term, NULL);
  sigaction(SIGHUP, &R.old_hup, NULL);
}

/* }======== */

/* {======== reading lines from a pipe or a file */

static void in_append(const char *buf, size_t n) {
  if (buf_add(&R.in, buf, n) != 0)
    R.eof = 1;
}

/* Takes the next whole line (the rest at end of input), or NULL. */
static char *take_line(void) {
  char *nl = R.in.len ? (char *)memchr(R.in.p, '\n', R.in.len) : NULL;
  size_t n, len;
  char *line;
  if (nl == NULL && (!R.eof || R.in.len == 0))
    return NULL;
  n = nl ? (size_t)(nl - R.in.p) + 1 : R.in.len;
  len = nl ? n - 1 : n;
  if (len > 0 && R.in.p[len - 1] == '\r')
    len--;
  if ((line = (char *)malloc(len + 1)) == NULL)
    return NULL;
  memcpy(line, R.in.p, len);
  line[len] = '\0';
  buf_take(&R.in, n);
  return line;
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)h;
  (void)size;
  buf->base = R.fsbuf;
  buf->len = sizeof R.fsbuf;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  if (n > 0) {
    in_append(buf->base, (size_t)n);
  } else if (n < 0) {
    R.eof = 1;
    uv_read_stop(s);
  }
}

static void on_fs_read(uv_fs_t *req) {
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  R.fs_pending = 0;
  if (n > 0)
    in_append(R.fsbuf, (size_t)n);
  else
    R.eof = 1;
}

static void input_start(void) {
  uv_buf_t b;
  if (R.input == IN_PIPE) {
    if (!uv_is_active((uv_handle_t *)&R.pipe) &&
        uv_read_start((uv_stream_t *)&R.pipe, on_alloc, on_read) != 0)
      R.eof = 1;
  } else if (!R.fs_pending) {
    b = uv_buf_init(R.fsbuf, sizeof R.fsbuf);
    R.fs_pending = 1;
    if (uv_fs_read(R.rt->loop, &R.fsreq, 0, &b, 1, -1, on_fs_read) != 0) {
      R.fs_pending = 0;
      R.eof = 1;
    }
  }
}

/* One loop turn, with the runtime marked as driven (weft.run from a luv
   callback must not nest another loop). */
static void run_once(void) {
  R.rt->driving++;
  uv_run(R.rt->loop, UV_RUN_ONCE);
  R.rt->driving--;
}

static int stream_next_line(char **line) {
  while ((*line = take_line()) == NULL && !R.eof && R.quit < 0) {
    input_start();
    run_once();
  }
  if (R.input == IN_PIPE)
    uv_read_stop((uv_stream_t *)&R.pipe);
  if (R.quit >= 0) {
    free(*line);
    *line = NULL;
    return GOT_QUIT;
  }
  return *line ? GOT_LINE : GOT_EOF;
}

/* }======== */

/* {======== reading lines from the terminal */

static void on_rl_line(char *line) {
  R.line = line;
  R.got_line = 1;
}

/* libedit's getc: a key injected by the REPL, the keys read by on_poll,
   else (the rest of a key sequence) a blocking read. */
static int tty_getc(FILE *f) {
  unsigned char c;
  ssize_t n;
  (void)f;
  if (R.inject >= 0) {
    c = (unsigned char)R.inject;
    R.inject = -1;
    return c;
  }
  if (R.keypos < R.nkeys)
    return R.keys[R.keypos++];
  while ((n = read(STDIN_FILENO, &c, 1)) < 0 && errno == EINTR)
    ;
  if (n != 1)
    R.tty_gone = 1;
  return n == 1 ? c : -1;
}

/* {======== Ctrl-R: incremental search of the history, drawn by the REPL
   (libedit's own em-inc-search-prev blocks in its own read loop and does
   not work through the callback interface). */

/* The newest entry older than 'before' that contains the query, or -1. */
static int search_older(int before) {
  int i;
  for (i = before - 1; i >= 0; i--) {
    HIST_ENTRY *h = history_get(history_base + i);
    if (h != NULL && strstr(h->line, R.query) != NULL)
      return i;
  }
  return -1;
}

static const char *search_match(void) {
  HIST_ENTRY *h = R.match >= 0 ? history_get(history_base + R.match) : NULL;
  return h != NULL ? h->line : "";
}

/* Draws "(reverse-i-search)`query': match" in place of the prompt line. */
static void search_draw(void) {
  const char *m = search_match(), *failed = R.match < 0 && R.qlen > 0 ? "failed " : "";
  erase_prompt();
  printf("(%sreverse-i-search)`%s': %s", failed, R.query, m);
  R.cursor_cols = strlen(failed) + strlen("(reverse-i-search)`': ") +
                  columns(R.query, R.qlen) + columns(m, strlen(m));
  fflush(stdout);
}

static void search_start(void) {
  erase_prompt();
  R.searching = 1;
  R.query[0] = '\0';
  R.qlen = 0;
  R.match = -1;
  R.cursor_cols = 0;   /* erased: search_draw's erase is a no-op */
  search_draw();
}

/* Leaves the search with the match in libedit's line (keep = 1) or the
   line as it was before Ctrl-R. */
static void search_end(int keep) {
  erase_prompt();
  R.searching = 0;
  if (keep && R.match >= 0)
    rl_replace_line(search_match(), 0);
  rl_forced_update_display();
  fflush(stdout);
}

/* One key while searching. Returns 0 when the key is left for libedit. */
static int search_key(unsigned char c) {
  if (c == SEARCH_KEY) {                                   /* older match */
    int m = search_older(R.match >= 0 ? R.match : history_length);
    if (m >= 0 || R.match < 0)
      R.match = m;
  } else if (c == 0x7f || c == '\b') {                     /* shorter query */
    while (R.qlen > 0 && ((unsigned char)R.query[--R.qlen] & 0xC0) == 0x80)
      ;
    R.query[R.qlen] = '\0';
    R.match = R.qlen > 0 ? search_older(history_length) : -1;
  } else if (c >= 0x20) {                                  /* longer query */
    if (R.qlen + 1 < sizeof R.query) {
      R.query[R.qlen++] = (char)c;
      R.query[R.qlen] = '\0';
    }
    R.match = search_older(R.match >= 0 ? R.match + 1 : history_length);
  } else if (c == 0x07) {                                  /* Ctrl-G: give up */
    search_end(0);
    return 1;
  } else if (c == '\r' || c == '\n') {                     /* run the match */
    search_end(1);
    R.inject = '\r';
    libedit_key();
    return 1;
  } else {          /* any other key: edit the match, the key acting on it */
    search_end(1);
    return c == 0x1b && R.keypos >= R.nkeys;   /* a lone Esc only ends the search */
  }
  search_draw();
  return 1;
}

/* }======== */

/* Reads what the terminal has (a paste may bring many keys at once). */
static int read_keys(void) {
  int avail = 0;
  ssize_t n;
  if (ioctl(STDIN_FILENO, FIONREAD, &avail) != 0 || avail <= 0)
    avail = 1;
  if ((size_t)avail > sizeof R.keys)
    avail = (int)sizeof R.keys;
  while ((n = read(STDIN_FILENO, R.keys, (size_t)avail)) < 0 && errno == EINTR)
    ;
  R.keypos = 0;
  R.nkeys = n > 0 ? (size_t)n : 0;
  if (n == 0 || (n < 0 && errno != EAGAIN))   /* raw mode reads 0 only once hung up */
    R.tty_gone = 1;
  return n > 0 ? 0 : -1;
}

/* Hands the keys read to the search or to libedit until a line is
   complete; the rest waits for the next prompt. */
static void handle_keys(void) {
  while (R.keypos < R.nkeys && !R.got_line && !R.interrupted && R.quit < 0) {
    unsigned char c = R.keys[R.keypos];
    if (R.searching) {
      R.keypos++;
      if (!search_key(c))
        R.keypos--;
    } else if (c == SEARCH_KEY) {
      R.keypos++;
      search_start();
    } else {
      libedit_key();
    }
  }
}

/* The terminal hung up (closed window, killed tmux session): as SIGHUP,
   which the kernel does not send when weft does not lead the session.
   Polling stops, or a dead terminal would be readable forever. */
static void terminal_gone(void) {
  uv_poll_stop(&R.poll);
  end_session(SIGHUP);
}

/* At the prompt: keys. While an entry runs or the REPL exits, the poll
   only watches for the terminal hanging up (a hung-up tty polls as an
   error, UV_EBADF here). */
static void on_poll(uv_poll_t *h, int status, int events) {
  (void)h;
  if (status < 0 || (events & UV_DISCONNECT)) {
    R.tty_gone = 1;
  } else if (R.state == ST_PROMPTING) {
    if (R.keypos < R.nkeys || read_keys() == 0)
      handle_keys();
  }
  if (R.tty_gone)
    terminal_gone();
}

/* Polls the terminal for keys (at the prompt, keeping the loop alive) or
   only for a hang-up (not keeping it alive: a deadlocked entry is still
   seen as one). */
static void poll_keys(int keys) {
  if (keys) {
    uv_ref((uv_handle_t *)&R.poll);
    uv_poll_start(&R.poll, UV_READABLE | UV_DISCONNECT, on_poll);
  } else {
    uv_unref((uv_handle_t *)&R.poll);
    uv_poll_start(&R.poll, UV_DISCONNECT, on_poll);
  }
}

static int tty_next_line(const char *prompt, char **line) {
  int got = GOT_LINE;
  R.line = NULL;
  R.got_line = 0;
  R.interrupted = 0;
  R.searching = 0;
  R.prompt = prompt;
  relay_drain();
  flush_held();
  fflush(stdout);
  rl_callback_handler_install(prompt, on_rl_line);
  R.state = ST_PROMPTING;
  handle_keys();   /* typed ahead */
  if (R.tty_gone)
    terminal_gone();
  else if (!R.got_line)
    poll_keys(1);
  while (!R.got_line && R.quit < 0 && got == GOT_LINE) {
    run_once();
    if (R.interrupted)
      got = GOT_INTERRUPT;
  }
  if (!R.tty_gone)
    poll_keys(0);
  R.state = ST_IDLE;
  R.searching = 0;
  rl_callback_handler_remove();
  if (got == GOT_INTERRUPT || R.quit >= 0) {
    fputs(got == GOT_INTERRUPT ? "^C\n" : "\n", stdout);
    free(R.line);
    *line = NULL;
    flush_held();
    return got == GOT_INTERRUPT ? got : GOT_QUIT;
  }
  *line = R.line;
  if (R.line == NULL)
    fputs("\n", stdout);
  flush_held();
  return R.line ? GOT_LINE : GOT_EOF;
}

/* Completion: the Lua half lists candidates for the word before the
   cursor ('.' and ':' do not break words, so "weft.sp" is one). */
static int comp_ref = LUA_NOREF, comp_next, comp_start;

static char *complete_entry(const char *text, int state) {
  lua_State *L = R.L;
  char *s = NULL;
  if (state == 0) {
    luaL_unref(L, LUA_REGISTRYINDEX, comp_ref);
    lua_pushstring(L, text);
    lua_pushinteger(L, comp_start);
    call_helper("complete", 2, 1);
    comp_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    comp_next = 0;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, comp_ref);
  if (lua_istable(L, -1) && lua_rawgeti(L, -1, ++comp_next) == LUA_TSTRING)
    s = strdup(lua_tostring(L, -1));
  lua_settop(L, lua_gettop(L) - (lua_istable(L, -1) ? 1 : 2));
  return s;
}

static char **complete(const char *text, int start, int end) {
  (void)end;
  comp_start = start;
  rl_attempted_completion_over = 1;
  return rl_completion_matches(text, complete_entry);
}

static char word_breaks[] = " \t\n\"\\'`@$><=;|&{(+-*/%^#,[]~";

/* History file: $XDG_STATE_HOME/weft/history or ~/.local/state/weft/history;
   directories are made as needed. */
static void history_path(void) {
  const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
  char dir[sizeof R.history - 16];
  size_t i;
  R.history[0] = '\0';
  if (state != NULL && state[0] == '/')
    snprintf(dir, sizeof dir, "%s/weft", state);
  else if (home != NULL && home[0] != '\0')
    snprintf(dir, sizeof dir, "%s/.local/state/weft", home);
  else
    return;
  for (i = 1; dir[i] != '\0'; i++) {
    if (dir[i] == '/') {
      dir[i] = '\0';
      mkdir(dir, 0700);
      dir[i] = '/';
    }
  }
  if (mkdir(dir, 0700) != 0 && errno != EEXIST)
    return;
  snprintf(R.history, sizeof R.history, "%s/history", dir);
}

/* {======== the history file: one entry a line, never a control byte */

static int blank(const char *s) {
  return s[strspn(s, " \t\r\n")] == '\0';
}


static int is_control(unsigned char c) {
  return c < 0x20 || c == 0x7f;
}

/* Adds s[0..n) with tabs as spaces and other control bytes dropped. */
static void add_clean(const char *s, size_t n) {
  char *line = (char *)malloc(n + 1);
  size_t i, k = 0;
  if (line == NULL)
    return;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\t' || c == '\n')
      line[k++] = ' ';
    else if (!is_control(c))
      line[k++] = (char)c;
  }
  line[k] = '\0';
  if (!blank(line))
    add_history(line);
  free(line);
}

/* The lines of a multi-line entry are joined with spaces unless a comment
   or a long bracket could make that mean something else: then each line
   is an entry of its own. */
static void add_entry(const char *entry) {
  const char *p, *nl;
  if (strchr(entry, '\n') == NULL || (strstr(entry, "--") == NULL &&
      strstr(entry, "[[") == NULL && strstr(entry, "[=") == NULL)) {
    add_clean(entry, strlen(entry));
    return;
  }
  for (p = entry; *p != '\0'; p = *nl ? nl + 1 : nl) {
    nl = strchr(p, '\n');
    if (nl == NULL)
      nl = p + strlen(p);
    add_clean(p, (size_t)(nl - p));
  }
}

/* Bytes typed by mistake once reached the file (`\012bck:\^Dfi`): an entry
   with a control byte other than a newline or a tab is dropped, and the
   file rewritten. */
static void clean_history(void) {
  int i, n = history_length, dirty = 0;
  char **keep = (char **)calloc((size_t)n + 1, sizeof *keep);
  if (keep == NULL)
    return;
  for (i = 0; i < n; i++) {
    HIST_ENTRY *h = history_get(history_base + i);
    const unsigned char *c;
    int bad = h == NULL;
    for (c = h ? (const unsigned char *)h->line : NULL; c && *c && !bad; c++) {
      dirty |= is_control(*c);
      bad = is_control(*c) && *c != '\n' && *c != '\t';
    }
    keep[i] = bad ? NULL : strdup(h->line);
  }
  if (dirty) {
    clear_history();
    for (i = 0; i < n; i++)
      if (keep[i] != NULL)
        add_entry(keep[i]);
    write_history(R.history);
  }
  for (i = 0; i < n; i++)
    free(keep[i]);
  free(keep);
}

static void history_add(const char *entry) {
  if (R.input != IN_TTY || blank(entry))
    return;
  add_entry(entry);
  if (R.history[0] != '\0')
    write_history(R.history);
}

/* }======== */

static void tty_init(void) {
  rl_readline_name = "weft";
  rl_catch_signals = 0;
  rl_completer_word_break_characters = word_breaks;
  rl_attempted_completion_function = complete;
  rl_completion_append_character = '\0';
  rl_getc_function = tty_getc;   /* before rl_initialize, which installs it */
  rl_initialize();
  rl_add_defun("weft-probe", probe_line, PROBE_KEY);
  /* Ctrl-C must not flush what was typed ahead while a task hogged the
     loop: that line is still wanted once the hog is interrupted. */
  rl_parse_and_bind("setty -d +noflsh");
  using_history();
  stifle_history(1000);
  history_path();
  if (R.history[0] != '\0' && read_history(R.history) == 0)
    clean_history();
}

/* }======== */

/* {======== entries */

static int next_line(const char *prompt, char **line) {
  if (R.input == IN_TTY)
    return tty_next_line(prompt, line);
  return stream_next_line(line);
}

/* Runs the compiled entry (function and argument on top) as a task named
   "main" and prints its outcome once it has finished. */
static void run_entry(void) {
  lua_State *L = R.L;
  weft_task *t;
  lua_pushnil(L);   /* an older re-raise is not this entry's */
  lua_setfield(L, LUA_REGISTRYINDEX, "weft.reraised");
  t = weft__spawn(L, R.rt, 1);
  lua_pushliteral(L, "main");
  weft__task_setuv(L, -2, WEFT_TASK_MORE_NAME);
  R.entry = t;
  R.entry_interrupted = 0;
  R.state = ST_RUNNING;
  R.rt->main_task = t;   /* its top level may call weft.run_virtual */
  R.rt->at_prompt = 1;
  weft__drive(L, R.rt, t);
  R.rt->main_task = NULL;
  R.rt->at_prompt = 0;
  R.state = ST_IDLE;
  R.entry = NULL;
  relay_drain();
  lua_pushboolean(L, R.entry_interrupted);
  call_helper("report", 2, 0);
}

/* Compiles src: leaves function and argument on top and returns 0;
   returns 1 when it needs more lines, -1 after printing the error. */
static int compile_entry(const char *src, int at_eof) {
  lua_State *L = R.L;
  lua_pushstring(L, src);
  call_helper("compile", 1, 3);
  if (lua_isfunction(L, -3)) {
    lua_pop(L, 1);
    return 0;
  }
  if (lua_toboolean(L, -1) && !at_eof) {
    lua_pop(L, 3);
    return 1;
  }
  if (lua_isstring(L, -2)) {
    fflush(stdout);
    fprintf(stderr, "%s\n", lua_tostring(L, -2));
  }
  lua_pop(L, 3);
  return -1;
}

/* Compiles and runs the entry in 'buf'. Returns 1 when it needs more lines. */
static int handle_entry(const char *buf, int at_eof) {
  int got = compile_entry(buf, at_eof);
  if (got == 1)
    return 1;
  history_add(buf);
  if (got == 0)
    run_entry();
  return 0;
}

/* :time EXPR: runs the entry, then says how long it took (wall clock). */
static void time_entry(const char *src) {
  uint64_t t0;
  char took[64];
  if (blank(src)) {
    write_above(1, "usage: :time EXPR\n", 18);
    return;
  }
  if (compile_entry(src, 1) != 0)
    return;
  t0 = uv_hrtime();
  run_entry();
  snprintf(took, sizeof took, "time: %.6f s\n", (double)(uv_hrtime() - t0) * 1e-9);
  write_above(1, took, strlen(took));
}

/* Runs a ':' command line (taking it). Returns 1 to leave. */
static int run_command(char *line) {
  int leave = 0;
  history_add(line);
  if (strncmp(line, ":time", 5) == 0 && (line[5] == '\0' || line[5] == ' ')) {
    time_entry(line + 5);
    free(line);
    return 0;
  }
  lua_pushstring(R.L, line);
  free(line);
  call_helper("command", 1, 1);
  leave = lua_toboolean(R.L, -1);
  lua_pop(R.L, 1);
  return leave;
}

/* Appends a line (taking it) to the entry in *buf. Returns 0, or -1. */
static int append_line(char **buf, size_t *len, char *line) {
  size_t n = strlen(line);
  char *p = (char *)realloc(*buf, *len + n + 2);
  if (p == NULL) {
    free(line);
    return -1;
  }
  if (*len > 0)
    p[(*len)++] = '\n';
  memcpy(p + *len, line, n + 1);
  *len += n;
  *buf = p;
  free(line);
  return 0;
}

static void repl_loop(void) {
  char *buf = NULL, *line;
  size_t len = 0;
  while (R.quit < 0) {
    int got = next_line(len ? ">> " : "> ", &line);
    if (got == GOT_QUIT)
      break;
    if (got == GOT_EOF) {
      if (len > 0)
        handle_entry(buf, 1);
      break;
    }
    if (got == GOT_INTERRUPT) {
      len = 0;
    } else if (len == 0 && line[0] == ':') {
      if (run_command(line))
        R.quit = 0;
    } else if (len == 0 && blank(line)) {
      free(line);
    } else if (append_line(&buf, &len, line) != 0) {
      break;
    } else if (!handle_entry(buf, 0)) {
      len = 0;
    }
  }
  free(buf);
}

/* }======== */

/* {======== setup and exit */

static void on_closed(uv_handle_t *h) {
  (void)h;
  R.nopen--;
}

/* libedit learns the new width, so that it wraps the line where the
   terminal does (write_above asks the terminal itself). */
static void on_winch(uv_signal_t *h, int sig) {
  int redraw = R.state == ST_PROMPTING && !R.searching;
  (void)h;
  (void)sig;
  if (redraw) {   /* libedit forgets where it drew: erase and draw anew */
    fflush(stdout);
    erase_prompt();
  }
  rl_resize_terminal();
  if (redraw) {
    rl_forced_update_display();
    fflush(stdout);
  }
}

static void open_input(void) {
  uv_loop_t *loop = R.rt->loop;
  uv_handle_type kind = uv_guess_handle(0);
  if (kind == UV_TTY && isatty(1) && edit_load() && uv_poll_init(loop, &R.poll, 0) == 0) {
    R.input = IN_TTY;
    R.nopen++;
    tty_init();
    if (uv_signal_init(loop, &R.winch) == 0) {
      R.nopen++;
      uv_signal_start(&R.winch, on_winch, SIGWINCH);
      uv_unref((uv_handle_t *)&R.winch);
    }
  } else if ((kind == UV_NAMED_PIPE || kind == UV_TCP) && uv_pipe_init(loop, &R.pipe, 0) == 0) {
    R.nopen++;
    R.input = IN_PIPE;
    if (uv_pipe_open(&R.pipe, 0) != 0)
      R.eof = 1;
  } else {
    R.input = IN_FILE;
  }
}

static const luaL_Reg helper_funcs[] = {
  {"traceback", lua_traceback},
  {"started", lua_started},
  {"awaited", lua_awaited},
  {"write", lua_write},
  {NULL, NULL}
};

/* require "weft.repl" (stdlib/weft/repl.lua), then M.attach(C functions). */
static int open_helper(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "weft.repl");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "attach");
  luaL_newlib(L, helper_funcs);
  lua_call(L, 1, 0);
  return 1;
}

/* Loads the Lua half. Returns 0, or -1 after printing why not. */
static int load_helper(lua_State *L) {
  lua_pushcfunction(L, open_helper);
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
    fprintf(stderr, "weft: repl: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  R.helper_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  R.seen_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

static void setup(void) {
  uv_loop_t *loop = R.rt->loop;
  open_input();
  uv_async_init(loop, &R.async, on_async);
  uv_unref((uv_handle_t *)&R.async);
  uv_check_init(loop, &R.check);
  uv_check_start(&R.check, on_check);
  uv_unref((uv_handle_t *)&R.check);
  uv_timer_init(loop, &R.grace);
  R.nopen += 3;
  if (R.input == IN_TTY) {
    relay_open(1);
    relay_open(2);
  }
  install_signals();
  R.old_report = R.rt->report;
  R.old_report_ud = R.rt->report_ud;
  R.rt->report = report_above;
  lua_pushboolean(R.L, 1);
  call_helper("wrap_output", 1, 0);
}

/* Cancels the tasks still running and waits for their cleanup. */
static void stop_tasks(void) {
  weft_runtime *rt = R.rt;
  if (rt->nlive == 0) {
    weft__report_unobserved(R.L, rt);
    return;
  }
  fflush(stdout);
  fprintf(stderr, "weft: %d task%s still running; cancelling %s\n", rt->nlive,
          rt->nlive == 1 ? "" : "s", rt->nlive == 1 ? "it" : "them");
  R.state = ST_EXITING;
  cancel_all();
  while (rt->nlive > 0) {
    if (!uv_loop_alive(rt->loop) && weft_queue_empty(&rt->ready)) {
      fprintf(stderr, "weft: %d task%s cannot finish\n", rt->nlive, rt->nlive == 1 ? "" : "s");
      break;
    }
    run_once();
  }
  weft__report_unobserved(R.L, rt);
}

static void teardown(void) {
  lua_State *L = R.L;
  R.state = ST_EXITING;
  if (R.fs_pending)
    uv_cancel((uv_req_t *)&R.fsreq);
  while (R.fs_pending)
    uv_run(R.rt->loop, UV_RUN_ONCE);
  relay_close();
  lua_pushboolean(L, 0);
  call_helper("wrap_output", 1, 0);
  R.rt->report = R.old_report;
  R.rt->report_ud = R.old_report_ud;
  if (R.input == IN_TTY) {
    uv_close((uv_handle_t *)&R.poll, on_closed);
    if (R.winch.loop != NULL)
      uv_close((uv_handle_t *)&R.winch, on_closed);
  }
  else if (R.input == IN_PIPE)
    uv_close((uv_handle_t *)&R.pipe, on_closed);
  uv_close((uv_handle_t *)&R.async, on_closed);
  uv_close((uv_handle_t *)&R.check, on_closed);
  uv_close((uv_handle_t *)&R.grace, on_closed);
  while (R.nopen > 0)
    uv_run(R.rt->loop, UV_RUN_NOWAIT);
  restore_signals();
  luaL_unref(L, LUA_REGISTRYINDEX, comp_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, R.helper_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, R.seen_ref);
  free(R.in.p);
  free(R.held.p);
  fflush(stdout);
}

int weft__repl(lua_State *L, weft_runtime *rt) {
  int status;
  memset(&R, 0, sizeof R);
  R.L = L;
  R.rt = rt;
  R.quit = -1;
  R.inject = -1;
  R.match = -1;
  R.relay_fd[0] = R.relay_fd[1] = -1;
  if (load_helper(L) != 0)
    return 1;
  setup();
  repl_loop();
  stop_tasks();
  status = R.quit > 0 ? R.quit : 0;
  teardown();
  /* Leaving ends the session: what is still open (a process nobody awaits,
     a server) is closed with the runtime, not served on by the CLI. */
  rt->stop_driving = 1;
  return status;
}

/* }======== */
