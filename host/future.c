/*
** future.c: completions and waiter lists, what every wait is built on: a
** weft_completion (an outcome and the waiters of a task or a future),
** weft__wake_waiters, which unlinks and wakes waiters in order, and
** weft__unpack_results for the outcome as stored. It calls no
** other file: task.c, sched.c, the primitives and weft.future (future_lua.c)
** all build on it. docs/internals.md "Who calls whom".
*/
#include "internal.h"

void weft__completion_init(weft_completion *c) {
  weft_queue_init(&c->waiters);
  c->state = WEFT_PENDING;
  c->observed = 0;
  c->nresults = 0;
}

void weft__wake_waiters(weft_queue *q, int reason, lua_Integer n) {
  while (n != 0 && !weft_queue_empty(q)) {
    weft_queue *node = weft_queue_head(q);
    weft_waiter *w = weft_queue_data(node, weft_waiter, node);
    weft_queue_remove(node);
    w->wake(w, reason);
    if (n > 0)
      n--;
  }
}

void weft__completion_wake_all(weft_completion *c) {
  weft__wake_waiters(&c->waiters, WEFT_WOKEN, -1);
}

/* With a completion's stored results on top (the value itself when
   nres <= 1, else a table of them): pushes the nres results, returns nres. */
int weft__unpack_results(lua_State *L, int nres) {
  int i;
  if (nres <= 1)
    return nres;
  luaL_checkstack(L, nres, "too many results");
  for (i = 1; i <= nres; i++)
    lua_rawgeti(L, -i, i);
  return nres;
}
