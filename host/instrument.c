/*
** instrument.c: weft.instrument(hooks) and the hook calls the scheduler
** makes for it: spawned(task), step(task, seconds, on, t_end), finished(task),
** cancelled(task) and idle(seconds), for every task and every loop turn.
** Hot paths test rt->instruments once, so with none installed weft pays
** one predictable branch (and nothing when built with WEFT_NO_INSTRUMENT).
** A hook that raises is reported on stderr and removed; the run goes on.
**
** Ownership: the registry holds an array of installed instrument handles;
** each handle keeps a private copy of its hooks in user value 1.
** Also here: weft__dump_tasks, the text of the SIGQUIT dump. It calls
** task.c (a task's object, name and wait) and runtime.c (reports); the
** scheduler (sched.c) calls its hooks (docs/internals.md "Who calls whom").
** User docs: docs/debugging.md (weft.instrument).
*/
#include <string.h>

#include "internal.h"

#define INSTRUMENT_MT "weft.instrument"

static const char *const hook_names[] = {"spawned", "step", "finished", "cancelled", "idle", NULL};

typedef struct instrument {
  weft_runtime *rt;
  int installed;
} instrument;

/* {======== calling hooks */

/* Calls hook 'name' of every instrument with the nargs values on top of L
   (popping them). Errors are reported and remove the hook. */
static void call_hooks(lua_State *L, weft_runtime *rt, const char *name, int nargs) {
  int base = lua_gettop(L) - nargs, n, i, a;
  lua_checkstack(L, nargs + 6);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->instruments_ref);
  n = (int)lua_rawlen(L, -1);
  for (i = 1; i <= n; i++) {
    if (lua_rawgeti(L, base + nargs + 1, i) != LUA_TUSERDATA) {
      lua_pop(L, 1);
      continue;
    }
    lua_getiuservalue(L, -1, 1);                    /* hooks copy */
    if (lua_getfield(L, -1, name) == LUA_TFUNCTION) {
      for (a = 1; a <= nargs; a++)
        lua_pushvalue(L, base + a);
      if (lua_pcall(L, nargs, 0, 0) != LUA_OK) {
        lua_pushfstring(L, "weft: instrument hook '%s' failed and was removed: %s\n", name,
                        luaL_tolstring(L, -1, NULL));
        weft__report(rt, lua_tostring(L, -1));
        lua_pop(L, 3);
        lua_pushnil(L);
        lua_setfield(L, -2, name);
      }
    } else {
      lua_pop(L, 1);
    }
    lua_pop(L, 2);
  }
  lua_settop(L, base);
}

void weft__hook_spawned(lua_State *L, weft_runtime *rt, weft_task *t) {
  weft__push_task(L, t);
  call_hooks(L, rt, "spawned", 1);
}

void weft__hook_step(weft_runtime *rt, weft_task *t, uint64_t started, uint64_t ended) {
  lua_State *L = rt->L;
  weft__push_task(L, t);
  lua_pushnumber(L, (double)(ended - started) * 1e-9);
  if (t->state == WEFT_T_SUSPENDED)
    weft__describe_wait(L, t);
  else
    lua_pushnil(L);
  lua_pushnumber(L, (double)ended * 1e-9);
  call_hooks(L, rt, "step", 4);
}

void weft__hook_finished(weft_runtime *rt, weft_task *t) {
  weft__push_task(rt->L, t);
  call_hooks(rt->L, rt, "finished", 1);
}

void weft__hook_cancelled(lua_State *L, weft_runtime *rt, weft_task *t) {
  weft__push_task(L, t);
  call_hooks(L, rt, "cancelled", 1);
}

static void prepare_cb(uv_prepare_t *h) {
  weft_runtime *rt = (weft_runtime *)h->data;
  rt->poll_started = uv_hrtime();
}

static void check_cb(uv_check_t *h) {
  weft_runtime *rt = (weft_runtime *)h->data;
  if (rt->poll_started == 0 || rt->instruments == 0)
    return;
  lua_pushnumber(rt->L, (double)(uv_hrtime() - rt->poll_started) * 1e-9);
  rt->poll_started = 0;
  call_hooks(rt->L, rt, "idle", 1);
}

/* }======== */

/* {======== weft.instrument */

static int instrument_close(lua_State *L) {
  instrument *ins = (instrument *)luaL_checkudata(L, 1, INSTRUMENT_MT);
  weft_runtime *rt = ins->rt;
  int n, i, j = 0;
  if (!ins->installed)
    return 0;
  ins->installed = 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->instruments_ref);
  n = (int)lua_rawlen(L, -1);
  for (i = 1; i <= n; i++) {     /* compact the array without this one */
    lua_rawgeti(L, -1, i);
    if (lua_touserdata(L, -1) != ins)
      lua_rawseti(L, -2, ++j);
    else
      lua_pop(L, 1);
  }
  for (i = j + 1; i <= n; i++) {
    lua_pushnil(L);
    lua_rawseti(L, -2, i);
  }
  if (--rt->instruments == 0) {
    uv_prepare_stop(&rt->prepare);
    uv_check_stop(&rt->check);
  }
  return 0;
}

