/*
** alloc.c: the Lua allocator of the weft CLI's state. Most of what a Lua
** state allocates is small (strings, tables, closures, protos' arrays) and
** Lua tells the allocator the size of every block it frees, so small blocks
** come from free lists by size class, with no header and no search; the
** rest goes to malloc. A no-op `weft run` of examples/build makes about
** 10,000 calls to the allocator: glibc's took about 180 instructions a call
** there, this one about 55 (issue 13). "Small" stops at 256 bytes: a
** list's blocks only ever serve its own size, so memory a burst of one size
** freed cannot serve another. Lists up to 768 bytes (a thread's stack, a
** task object) made 200k live tasks ~4% faster, but after such a burst
** 200 MB of 1 KB strings then peaked at 507 MB instead of 316 MB (issue 16,
** bench/README.md); larger classes need spans that go back to a common
** pool when empty first.
**
** The state is luaL_newstate's own (its panic and warning functions), given
** this allocator right after creation, so blocks malloc made before the
** switch are still freed. Pool blocks are told apart by address: they are
** carved from one reserved range of address space, committed a chunk at a
** time; a block outside it is malloc's. Freed small blocks stay in their
** class's list for the state's next allocations of that size; the range is
** returned when the state closes. When the range is used up, small blocks
** come from malloc too. Under AddressSanitizer the pool is not used (ASan
** must see every block).
*/
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#define GRAIN 16                       /* alignment and class step */
#define SMALL_MAX 256                  /* bigger blocks: malloc */
#define NCLASSES (SMALL_MAX / GRAIN)
#define CHUNK ((size_t)256 * 1024)    /* committed at a time */
#define RESERVE ((size_t)16 << 30)    /* address space only: PROT_NONE */

typedef struct free_block { struct free_block *next; } free_block;

struct weft_pool {
  free_block *free[NCLASSES];
  char *base, *limit;    /* the reserved range */
  char *cur, *end;       /* what is committed and not yet carved */
};

static size_t class_of(size_t size) { return (size - 1) / GRAIN; }

static int owns(const weft_pool *p, const void *ptr) {
  return (const char *)ptr >= p->base && (const char *)ptr < p->limit;
}

/* Makes the next chunk of the range writable, right after the committed
   part (so a block may straddle the two); 0 when the range is used up. */
static int commit(weft_pool *p) {
  if ((size_t)(p->limit - p->end) < CHUNK ||
      mprotect(p->end, CHUNK, PROT_READ | PROT_WRITE) != 0)
    return 0;
  p->end += CHUNK;
  return 1;
}

static void *small_alloc(weft_pool *p, size_t size) {
  size_t cls = class_of(size), rounded = (cls + 1) * GRAIN;
  free_block *b = p->free[cls];
  void *fresh;
  if (b != NULL) {
    p->free[cls] = b->next;
    return b;
  }
  if ((size_t)(p->end - p->cur) < rounded && !commit(p))
    return malloc(size);
  fresh = p->cur;
  p->cur += rounded;
  return fresh;
}

static void release(weft_pool *p, void *ptr, size_t size) {
  free_block *b;
  if (!owns(p, ptr)) {
    free(ptr);
    return;
  }
  b = ptr;
  b->next = p->free[class_of(size)];
  p->free[class_of(size)] = b;
}

/* The state's lua_Alloc (ud: the pool). */
static void *pool_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  weft_pool *p = ud;
  void *q;
  if (ptr == NULL)
    osize = 0;   /* then osize is the kind of object, not a size */
  if (nsize == 0) {
    if (ptr != NULL)
      release(p, ptr, osize);
    return NULL;
  }
  if (ptr != NULL && !owns(p, ptr))
    return realloc(ptr, nsize);   /* malloc's block stays malloc's */
  if (ptr != NULL && nsize <= SMALL_MAX && class_of(osize) == class_of(nsize))
    return ptr;
  q = nsize <= SMALL_MAX ? small_alloc(p, nsize) : malloc(nsize);
  if (q == NULL)
    return nsize <= osize ? ptr : NULL;   /* Lua assumes shrinking never fails */
  if (ptr != NULL) {
    memcpy(q, ptr, osize < nsize ? osize : nsize);
    release(p, ptr, osize);
  }
  return q;
}

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

static weft_pool *pool_new(void) {
  weft_pool *p = calloc(1, sizeof(weft_pool));
  void *range;
  if (p == NULL)
    return NULL;
  range = mmap(NULL, RESERVE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (range == MAP_FAILED) {
    free(p);
    return NULL;
  }
  p->base = p->cur = p->end = range;
  p->limit = p->base + RESERVE;
  return p;
}

/* luaL_newstate's state, allocating from a new pool (*pool, to free after
   lua_close); with malloc alone (*pool NULL) under ASan or when no address
   range could be reserved. */
lua_State *weft__pool_state(weft_pool **pool) {
  lua_State *L = luaL_newstate();
  *pool = NULL;
  if (L == NULL || !USE_POOL)
    return L;
  *pool = pool_new();
  if (*pool != NULL)
    lua_setallocf(L, pool_alloc, *pool);
  return L;
}

void weft__pool_free(weft_pool *p) {
  if (p == NULL)
    return;
  munmap(p->base, RESERVE);
  free(p);
}
