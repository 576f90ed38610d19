/*
** compat.h: differences between Lua 5.4 releases, kept in one place.
** Debian 12 ships 5.4.4, where closing a thread is lua_resetthread(co);
** 5.4.6 renamed it lua_closethread(co, from).
*/
#ifndef WEFT_COMPAT_H
#define WEFT_COMPAT_H

#include <lua.h>

#if LUA_VERSION_RELEASE_NUM >= 50406
#define weft_closethread(co, from) lua_closethread((co), (from))
#else
#define weft_closethread(co, from) ((void)(from), lua_resetthread(co))
#endif

#if defined(__GNUC__)
#define weft_likely(x) __builtin_expect(!!(x), 1)
#define weft_unlikely(x) __builtin_expect(!!(x), 0)
#else
#define weft_likely(x) (x)
#define weft_unlikely(x) (x)
#endif

#endif
