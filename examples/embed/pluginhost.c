/*
** pluginhost.c: an application that runs untrusted hook scripts ("plugins")
** on its own libuv loop, each in a sandbox, under a memory limit and a step
** budget. A hostile plugin (an endless loop, a memory bomb, an error storm,
** an escape attempt) is stopped and reported to the application's log;
** the application's own 10 ms heartbeat timer keeps its pace meanwhile.
**   ./pluginhost [--preempt] [--budget-ms N] [--seconds N] PLUGIN.lua...
** With --preempt a spinning plugin is requeued every N ms (default 10): the
** heartbeat is then late by at most N ms.
** Plugins see the sandbox's globals plus app.log(message).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <weft.h>

static uv_loop_t loop;
static uv_timer_t heartbeat, deadline;
static weft_runtime *rt;
static long ticks;
static uint64_t started_ms;
static int running_plugins;

static void app_log(const char *who, const char *msg) {
  printf("log: [%s] %s%s", who, msg, msg[0] && msg[strlen(msg) - 1] == '\n' ? "" : "\n");
  fflush(stdout);
}

static void weft_report(const char *msg, void *ud) {
  (void)ud;
  app_log("weft", msg);
}

/* app.log(message), upvalue 1: the plugin's name */
static int plugin_log(lua_State *L) {
  app_log(lua_tostring(L, lua_upvalueindex(1)), luaL_checkstring(L, 1));
  return 0;
}

/* {======== shutdown */

static void shutdown_done(weft_runtime *r, void *ud) {
  double secs = (double)(uv_now(&loop) - started_ms) / 1000.0;
  (void)r;
  (void)ud;
  printf("app: heartbeat %ld ticks in %.2f s (%.0f/s), memory in use %zu KB\n", ticks, secs,
         (double)ticks / secs, weft_memory_used(rt) / 1024);
  uv_close((uv_handle_t *)&heartbeat, NULL);
  uv_close((uv_handle_t *)&deadline, NULL);
}

static void stop_plugins(uv_timer_t *t) {
  (void)t;
  printf("app: time is up, %d plugins still running: shutting down\n", running_plugins);
  weft_shutdown(rt, shutdown_done, NULL);
}

static void tick(uv_timer_t *t) {
  (void)t;
  ticks++;
}

/* }======== */

/* {======== plugins */

static void plugin_done(weft_task *t, void *ud) {
  char *name = (char *)ud;
  lua_State *L = weft_state(rt);
  int n, status = weft_task_result(t, L, &n);
  if (status == LUA_OK)
    app_log(name, "finished");
  else {
    lua_pushfstring(L, "stopped: %s", luaL_tolstring(L, -2, NULL));
    app_log(name, lua_tostring(L, -1));
  }
  lua_settop(L, 0);
  weft_task_drop(t);
  free(name);
  if (--running_plugins == 0)
    weft_shutdown(rt, shutdown_done, NULL);
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  long size;
  if (f == NULL)
    return NULL;
  if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
      (buf = (char *)malloc((size_t)size + 1)) != NULL) {
    *len = fread(buf, 1, (size_t)size, f);
  }
  fclose(f);
  return buf;
}

static void start_plugin(const char *path) {
  static const char *const allow[] = { "os.time", "os.clock", NULL };
  lua_State *L = weft_state(rt);
  const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  size_t len = 0;
  char *code = read_file(path, &len);
  weft_task *t;
  if (code == NULL) {
    app_log(base, "cannot read the plugin");
    return;
  }
  weft_sandbox(rt, allow);                          /* env */
  lua_newtable(L);
  lua_pushstring(L, base);
  lua_pushcclosure(L, plugin_log, 1);
  lua_setfield(L, -2, "log");
  lua_setfield(L, -2, "app");
  lua_pushfstring(L, "=%s", base);
  if (weft_load_env(rt, code, len, lua_tostring(L, -1), -2) != LUA_OK ||
      weft_spawn(rt, 0) != LUA_OK) {
    app_log(base, lua_tostring(L, -1));
    lua_settop(L, 0);
    free(code);
    return;
  }
  free(code);
  t = weft_task_hold(weft_totask(L, -1));
  lua_settop(L, 0);
  running_plugins++;
  weft_task_on_done(t, plugin_done, strdup(base));
}

/* }======== */

int main(int argc, char **argv) {
  int i, preempt = 0;
  double seconds = 2, budget_ms = 10;
  setvbuf(stdout, NULL, _IOLBF, 0);
  uv_loop_init(&loop);
  rt = weft_new(&loop);
  weft_set_report(rt, weft_report, NULL);
  for (i = 1; i < argc && argv[i][0] == '-'; i++) {
    if (strcmp(argv[i], "--preempt") == 0)
      preempt = 1;
    else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
      seconds = atof(argv[++i]);
    else if (strcmp(argv[i], "--budget-ms") == 0 && i + 1 < argc)
      budget_ms = atof(argv[++i]);
  }
  weft_set_memory_limit(rt, (size_t)32 << 20);
  weft_set_step_budget(rt, budget_ms / 1000.0, preempt);
  printf("app: %d plugins, memory limit 32 MB, step budget %g ms%s\n", argc - i, budget_ms,
         preempt ? " (preempt)" : "");
  started_ms = uv_now(&loop);
  uv_timer_init(&loop, &heartbeat);
  uv_timer_start(&heartbeat, tick, 10, 10);
  uv_timer_init(&loop, &deadline);
  uv_timer_start(&deadline, stop_plugins, (uint64_t)(seconds * 1000), 0);
  for (; i < argc; i++)
    start_plugin(argv[i]);
  if (running_plugins == 0)
    weft_shutdown(rt, shutdown_done, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  weft_close(rt);
  uv_run(&loop, UV_RUN_DEFAULT);       /* weft's handles finish closing */
  return uv_loop_close(&loop) == 0 ? 0 : 1;
}
