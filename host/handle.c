/*
** handle.c: closing the libuv handles of a malloc'd owner. libuv holds a
** handle's memory until its close callback has run, so an owner that Lua
** also points at (an exec, a live process, the HTTP state) is freed only
** when both its Lua side let go and its last handle's close callback ran.
** The owner embeds a weft_holder that counts what is open; this file is the
** one place that counts down and frees.
*/
#include "internal.h"

static void maybe_free(weft_holder *h) {
  if (h->released && h->nopen == 0)
    h->free(h);
}

void weft__holder_closed(weft_holder *h) {
  h->nopen--;
  maybe_free(h);
}

void weft__holder_release(weft_holder *h) {
  h->released = 1;
  maybe_free(h);
}

/* A close callback for a handle whose data is its owner's holder. */
void weft__holder_close_cb(uv_handle_t *handle) {
  weft__holder_closed((weft_holder *)handle->data);
}
