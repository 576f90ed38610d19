/*
** graph.c: weft.run_graph (not written yet).
*/
#include "internal.h"

int weft__open_graph(lua_State *L, weft_runtime *rt) {
  (void)L;
  (void)rt;
  return 0;
}
