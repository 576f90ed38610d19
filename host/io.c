/*
** io.c: the event loop in Lua: luv, fs, net, http, json, signals, threads
** (not written yet).
*/
#include "internal.h"

int weft__open_io(lua_State *L, weft_runtime *rt) {
  (void)L;
  (void)rt;
  return 0;
}
