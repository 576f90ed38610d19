/*
** coro.c: coroutine.resume and coroutine.wrap that let weft's suspension pass
** through. A generator running inside a task may await: the await yields a
** token; each resume between it and the task sees the token, yields it on
** up to the scheduler, and when the task is resumed, resumes the inner
** coroutine again. Values the generator yields itself still go to its caller.
** Outside tasks both behave exactly as Lua's own.
**
** rt->chain_yieldable tracks whether every resume between the task and the
** running coroutine could yield, so an await that could not reach the
** scheduler fails before it registers anything.
** User docs: docs/reference.md "Running and tasks" (coroutines inside tasks).
*/
#include <lualib.h>

#include "internal.h"

char weft__suspend_token;

enum { KIND_RESUME = 0, KIND_WRAP = 1 };

static lua_State *target(lua_State *L, int kind) {
  if (kind == KIND_WRAP)
    return lua_tothread(L, lua_upvalueindex(2));
  return lua_tothread(L, 1);
}

static int resume_k(lua_State *L, int status, lua_KContext ctx);

/* Resumes co with the top narg values of L. Returns the number of results
   pushed on L, or -1 with the error pushed; may instead yield L (passing a
   weft suspension up), continuing in resume_k. */
static int resume_through(lua_State *L, lua_State *co, int narg, int kind) {
  weft_runtime *rt = WEFT_UPRT(L);
  int status, nres, saved = rt->chain_yieldable;
  if (weft_unlikely(!lua_checkstack(co, narg))) {
    lua_pushliteral(L, "too many arguments to resume");
    return -1;
  }
  lua_xmove(L, co, narg);
  rt->chain_yieldable = saved && lua_isyieldable(L);
  if (weft_unlikely(rt->envelope_on)) {   /* the step budget watches co now */
    lua_State *outer = weft__envelope_enter(rt, co);
    status = lua_resume(co, L, narg, &nres);
    weft__envelope_enter(rt, outer);
  } else {
    status = lua_resume(co, L, narg, &nres);
  }
  rt->chain_yieldable = saved;
  if (status == LUA_YIELD && nres == 1 && rt->current != NULL &&
      lua_touserdata(co, -1) == &weft__suspend_token) {
    lua_pop(co, 1);
    lua_pushlightuserdata(L, &weft__suspend_token);
    return lua_yieldk(L, 1, kind, resume_k);
  }
  if (weft_likely(status == LUA_OK || status == LUA_YIELD)) {
    if (weft_unlikely(!lua_checkstack(L, nres + 1))) {
      lua_pop(co, nres);
      lua_pushliteral(L, "too many results to resume");
      return -1;
    }
    lua_xmove(co, L, nres);
    return nres;
  }
  lua_xmove(co, L, 1);
  return -1;
}

static int resume_result(lua_State *L, int r) {
  if (r < 0) {
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
  }
  lua_pushboolean(L, 1);
  lua_insert(L, -(r + 1));
  return r + 1;
}

static int wrap_result(lua_State *L, lua_State *co, int r) {
  if (r < 0) {
    int stat = lua_status(co);
    if (stat != LUA_OK && stat != LUA_YIELD) {   /* error inside co */
      stat = weft_closethread(co, L);            /* close its tbc variables */
      lua_xmove(co, L, 1);
    }
    if (stat != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
      luaL_where(L, 1);
      lua_insert(L, -2);
      lua_concat(L, 2);
    }
    return lua_error(L);
  }
  return r;
}

static int resume_k(lua_State *L, int status, lua_KContext ctx) {
  int kind = (int)ctx;
  lua_State *co = target(L, kind);
  int r = resume_through(L, co, 0, kind);
  (void)status;
  return kind == KIND_WRAP ? wrap_result(L, co, r) : resume_result(L, r);
}

static int coro_resume(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  luaL_argexpected(L, co, 1, "coroutine");
  return resume_result(L, resume_through(L, co, lua_gettop(L) - 1, KIND_RESUME));
}

static int coro_wrap_call(lua_State *L) {
  lua_State *co = target(L, KIND_WRAP);
  return wrap_result(L, co, resume_through(L, co, lua_gettop(L), KIND_WRAP));
}

static int coro_wrap(lua_State *L) {
  lua_State *co;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, -2);
  lua_pushcclosure(L, coro_wrap_call, 2);
  return 1;
}

/* Replaces coroutine.resume and coroutine.wrap in the state's coroutine
   library (the table 'require "coroutine"' returns). */
int weft__open_coro(lua_State *L, weft_runtime *rt) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, LUA_COLIBNAME) == LUA_TTABLE) {
    lua_pushlightuserdata(L, rt);
    lua_pushcclosure(L, coro_resume, 1);
    lua_setfield(L, -2, "resume");
    lua_pushlightuserdata(L, rt);
    lua_pushcclosure(L, coro_wrap, 1);
    lua_setfield(L, -2, "wrap");
  }
  lua_pop(L, 2);
  return 0;
}
