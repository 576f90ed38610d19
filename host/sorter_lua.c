/*
** sorter_lua.c: weft.sorter, graphlib.TopologicalSorter semantics over the
** integer core in sorter.c (not written yet).
*/
#include "internal.h"

int weft__open_sorter(lua_State *L, weft_runtime *rt) {
  (void)L;
  (void)rt;
  return 0;
}
