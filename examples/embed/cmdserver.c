/*
** cmdserver.c: a small application that embeds weft. It reads commands,
** one per line, on standard input with its own libuv code, and runs user
** Lua automation scripts as weft tasks on the same loop. Scripts can await
** two operations of the application, exposed as C awaitables:
**   app.delay(ms)        completed by a uv timer
**   app.checksum(text)   computed on libuv's thread pool, resolved from
**                        the worker thread
** Commands: "run NAME [ARG]" (scripts/NAME.lua), "tasks", "quit" (shuts the
** runtime down in two steps: weft_shutdown, then weft_close).
** With --step, weft owns its loop and the application drives it one
** non-blocking step at a time from a loop of its own.
**   ./cmdserver [--step] [SCRIPT_DIR] < commands
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <weft.h>

static weft_runtime *rt;
static int quitting;
static uv_loop_t *app_loop;
static const char *script_dir = "scripts";

/* {======== app.delay(ms): a uv timer resolves a C future */

typedef struct delay_op {
  uv_timer_t timer;
  weft_cfuture *future;
} delay_op;

static void delay_closed(uv_handle_t *h) {
  free(h->data);
}

static void delay_fired(uv_timer_t *t) {
  delay_op *op = (delay_op *)t->data;
  lua_pushboolean(weft_state(rt), 1);
  weft_future_set(op->future, weft_state(rt), 1);
  uv_close((uv_handle_t *)&op->timer, delay_closed);
}

static void delay_cancelled(weft_cfuture *f, void *ud) {
  delay_op *op = (delay_op *)ud;
  printf("app: delay cancelled, timer stopped\n");
  fflush(stdout);
  weft_future_fail_message(f, "cancelled");   /* frees the handle (returns -1) */
  uv_close((uv_handle_t *)&op->timer, delay_closed);
}

static int app_delay(lua_State *L) {
  lua_Integer ms = luaL_checkinteger(L, 1);
  delay_op *op = (delay_op *)malloc(sizeof *op);
  if (op == NULL)
    return luaL_error(L, "app.delay: out of memory");
  uv_timer_init(weft_loop(rt), &op->timer);
  op->timer.data = op;
  op->future = weft_future_new(L);            /* pushed: the script awaits it */
  weft_future_on_cancel(op->future, delay_cancelled, op);
  uv_timer_start(&op->timer, delay_fired, (uint64_t)(ms < 0 ? 0 : ms), 0);
  return 1;
}

/* }======== */

/* {======== app.checksum(text): worker thread, weft_future_post */

typedef struct sum_op {
  uv_work_t work;
  weft_cfuture *future;
  char *text;
  size_t len;
  uint32_t sum;
  volatile int cancelled;
} sum_op;

/* Runs on the loop thread; 'data' carries the sum itself, since the
   operation may be freed by then. */
static int push_sum(lua_State *L, void *data) {
  lua_pushinteger(L, (lua_Integer)(uintptr_t)data);
  return 1;
}

static void sum_work(uv_work_t *w) {
  sum_op *op = (sum_op *)w->data;
  uint32_t h = 2166136261u;
  size_t i;
  for (i = 0; i < op->len && !op->cancelled; i++) {
    h ^= (unsigned char)op->text[i];
    h *= 16777619u;
  }
  op->sum = h;
  weft_future_post(op->future, push_sum, (void *)(uintptr_t)h);   /* from the worker */
}

static void sum_done(uv_work_t *w, int status) {
  sum_op *op = (sum_op *)w->data;
  (void)status;
  free(op->text);
  free(op);
}

static void sum_cancelled(weft_cfuture *f, void *ud) {
  (void)f;
  ((sum_op *)ud)->cancelled = 1;   /* the worker stops early and still posts */
}

static int app_checksum(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  sum_op *op = (sum_op *)calloc(1, sizeof *op);
  if (op == NULL || (op->text = (char *)malloc(len + 1)) == NULL) {
    free(op);
    return luaL_error(L, "app.checksum: out of memory");
  }
  memcpy(op->text, s, len);
  op->len = len;
  op->work.data = op;
  op->future = weft_future_new(L);
  weft_future_on_cancel(op->future, sum_cancelled, op);
  uv_queue_work(weft_loop(rt), &op->work, sum_work, sum_done);
  return 1;   /* the future: the script awaits it */
}

/* }======== */

/* {======== commands */

