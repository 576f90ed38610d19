/*
** task_lua.c: the task as Lua sees it: the task methods (t:await(),
** t:cancel(), status, done, result, the name and id fields), weft.spawn,
** weft.current_task, weft.tasks and weft._label. It sits above the
** scheduler: it calls sched.c (spawn, suspend, cancel) and task.c (the
** object, the outcome), and neither calls it.
** User docs: docs/reference.md "Running and tasks" (spawn, current, the task
** methods).
*/
#include <string.h>

#include "internal.h"

static weft_task *check_task_at(weft_runtime *rt, lua_State *L, int idx) {
  weft_task *t = weft__task_at(rt, L, idx);
  if (t == NULL)
    luaL_typeerror(L, idx, WEFT_TASK_MT);
  return t;
}

/* {======== methods */

static int finish_await(lua_State *L, int status, lua_KContext ctx) {
  weft_task *self = WEFT_UPRT(L)->current;
  (void)status;
  (void)ctx;
  if (self->deliver)
    return weft__raise_pending(L, self);
  return weft__push_results(L, 1);
}

static int task_await(lua_State *L) {
  weft_runtime *rt = WEFT_UPRT(L);
  weft_task *t = check_task_at(rt, L, 1), *self;
  if (t->state == WEFT_T_FINISHED && rt->current == NULL)
    return weft__push_results(L, 1);
  self = weft__current(L, rt, "await");
  if (t == self)
    return luaL_error(L, "await: a task cannot await itself");
  lua_settop(L, 1);
  if (t->state == WEFT_T_FINISHED)
    return weft__push_results(L, 1);
  weft_queue_insert_tail(&t->done.waiters, &self->wait.node);
  return weft__suspend(L, self, "task", 1, 0, finish_await);
}

static int task_cancel(lua_State *L) {
  weft_task *t = weft__checktask(L, 1);
  lua_pushboolean(L, weft__task_cancel(L, t, 2));
  return 1;
}

static const char *status_name(weft_task *t) {
  switch (t->state) {
    case WEFT_T_RUNNING: return "running";
    case WEFT_T_FINISHED:
      return t->done.state == WEFT_DONE ? "done"
           : t->done.state == WEFT_FAILED ? "failed" : "cancelled";
    default: return "pending";
  }
}

static int task_status(lua_State *L) {
  lua_pushstring(L, status_name(weft__checktask(L, 1)));
  return 1;
}

static int task_done(lua_State *L) {
  lua_pushboolean(L, weft__checktask(L, 1)->state == WEFT_T_FINISHED);
  return 1;
}

static int task_result(lua_State *L) {
  weft_task *t = weft__checktask(L, 1);
  if (t->state != WEFT_T_FINISHED) {
    lua_settop(L, 1);
    weft__push_task_name(L, 1);
    return luaL_error(L, "result: task %s has not finished", lua_tostring(L, -1));
  }
  return weft__push_results(L, 1);
}

static int task_index(lua_State *L) {
  weft_task *t;
  const char *k;
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(2)) != LUA_TNIL)
    return 1;   /* a method: the common case first */
  t = weft__checktask(L, 1);
  k = lua_tostring(L, 2);
  if (k != NULL) {
    if (strcmp(k, "name") == 0) {
      weft__push_name(L, t, 1);
      return 1;
    }
    if (strcmp(k, "id") == 0) {
      lua_pushinteger(L, (lua_Integer)t->id);
      return 1;
    }
  }
  lua_pushnil(L);
  return 1;
}

static int task_newindex(lua_State *L) {
  weft__checktask(L, 1);
  luaL_argcheck(L, lua_type(L, 2) == LUA_TSTRING && strcmp(lua_tostring(L, 2), "name") == 0,
                2, "only 'name' can be set on a task");
  luaL_argexpected(L, lua_type(L, 3) == LUA_TSTRING, 3, "string");
  lua_settop(L, 3);
  weft__task_setuv(L, 1, WEFT_TASK_MORE_NAME);
  return 0;
}

static int task_tostring(lua_State *L) {
  weft_task *t = weft__checktask(L, 1);
  weft__push_name(L, t, 1);
  lua_pushfstring(L, "weft.task %s (%s)", lua_tostring(L, -1), status_name(t));
  return 1;
}

static int task_spawn(lua_State *L) {
  weft_runtime *rt = WEFT_UPRT(L);
  weft__spawn(L, rt, lua_gettop(L) - 1);
  return 1;
}

static int task_current(lua_State *L) {
  weft_runtime *rt = WEFT_UPRT(L);
  if (rt->current == NULL)
    lua_pushnil(L);
  else
    weft__push_task(L, rt->current);
  return 1;
}

/* weft._label([n]): the current task's output label (see internal.h),
   nil outside a task; with n, sets it first. */
static int task_label(lua_State *L) {
  weft_task *t = WEFT_UPRT(L)->current;
  if (!lua_isnoneornil(L, 1)) {
    lua_Integer n = luaL_checkinteger(L, 1);
    if (t != NULL)
      t->label = n;
  }
  if (t == NULL)
    lua_pushnil(L);
  else
    lua_pushinteger(L, t->label);
  return 1;
}

/* weft.tasks(): the live tasks, oldest first, with what each waits on. */
static int task_list(lua_State *L) {
  weft_runtime *rt = WEFT_UPRT(L);
  weft_queue *q;
  int n = 0;
  lua_createtable(L, rt->nlive, 0);
  for (q = rt->live.next; q != &rt->live; q = q->next) {
    weft_task *t = weft_queue_data(q, weft_task, live_node);
    int rec;
    lua_createtable(L, 0, 6);
    rec = lua_gettop(L);
    weft__push_task(L, t);
    lua_pushvalue(L, -1);
    lua_setfield(L, rec, "task");
    weft__push_name(L, t, rec + 1);
    lua_setfield(L, rec, "name");
    lua_pushstring(L, status_name(t));
    lua_setfield(L, rec, "status");
    if (t->state == WEFT_T_SUSPENDED) {
      weft__describe_wait(L, t);
      lua_setfield(L, rec, "on");
    }
    weft__task_getuv(L, rec + 1, WEFT_TASK_MORE_CREATED);
    lua_setfield(L, rec, "created");
    if (t->co != NULL && t->state != WEFT_T_RUNNING && t->state != WEFT_T_NEW) {
      luaL_traceback(L, t->co, NULL, 0);
      lua_setfield(L, rec, "traceback");
    } else if (t->state == WEFT_T_RUNNING) {
      luaL_traceback(L, L, NULL, 1);
      lua_setfield(L, rec, "traceback");
    }
    lua_settop(L, rec);
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}

/* }======== */

static const luaL_Reg task_methods[] = {
  {"await", task_await},
  {"cancel", task_cancel},
  {"status", task_status},
  {"done", task_done},
  {"result", task_result},
  {NULL, NULL}
};

static const luaL_Reg task_funcs[] = {
  {"spawn", task_spawn},
  {"current", task_current},
  {"tasks", task_list},
  {"_label", task_label},
  {NULL, NULL}
};

static const luaL_Reg task_metas[] = {
  {"__newindex", task_newindex},
  {"__tostring", task_tostring},
  {NULL, NULL}
};

int weft__open_task(lua_State *L, weft_runtime *rt) {
  weft__class(L, rt, WEFT_TASK_MT, task_methods, task_index, task_metas);
  rt->task_mt = lua_topointer(L, -1);
  rt->task_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);   /* (pops it) */
  lua_pushlightuserdata(L, rt);
  luaL_setfuncs(L, task_funcs, 1);
  return 0;
}
