/*
** http.c: weft.http (not written yet).
*/
#include "io.h"

int weft__open_http(lua_State *L, weft_runtime *rt) {
  (void)L;
  (void)rt;
  return 0;
}