static void run_script(const char *name, const char *arg) {
  lua_State *L = weft_state(rt);
  char path[512];
  snprintf(path, sizeof path, "%s/%s.lua", script_dir, name);
  if (luaL_loadfile(L, path) != LUA_OK) {
    printf("app: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return;
  }
  lua_pushstring(L, arg);
  if (weft_spawn(rt, 1) != LUA_OK)
    printf("app: %s\n", lua_tostring(L, -1));
  lua_pop(L, 1);
}

static int handle_line(char *line) {
  char cmd[32] = "", name[128] = "", arg[256] = "";
  sscanf(line, "%31s %127s %255[^\n]", cmd, name, arg);
  if (strcmp(cmd, "run") == 0 && name[0] != '\0')
    run_script(name, arg);
  else if (strcmp(cmd, "tasks") == 0)
    printf("app: %d tasks running\n", weft_pending(rt));
  else if (strcmp(cmd, "quit") == 0) {
    quitting = 1;
    if (app_loop != NULL)
      uv_stop(app_loop);       /* close now, even with tasks running */
    return 1;
  }
  else if (cmd[0] != '\0')
    printf("app: unknown command '%s'\n", cmd);
  fflush(stdout);
  return 0;
}

/* stdin, read by the application's own libuv code */
static uv_pipe_t input;
static char pending[4096];
static size_t npending;

static void alloc_cb(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  static char chunk[4096];
  (void)h;
  (void)size;
  *buf = uv_buf_init(chunk, sizeof chunk);
}

static void stop_input(void) {
  if (!uv_is_closing((uv_handle_t *)&input))
    uv_close((uv_handle_t *)&input, NULL);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  ssize_t i;
  (void)s;
  if (n < 0) {
    stop_input();
    return;
  }
  for (i = 0; i < n; i++) {
    if (buf->base[i] == '\n' || npending == sizeof pending - 1) {
      pending[npending] = '\0';
      npending = 0;
      if (handle_line(pending)) {
        stop_input();
        return;
      }
    } else {
      pending[npending++] = buf->base[i];
    }
  }
}

/* }======== */

static void report(const char *msg, void *ud) {
  (void)ud;
  printf("app report: %s", msg);
  fflush(stdout);
}

static void print_line(const char *msg, void *ud) {
  (void)ud;
  printf("script: %s", msg);
  fflush(stdout);
}

static void open_app_module(lua_State *L) {
  static const luaL_Reg app[] = {{"delay", app_delay}, {"checksum", app_checksum}, {NULL, NULL}};
  luaL_newlib(L, app);
  lua_setglobal(L, "app");
}

static void shutdown_done(weft_runtime *r, void *loop) {
  (void)r;
  printf("app: every task finished its cleanup\n");
  fflush(stdout);
  uv_stop((uv_loop_t *)loop);
}

int main(int argc, char **argv) {
  int step = argc > 1 && strcmp(argv[1], "--step") == 0;
  uv_loop_t loop;
  if (argc > 1 + step)
    script_dir = argv[1 + step];
  uv_loop_init(&loop);
  /* with --step weft owns a loop, else it runs on ours */
  rt = weft_new(step ? NULL : &loop);
  if (rt == NULL)
    return 1;
  weft_set_report(rt, report, NULL);
  weft_set_print(rt, print_line, NULL);
  open_app_module(weft_state(rt));
  uv_pipe_init(step ? weft_loop(rt) : &loop, &input, 0);
  uv_pipe_open(&input, 0);
  uv_read_start((uv_stream_t *)&input, alloc_cb, read_cb);
  if (step) {
    /* the application's own loop: a weft step, then its own work */
    long turns = 0;
    while (!quitting && (weft_step(rt) > 0 || !uv_is_closing((uv_handle_t *)&input))) {
      turns++;
      usleep(1000);
    }
    printf("app: drove weft in %s steps\n", turns > 10 ? "many" : "few");
  } else {
    app_loop = &loop;
    uv_run(&loop, UV_RUN_DEFAULT);   /* until stdin ends and tasks are done, or quit */
  }
  printf("app: closing with %d tasks still running\n", weft_pending(rt));
  fflush(stdout);
  if (!step) {
    /* two steps: the tasks' cleanup may await, so the loop runs meanwhile */
    weft_shutdown(rt, shutdown_done, &loop);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  weft_close(rt);
  uv_run(&loop, UV_RUN_DEFAULT);      /* let closed handles finish */
  uv_loop_close(&loop);
  return 0;
}
