/*
** weft.h: the public C API of weft, for applications that embed it.
** A weft runtime belongs to one lua_State and runs tasks on one libuv loop,
** its own or the application's.
*/
#ifndef WEFT_H
#define WEFT_H

#include <lua.h>
#include <uv.h>

#define WEFT_VERSION_STRING "0.1.0"

/* Opens weft in L (as require "weft" does) and leaves the module on the stack. */
int luaopen_weft(lua_State *L);

#endif
