/*
** alloc.c: the Lua allocator of the weft CLI's state. Most of what a Lua
** state allocates is small (strings, tables, closures, protos' arrays) and
** Lua tells the allocator the size of every block it frees, so small blocks
** come from free lists by size class carved out of big chunks, with no
** header and no search; the rest goes to malloc. A no-op `weft run` of
** examples/build makes about 10,000 calls to the allocator: glibc's took
** about 180 instructions a call there, this one about 55 (issue 13).
**
** Freed small blocks stay in their class's list for the state's next
** allocations of that size; the chunks are returned when the state closes.
** Every block of the state must come from the pool (a block malloc gave
** may be smaller than its class), so the state is made here with
** lua_newstate, given the panic and warning functions luaL_newstate gives.
** Under AddressSanitizer the pool is not used (ASan must see every block).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define GRAIN 16                       /* alignment and class step */
#define SMALL_MAX 256                  /* bigger blocks: malloc */
#define NCLASSES (SMALL_MAX / GRAIN)
#define CHUNK (64 * 1024)

typedef struct free_block { struct free_block *next; } free_block;
typedef struct chunk { struct chunk *next; } chunk;

struct weft_pool {
  free_block *free[NCLASSES];
  char *cur, *end;     /* the rest of the newest chunk */
  chunk *chunks;
};

static size_t class_of(size_t size) { return (size - 1) / GRAIN; }

static void *carve(weft_pool *p, size_t cls) {
  size_t size = (cls + 1) * GRAIN;
  void *b;
  if ((size_t)(p->end - p->cur) < size) {
    /* the header keeps the blocks aligned as malloc's result is */
    chunk *c = malloc(GRAIN + CHUNK);
    if (c == NULL)
      return NULL;
    c->next = p->chunks;
    p->chunks = c;
    p->cur = (char *)c + GRAIN;
    p->end = p->cur + CHUNK;
  }
  b = p->cur;
  p->cur += size;
  return b;
}

static void *small_alloc(weft_pool *p, size_t size) {
  size_t cls = class_of(size);
  free_block *b = p->free[cls];
  if (b == NULL)
    return carve(p, cls);
  p->free[cls] = b->next;
  return b;
}

static void small_free(weft_pool *p, void *ptr, size_t size) {
  free_block *b = ptr;
  size_t cls = class_of(size);
  b->next = p->free[cls];
  p->free[cls] = b;
}

/* The state's lua_Alloc (ud: the pool). */
static void *pool_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  weft_pool *p = ud;
  void *q;
  if (ptr == NULL)
    osize = 0;   /* then osize is the kind of object, not a size */
  if (nsize == 0) {
    if (osize > SMALL_MAX)
      free(ptr);
    else if (ptr != NULL)
      small_free(p, ptr, osize);
    return NULL;
  }
  if (osize > SMALL_MAX && nsize > SMALL_MAX)
    return realloc(ptr, nsize);
  if (ptr != NULL && osize <= SMALL_MAX && nsize <= SMALL_MAX && class_of(osize) == class_of(nsize))
    return ptr;
  q = nsize <= SMALL_MAX ? small_alloc(p, nsize) : malloc(nsize);
  if (q == NULL)
    return nsize <= osize ? ptr : NULL;   /* Lua assumes shrinking never fails */
  if (ptr != NULL) {
    memcpy(q, ptr, osize < nsize ? osize : nsize);
    pool_alloc(ud, ptr, osize, 0);
  }
  return q;
}

/* {======== what luaL_newstate adds (lauxlib.c, Lua 5.4) */

static int panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "PANIC: unprotected error in call to Lua API (%s)\n",
          msg != NULL ? msg : "error object is not a string");
  return 0;   /* Lua aborts */
}

static void warn_off(void *ud, const char *message, int tocont);
static void warn_on(void *ud, const char *message, int tocont);

/* "@on" and "@off" switch warnings; other "@..." messages are ignored */
static int is_control(lua_State *L, const char *message, int tocont) {
  if (tocont || message[0] != '@')
    return 0;
  if (strcmp(message + 1, "off") == 0)
    lua_setwarnf(L, warn_off, L);
  else if (strcmp(message + 1, "on") == 0)
    lua_setwarnf(L, warn_on, L);
  return 1;
}

static void warn_off(void *ud, const char *message, int tocont) {
  is_control(ud, message, tocont);
}

static void warn_continued(void *ud, const char *message, int tocont) {
  fputs(message, stderr);
  if (tocont) {
    lua_setwarnf(ud, warn_continued, ud);
  } else {
    fputs("\n", stderr);
    lua_setwarnf(ud, warn_on, ud);
  }
  fflush(stderr);
}

static void warn_on(void *ud, const char *message, int tocont) {
  if (is_control(ud, message, tocont))
    return;
  fputs("Lua warning: ", stderr);
  warn_continued(ud, message, tocont);
}

/* }======== */

#if defined(__SANITIZE_ADDRESS__)   /* gcc */
#define USE_POOL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)   /* clang */
#define USE_POOL 0
#endif
#endif
#ifndef USE_POOL
#define USE_POOL 1
#endif

/* A state as luaL_newstate makes, allocating from a new pool (*pool, to
   free after lua_close), or with malloc under ASan (*pool is NULL). */
lua_State *weft__pool_state(weft_pool **pool) {
  lua_State *L;
  *pool = NULL;
  if (!USE_POOL)
    return luaL_newstate();
  *pool = calloc(1, sizeof(weft_pool));
  if (*pool == NULL)
    return NULL;
  L = lua_newstate(pool_alloc, *pool);
  if (L == NULL) {
    weft__pool_free(*pool);
    *pool = NULL;
    return NULL;
  }
  lua_atpanic(L, panic);
  lua_setwarnf(L, warn_off, L);
  return L;
}

void weft__pool_free(weft_pool *p) {
  chunk *c, *next;
  if (p == NULL)
    return;
  for (c = p->chunks; c != NULL; c = next) {
    next = c->next;
    free(c);
  }
  free(p);
}