/* A misspelt hook would never be called: say so. */
static void check_hook_names(lua_State *L) {
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    int i, known = 0;
    lua_pop(L, 1);
    for (i = 0; hook_names[i] != NULL && !known; i++)
      known = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), hook_names[i]) == 0;
    if (!known)
      luaL_argerror(L, 1, lua_pushfstring(L, "unknown hook '%s' (spawned, step, finished, "
                                          "cancelled or idle)", luaL_tolstring(L, -1, NULL)));
  }
}

static int instrument_new(lua_State *L) {
  weft_runtime *rt = WEFT_UPRT(L);
  instrument *ins;
  int i;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  check_hook_names(L);
  ins = (instrument *)lua_newuserdatauv(L, sizeof *ins, 1);
  ins->rt = rt;
  ins->installed = 1;
  luaL_setmetatable(L, INSTRUMENT_MT);
  lua_newtable(L);
  for (i = 0; hook_names[i] != NULL; i++) {
    int type = lua_getfield(L, 1, hook_names[i]);
    if (type != LUA_TNIL && type != LUA_TFUNCTION)
      return luaL_error(L, "bad argument #1 to 'weft.instrument' (hooks.%s must be a function)",
                        hook_names[i]);
    lua_setfield(L, -2, hook_names[i]);
  }
  lua_setiuservalue(L, 2, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->instruments_ref);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  lua_pop(L, 1);
  if (rt->instruments++ == 0) {
    rt->poll_started = 0;
    uv_prepare_start(&rt->prepare, prepare_cb);
    uv_check_start(&rt->check, check_cb);
  }
  return 1;
}

/* }======== */

/* {======== the SIGQUIT dump */

/* Pushes one paragraph per live task: id, name, status, what it waits on,
   where it was spawned (debug mode) and its traceback. */
void weft__dump_tasks(lua_State *S, weft_runtime *rt) {
  weft_queue *q;
  int n = 0;
  lua_pushfstring(S, "weft: %d live task%s\n", rt->nlive, rt->nlive == 1 ? "" : "s");
  for (q = rt->live.next; q != &rt->live; q = q->next) {
    weft_task *t = weft_queue_data(q, weft_task, live_node);
    int task;
    weft__push_task(S, t);
    task = lua_gettop(S);
    lua_pushfstring(S, "task %I ", (lua_Integer)t->id);
    weft__push_task_name(S, task);
    lua_pushstring(S, t->state == WEFT_T_RUNNING ? " running" : " pending");
    if (t->state == WEFT_T_SUSPENDED) {
      lua_pushliteral(S, ", waits on ");
      weft__describe_wait(S, t);
    } else {
      lua_pushstring(S, t->state == WEFT_T_RUNNING ? "" : ", ready");
      lua_pushliteral(S, "");
    }
    if (weft__task_getuv(S, task, WEFT_TASK_MORE_CREATED) == LUA_TSTRING) {
      lua_pushliteral(S, "\n  spawned at ");
      lua_insert(S, -2);
    } else {
      lua_pop(S, 1);
      lua_pushliteral(S, "");
      lua_pushliteral(S, "");
    }
    if (t->co != NULL && t->state != WEFT_T_NEW && t->state != WEFT_T_RUNNING) {
      lua_pushliteral(S, "\n");
      luaL_traceback(S, t->co, NULL, 0);
    } else {
      lua_pushliteral(S, "");
      lua_pushliteral(S, "");
    }
    lua_pushliteral(S, "\n");
    lua_concat(S, 10);
    lua_remove(S, task);
    n++;
  }
  lua_concat(S, n + 1);
}

/* }======== */

static const luaL_Reg instrument_methods[] = {
  {"close", instrument_close},
  {NULL, NULL}
};

static const luaL_Reg instrument_funcs[] = {
  {"instrument", instrument_new},
  {NULL, NULL}
};

int weft__open_instrument(lua_State *L, weft_runtime *rt) {
  weft__new_class(L, rt, INSTRUMENT_MT, instrument_methods, NULL);
  luaL_getmetatable(L, INSTRUMENT_MT);
  lua_getfield(L, -1, "__index");
  lua_getfield(L, -1, "close");
  lua_setfield(L, -3, "__close");
  lua_pop(L, 2);
  lua_pushlightuserdata(L, rt);
  luaL_setfuncs(L, instrument_funcs, 1);
  return 0;
}
