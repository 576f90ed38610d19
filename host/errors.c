/*
** errors.c: the error values weft raises. Each is a table with 'kind' and
** 'message' (plus kind-specific fields) sharing one metatable whose
** __tostring prints "Kind: message". Kinds come from one list, so names
** cannot drift. Errors raised by user code are never wrapped. libuv's error
** codes become messages in one place (weft__uv_error_new).
** User docs: docs/reference.md "Errors".
*/
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "internal.h"

#define WEFT_ERROR_MAP(XX) \
  XX(Cancelled)            \
  XX(Timeout)              \
  XX(CycleError)           \
  XX(ErrorGroup)           \
  XX(GraphError)           \
  XX(ProcessError)         \
  XX(Deadlock)             \
  XX(IOError)              \
  XX(HTTPError)            \
  XX(MemoryError)

static const char *const error_kinds[] = {
#define XX(name) #name,
  WEFT_ERROR_MAP(XX)
#undef XX
  NULL
};

/* Pushes a new error of 'kind' with a formatted message. */
void weft__error_new(lua_State *L, const char *kind, const char *fmt, ...) {
  va_list ap;
  lua_createtable(L, 0, 4);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_setfield(L, -2, "message");
  luaL_setmetatable(L, WEFT_ERROR_MT);
}

/* libuv's name for an error code; libuv 1.44 has none for ENOEXEC (what
   posix_spawn reports for a file that is no program). */
const char *weft__uv_err_name(int rc) {
  return rc == -ENOEXEC ? "ENOEXEC" : uv_err_name(rc);
}

static const char *uv_message(int rc) {
  return rc == -ENOEXEC ? "exec format error" : uv_strerror(rc);
}

/* The one formatter of libuv errors: pushes a new error of 'kind' whose
   message is the formatted text, then ": <libuv's message> (<ERRNAME>)",
   "cannot run 'x': no such file or directory (ENOENT)". */
void weft__uv_error_new(lua_State *L, const char *kind, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  weft__error_new(L, kind, "%s: %s (%s)", lua_tostring(L, -1), uv_message(rc),
                  weft__uv_err_name(rc));
  lua_remove(L, -2);
}

/* Is the value at idx a weft error of 'kind'? */
int weft__error_is(lua_State *L, int idx, const char *kind) {
  int is = 0;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx))
    return 0;
  luaL_getmetatable(L, WEFT_ERROR_MT);
  if (lua_rawequal(L, -1, -2)) {
    lua_pushliteral(L, "kind");
    lua_rawget(L, idx);
    is = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), kind) == 0;
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  return is;
}

static int error_tostring(lua_State *L) {
  lua_getfield(L, 1, "kind");
  lua_getfield(L, 1, "message");
  lua_pushfstring(L, "%s: %s", luaL_optstring(L, -2, "Error"), luaL_optstring(L, -1, "?"));
  return 1;
}

/* weft.error(kind, message [, fields]): makes an error of one of weft's
   kinds, for Lua code in stdlib and for users who re-raise them. */
static int errors_new(lua_State *L) {
  int i = luaL_checkoption(L, 1, NULL, error_kinds);
  const char *msg = luaL_checkstring(L, 2);
  weft__error_new(L, error_kinds[i], "%s", msg);
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    }
  }
  return 1;
}

/* weft.is_error(v [, kind]): is v an error weft made (of that kind)? */
static int errors_is(lua_State *L) {
  if (lua_isnoneornil(L, 2)) {
    int is = 0;
    if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
      luaL_getmetatable(L, WEFT_ERROR_MT);
      is = lua_rawequal(L, -1, -2);
    }
    lua_pushboolean(L, is);
    return 1;
  }
  lua_pushboolean(L, weft__error_is(L, 1, luaL_checkstring(L, 2)));
  return 1;
}

static const luaL_Reg errors_funcs[] = {
  {"error", errors_new},
  {"is_error", errors_is},
  {NULL, NULL}
};

int weft__open_errors(lua_State *L, weft_runtime *rt) {
  weft__new_class(L, rt, WEFT_ERROR_MT, NULL, error_tostring);
  lua_pushlightuserdata(L, rt);
  luaL_setfuncs(L, errors_funcs, 1);
  return 0;
}
