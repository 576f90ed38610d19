/*
** outlines.c: the hot path of `weft run`'s output layer
** (stdlib/weft/reporter/output.lua): a block of task output lines made
** harmless for a terminal and prefixed in one pass over the whole block,
** so a task printing gigabytes costs a few memchr passes per read instead
** of a Lua call per line.
**
** weft._format_lines(text, prefix, clean, keep_sgr) -> block
**   text: one or more lines joined by "\n" (no final newline, as exec's
**   batched line callbacks hand them over); every line comes out as
**   prefix .. line .. "\n". With clean, a line holding ESC, CR, BS, BEL or
**   SO is cleaned (see clean_line); other lines, NUL bytes and bytes that
**   are not UTF-8 pass unchanged.
** weft._clean_line(line [, keep_sgr]) -> line   (one line, cleaned)
** weft._last_lines(text, n) -> up to n strings, the last lines of text
**
** Nothing here is kept between calls: lines split across reads never
** reach this file (exec delivers complete lines only), so a \r, an escape
** sequence or a line split across chunks is handled whole.
*/
#include <string.h>

#include "internal.h"

/* {======== one line made harmless (the rules of output.lua's clean) */

enum { ESC = 27 };

/* The bytes that make a line worth cleaning: they move the cursor, ring,
   start an escape sequence or switch the character set. */
static int is_trigger(unsigned char c) {
  return c == ESC || c == '\r' || c == '\b' || c == '\a' || c == 14;
}

/* The control bytes removed from a cleaned line (ESC is not among them:
   those left start the colour sequences that were kept). */
static int is_removed(unsigned char c) {
  return (c >= 1 && c <= 8) || (c >= 11 && c <= 26) || (c >= 28 && c <= 31) || c == 127;
}

static void add_kept(luaL_Buffer *b, const char *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (!is_removed((unsigned char)p[i]))
      luaL_addchar(b, p[i]);
}

/* Index of the last byte of the escape sequence starting at s[e] (ESC);
   n - 1 when it never ends. *sgr is set when it is a colour sequence. */
