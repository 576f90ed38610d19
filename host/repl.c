/*
** repl.c: the weft REPL (not written yet).
*/
#include <stdio.h>

#include "internal.h"

int weft__repl(lua_State *L, weft_runtime *rt) {
  (void)L;
  (void)rt;
  fprintf(stderr, "weft: the REPL is not built yet; run a script or use -e\n");
  return 0;
}
