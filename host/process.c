/*
** process.c: weft.exec, weft.sh, weft.process (not written yet).
*/
#include "internal.h"

void weft__process_kill_all_now(void) {
}

int weft__open_process(lua_State *L, weft_runtime *rt) {
  (void)L;
  (void)rt;
  return 0;
}