static size_t escape_end(const char *s, size_t n, size_t e, int *sgr) {
  size_t i = e + 1;
  unsigned char c = i < n ? (unsigned char)s[i] : 0;
  *sgr = 0;
  if (i < n && c == '[') {   /* CSI: parameters, intermediates, a final byte */
    for (i++; i < n && s[i] >= 0x30 && s[i] <= 0x3f; i++) {}
    for (; i < n && s[i] >= 0x20 && s[i] <= 0x2f; i++) {}
    if (i < n && s[i] >= 0x40 && s[i] <= 0x7e) {
      *sgr = s[i] == 'm';
      return i;
    }
    return n - 1;
  }
  if (i < n && (c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_')) {
    for (i++; i < n; i++) {   /* a string control: up to BEL or ESC \ */
      if (s[i] == '\a')
        return i;
      if (s[i] == ESC && i + 1 < n && s[i + 1] == '\\')
        return i + 1;
    }
    return n - 1;
  }
  for (; i < n && s[i] >= 0x20 && s[i] <= 0x2f; i++) {}   /* ESC ( B, ESC 7 */
  return i < n && s[i] >= 0x30 && s[i] <= 0x7e ? i : n - 1;
}

/* Adds line s (n bytes, with a trigger byte in it) cleaned: a \r keeps
   only what follows the last one (trailing ones ignored), escape sequences
   go (colour ones stay with keep_sgr, the line then ends with a reset),
   and so do the control bytes that move the cursor. */
static void clean_line(luaL_Buffer *b, const char *s, size_t n, int keep_sgr) {
  const char *cr;
  size_t i = 0, e;
  int kept = 0, sgr;
  while (n > 0 && s[n - 1] == '\r')
    n--;
  cr = n > 0 ? (const char *)memrchr(s, '\r', n) : NULL;
  if (cr != NULL) {
    n -= (size_t)(cr + 1 - s);
    s = cr + 1;
  }
  while (i < n) {
    const char *esc = (const char *)memchr(s + i, ESC, n - i);
    if (esc == NULL) {
      add_kept(b, s + i, n - i);
      break;
    }
    e = (size_t)(esc - s);
    add_kept(b, s + i, e - i);
    i = escape_end(s, n, e, &sgr) + 1;
    if (keep_sgr && sgr) {
      luaL_addlstring(b, s + e, i - e);
      kept = 1;
    }
  }
  if (kept)
    luaL_addstring(b, "\33[0m");
}

/* }======== */

/* {======== a block of lines */

#define NTRIGGERS 5

/* The next trigger byte at or after p, found with one memchr per trigger
   kept between lines, so a block costs O(n) whatever mix it holds. */
typedef struct trigger_scan {
  const char *next[NTRIGGERS];
  const char *end;
} trigger_scan;

static const char triggers[NTRIGGERS] = {ESC, '\r', '\b', '\a', 14};

static const char *next_trigger(trigger_scan *t, const char *p) {
  const char *best = NULL;
  int i;
  for (i = 0; i < NTRIGGERS; i++) {
    if (t->next[i] != NULL && t->next[i] < p)
      t->next[i] = (const char *)memchr(p, triggers[i], (size_t)(t->end - p));
    if (t->next[i] != NULL && (best == NULL || t->next[i] < best))
      best = t->next[i];
  }
  return best;
}

static void scan_init(trigger_scan *t, const char *p, const char *end) {
  int i;
  t->end = end;
  for (i = 0; i < NTRIGGERS; i++)
    t->next[i] = (const char *)memchr(p, triggers[i], (size_t)(end - p));
}

static int format_lines(lua_State *L) {
  size_t n, plen;
  const char *p = luaL_checklstring(L, 1, &n);
  const char *prefix = luaL_checklstring(L, 2, &plen);
  int clean = lua_toboolean(L, 3), keep_sgr = lua_toboolean(L, 4);
  const char *end = p + n, *trig = NULL;
  trigger_scan scan;
  luaL_Buffer b;
  luaL_buffinitsize(L, &b, n + n / 8 + plen + 64);
  if (clean) {
    scan_init(&scan, p, end);
    trig = next_trigger(&scan, p);
  }
  for (;;) {
    const char *nl = (const char *)memchr(p, '\n', (size_t)(end - p));
    const char *stop = nl != NULL ? nl : end;
    luaL_addlstring(&b, prefix, plen);
    if (trig != NULL && trig < stop) {
      clean_line(&b, p, (size_t)(stop - p), keep_sgr);
      trig = next_trigger(&scan, stop);
    } else {
      luaL_addlstring(&b, p, (size_t)(stop - p));
    }
    luaL_addchar(&b, '\n');
    if (nl == NULL)
      break;
    p = nl + 1;
  }
  luaL_pushresult(&b);
  return 1;
}

static int clean_one(lua_State *L) {
  size_t n, i;
  const char *s = luaL_checklstring(L, 1, &n);
  int keep_sgr = lua_toboolean(L, 2);
  luaL_Buffer b;
  for (i = 0; i < n && !is_trigger((unsigned char)s[i]); i++) {}
  if (i == n) {
    lua_settop(L, 1);
    return 1;
  }
  luaL_buffinit(L, &b);
  clean_line(&b, s, n, keep_sgr);
  luaL_pushresult(&b);
  return 1;
}

static int last_lines(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_Integer want = luaL_checkinteger(L, 2);
  const char *start = s + n, *p;
  int got = 0, i;
  luaL_argcheck(L, want >= 0 && want <= 1000, 2, "out of range (0 to 1000)");
  luaL_checkstack(L, (int)want, "too many lines");
  while (got < want && start > s) {   /* walk back to the first line wanted */
    got++;
    p = (const char *)memrchr(s, '\n', (size_t)(start - s - (got > 1)));
    start = p != NULL ? p + 1 : s;
    if (p == NULL)
      break;
  }
  if (want > 0 && n == 0)
    got = 1;
  for (i = 0; i < got; i++) {
    const char *nl = (const char *)memchr(start, '\n', (size_t)(s + n - start));
    const char *stop = nl != NULL ? nl : s + n;
    lua_pushlstring(L, start, (size_t)(stop - start));
    start = stop + 1;
  }
  return got;
}

/* }======== */

static const luaL_Reg outlines_funcs[] = {
  {"_format_lines", format_lines},
  {"_clean_line", clean_one},
  {"_last_lines", last_lines},
  {NULL, NULL}
};

int weft__open_outlines(lua_State *L) {
  luaL_setfuncs(L, outlines_funcs, 0);
  return 0;
}
