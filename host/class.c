/*
** class.c: the one way host/ files make the metatable of a weft type (a
** "class"), named "weft.<type>" so that argument errors name it.
**
** The methods and metamethods get the runtime as light userdata upvalue 1,
** as every module function does (internal.h's WEFT_UPRT). A type whose
** __index also answers fields (a task's name, a process's pid) passes an
** index function: it gets the runtime as upvalue 1 and the methods table as
** upvalue 2, and should look there first.

*/
#include "internal.h"

/* Makes metatable 'name' and leaves it on the stack. 'metas' (may be NULL)
   are set as they are (__gc, __close, __tostring...); __index is the table
   of 'methods', or index(methods) when index is not NULL. */
void weft__class(lua_State *L, weft_runtime *rt, const char *name,
                 const luaL_Reg *methods, lua_CFunction index, const luaL_Reg *metas) {
  int n;
  luaL_newmetatable(L, name);
  if (metas != NULL) {
    lua_pushlightuserdata(L, rt);
    luaL_setfuncs(L, metas, 1);
  }
  if (methods == NULL)
    return;
  for (n = 0; methods[n].name != NULL; n++)
    ;
  lua_createtable(L, 0, n);   /* sized once, not rehashed as the methods come */
  lua_pushlightuserdata(L, rt);
  luaL_setfuncs(L, methods, 1);
  if (index != NULL) {
    lua_pushlightuserdata(L, rt);
    lua_insert(L, -2);
    lua_pushcclosure(L, index, 2);
  }
  lua_setfield(L, -2, "__index");
}

/* The common case: methods as __index and 'tostring' (may be NULL) as
   __tostring; the metatable is not left on the stack. */
void weft__new_class(lua_State *L, weft_runtime *rt, const char *name,
                     const luaL_Reg *methods, lua_CFunction tostring) {
  luaL_Reg metas[2] = {{"__tostring", tostring}, {NULL, NULL}};
  weft__class(L, rt, name, methods, NULL, tostring != NULL ? metas : NULL);
  lua_pop(L, 1);
}
