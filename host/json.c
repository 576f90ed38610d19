/*
** json.c: weft.json over Debian's lua-cjson (no codec of weft's own).
**
** Two fixes on top of cjson 2.1.0: decode turns every float with an
** integral value within +-2^53 into a Lua integer (cjson decodes all
** numbers as floats), and encode writes itself every number that cjson's
** 14 significant digits (its maximum) would round (integers past 10^14,
** fractions such as 1/3): they go through cjson as marker strings that are
** replaced afterwards, so what is encoded decodes to the same value while
** 0.1 still encodes as 0.1. Invalid JSON raises cjson's message,
** which gives the character position. User docs: docs/io.md (weft.json).
**
** Ownership: one cjson instance lives in the upvalues of encode and decode.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"

#include <lua-cjson.h>

#define JSON_MAX_DEPTH 1000
#define TWO_53 9007199254740992.0

/* {======== decode */

static void integralise(lua_State *L, int idx, int depth) {
  if (depth > JSON_MAX_DEPTH)
    return;
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1)) {
      lua_Number v = lua_tonumber(L, -1);
      if (v == floor(v) && fabs(v) <= TWO_53) {
        lua_pushvalue(L, -2);
        lua_pushinteger(L, (lua_Integer)v);
        lua_rawset(L, idx);
      }
    } else if (lua_type(L, -1) == LUA_TTABLE) {
      integralise(L, -1, depth + 1);
    }
    lua_pop(L, 1);
  }
}

static int json_decode(lua_State *L) {
  luaL_checkstring(L, 1);
  lua_settop(L, 1);
  lua_getfield(L, lua_upvalueindex(1), "decode");
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1)) {
    lua_Number v = lua_tonumber(L, -1);
    if (v == floor(v) && fabs(v) <= TWO_53)
      lua_pushinteger(L, (lua_Integer)v);
  } else if (lua_type(L, -1) == LUA_TTABLE) {
    integralise(L, -1, 0);
  }
  return 1;
}

/* }======== */

/* {======== encode */

/* Would cjson's 14 significant digits change this number? */
static int needs_precision(lua_State *L, int idx) {
  char buf[64];
  lua_Number v;
  if (lua_isinteger(L, idx)) {
    lua_Integer i = lua_tointeger(L, idx);
    return i > 99999999999999 || i < -99999999999999;
  }
  v = lua_tonumber(L, idx);
  if (!isfinite(v))
    return 0;
  snprintf(buf, sizeof buf, "%.14g", v);
  return strtod(buf, NULL) != v;
}

static int any_precise(lua_State *L, int idx, int depth) {
  int found = 0;
  if (lua_type(L, idx) == LUA_TNUMBER)
    return needs_precision(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE || depth > JSON_MAX_DEPTH)
    return 0;
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (!found && lua_next(L, idx)) {
    found = any_precise(L, -1, depth + 1);
    lua_pop(L, 1);
  }
  if (found)
    lua_pop(L, 1);
  return found;
}

/* Marks a number cjson would round: "\x01weftnum\x02<i>\x01", which cjson
   encodes as "\u0001weftnum\u0002<i>\u0001" (quotes included). */
#define MARK_OPEN "\"\\u0001weftnum\\u0002"
#define MARK_CLOSE "\\u0001\""

/* Pushes a copy of the value at idx in which every number that needs more
   than 14 digits is a marker string; the numbers go to the array at nums. */
static void mark_numbers(lua_State *L, int idx, int nums, int depth) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TNUMBER && needs_precision(L, idx)) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, nums) + 1;
    lua_pushvalue(L, idx);
    lua_rawseti(L, nums, n);
    lua_pushfstring(L, "\x01weftnum\x02%I\x01", n);
    return;
  }
  if (lua_type(L, idx) != LUA_TTABLE || depth > JSON_MAX_DEPTH) {
    lua_pushvalue(L, idx);
    return;
  }
  lua_createtable(L, (int)lua_rawlen(L, idx), 0);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    mark_numbers(L, -1, nums, depth + 1);
    lua_remove(L, -2);
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
}

/* The shortest of %.15g..%.17g that reads back as the same float. */
static void add_number(luaL_Buffer *b, lua_State *L, int idx) {
  char buf[64];
  int prec;
  if (lua_isinteger(L, idx)) {
    snprintf(buf, sizeof buf, LUA_INTEGER_FMT, lua_tointeger(L, idx));
  } else {
    lua_Number v = lua_tonumber(L, idx);
    for (prec = 15; prec <= 17; prec++) {
      snprintf(buf, sizeof buf, "%.*g", prec, v);
      if (strtod(buf, NULL) == v)
        break;
    }
  }
  luaL_addstring(b, buf);
}

/* Replaces each marker in the string on top by its number. */
static void unmark_numbers(lua_State *L, int nums) {
  size_t len;
  const char *s = lua_tolstring(L, -1, &len), *end = s + len, *p;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  while ((p = strstr(s, MARK_OPEN)) != NULL) {
    char *after;
    long i = strtol(p + sizeof MARK_OPEN - 1, &after, 10);
    luaL_addlstring(&b, s, (size_t)(p - s));
    int ok = strncmp(after, MARK_CLOSE, sizeof MARK_CLOSE - 1) == 0 &&
             lua_rawgeti(L, nums, i) == LUA_TNUMBER;
    if (!ok) {
      if (strncmp(after, MARK_CLOSE, sizeof MARK_CLOSE - 1) == 0)
        lua_pop(L, 1);
      luaL_addlstring(&b, p, sizeof MARK_OPEN - 1);
      s = p + sizeof MARK_OPEN - 1;
      continue;
    }
    add_number(&b, L, -1);
    lua_pop(L, 1);
    s = after + sizeof MARK_CLOSE - 1;
  }
  luaL_addlstring(&b, s, (size_t)(end - s));
  luaL_pushresult(&b);
}

/* Calls cjson's encode (function and value on top): what it cannot encode
   (a function, a cycle...) is a bad argument #1 of weft.json.encode. */
static int encode_call(lua_State *L) {
  if (lua_pcall(L, 1, 1, 0) != LUA_OK)
    return luaL_argerror(L, 1, lua_tostring(L, -1));
  return 1;
}

static int json_encode(lua_State *L) {
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  lua_getfield(L, lua_upvalueindex(1), "encode");
  if (!any_precise(L, 1, 0)) {
    lua_pushvalue(L, 1);
    return encode_call(L);
  }
  lua_newtable(L);                     /* 3: the numbers */
  lua_pushvalue(L, 2);
  mark_numbers(L, 1, 3, 0);
  encode_call(L);
  unmark_numbers(L, 3);
  return 1;
}

/* }======== */

/* Pushes a fresh cjson instance. */
static void new_cjson(lua_State *L) {
  luaopen_cjson(L);
  lua_getfield(L, -1, "new");
  lua_call(L, 0, 1);
  lua_remove(L, -2);
}

int weft__open_json(lua_State *L, weft_runtime *rt) {
  (void)rt;
  lua_createtable(L, 0, 3);
  new_cjson(L);
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, json_encode, 1);
  lua_setfield(L, -3, "encode");
  lua_getfield(L, -1, "null");
  lua_setfield(L, -3, "null");
  lua_pushcclosure(L, json_decode, 1);
  lua_setfield(L, -2, "decode");
  lua_setfield(L, -2, "json");
  return 0;
}
