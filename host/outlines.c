/*
** outlines.c: the hot path of `weft run`'s output layer
** (stdlib/weft/reporter/output.lua): a block of task output lines made
** harmless for a terminal and prefixed in one pass over the whole block,
** so a task printing gigabytes costs a few memchr passes per read instead
** of a Lua call per line.
**
** weft._format_lines(text, prefix, clean, keep_sgr [, file]) -> block
**   text: one or more lines joined by "\n" (no final newline, as exec's
**   batched line callbacks hand them over); every line comes out as
**   prefix .. line .. "\n". With clean, a line holding ESC, CR, BS, BEL or
**   SO is cleaned (see clean_line); other lines, NUL bytes and bytes that
**   are not UTF-8 pass unchanged. Given a Lua file, the block is written
**   to it (one fwrite) and the file returned, as file:write does.
**
** The block is built in a buffer that lives as long as the functions (an
** upvalue), so a stream of blocks allocates nothing per call and makes no
** Lua string when it goes to a file.
** weft._line_sink(file, stdout_prefix, stderr_prefix, clean, keep_sgr)
**   -> sink: the same formatting bound to a file and a task's prefixes,
**   for weft.exec's internal `_sink` option: exec then writes each batch
**   of lines from its pipe buffer straight through the sink
**   (weft__line_sink_write), and its Lua line callback only gets the last
**   lines of the batch (for the task's tail and the live area), so not
**   even a Lua string is made per batch.
** weft._clean_line(line [, keep_sgr]) -> line   (one line, cleaned)
** weft._last_lines(text, n) -> up to n strings, the last lines of text
**
** Nothing here is kept between calls: lines split across reads never
** reach this file (exec delivers complete lines only), so a \r, an escape
** sequence or a line split across chunks is handled whole.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* {======== the block buffer */

#define OUTBUF_MT "weft.outlines_buffer"
#define OUTBUF_KEEP (4u << 20)   /* a buffer grown past this is freed after use */

typedef struct outbuf {
  char *p;
  size_t len, size;
} outbuf;

/* Makes room for n more bytes (raises on out of memory). */
static char *outbuf_room(lua_State *L, outbuf *b, size_t n) {
  if (b->size - b->len < n) {
    size_t size = b->size ? b->size : 65536;
    char *grown;
    while (size - b->len < n)
      size *= 2;
    grown = (char *)realloc(b->p, size);
    if (grown == NULL)
      luaL_error(L, "weft: out of memory");
    b->p = grown;
    b->size = size;
  }
  return b->p + b->len;
}

static void outbuf_reset(outbuf *b) {
  b->len = 0;
  if (b->size > OUTBUF_KEEP) {
    free(b->p);
    b->p = NULL;
    b->size = 0;
  }
}

static int outbuf_gc(lua_State *L) {
  outbuf *b = (outbuf *)luaL_checkudata(L, 1, OUTBUF_MT);
  free(b->p);
  b->p = NULL;
  b->size = b->len = 0;
  return 0;
}

/* }======== */

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

/* Copies p[0, n) to d without the removed bytes; returns the end. */
static char *copy_kept(char *d, const char *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (!is_removed((unsigned char)p[i]))
      *d++ = p[i];
  return d;
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

#define RESET "\33[0m"

/* Writes line s (n bytes, with a trigger byte in it) cleaned to d, which
   has room for n + strlen(RESET) bytes: a \r keeps only what follows the
   last one (trailing ones ignored), escape sequences go (colour ones stay
   with keep_sgr, the line then ends with a reset), and so do the control
   bytes that move the cursor. Returns the end. */
static char *clean_line(char *d, const char *s, size_t n, int keep_sgr) {
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
      d = copy_kept(d, s + i, n - i);
      break;
    }
    e = (size_t)(esc - s);
    d = copy_kept(d, s + i, e - i);
    i = escape_end(s, n, e, &sgr) + 1;
    if (keep_sgr && sgr) {
      memcpy(d, s + e, i - e);
      d += i - e;
      kept = 1;
    }
  }
  if (kept) {
    memcpy(d, RESET, sizeof RESET - 1);
    d += sizeof RESET - 1;
  }
  return d;
}

/* }======== */

/* {======== a block of lines */

/* copy_to_control copies bytes from p to *dp up to the first byte below
   0x20 (a control byte: the newline, a trigger, a tab...) or end, and
   returns where it stopped: one pass finds where a line ends, whether it
   needs cleaning, and copies it. 16 bytes at a time where SSE2 is (every
   x86-64); it may then store up to 16 bytes past what it copies
   (COPY_SLACK), never reading past end. */
#define COPY_SLACK 16
#if defined(__SSE2__)
#include <emmintrin.h>
static const char *copy_to_control(char **dp, const char *p, const char *end) {
  const __m128i top = _mm_set1_epi8(0x1f);
  char *d = *dp;
  while (end - p >= 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    int m = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(v, top), v));
    _mm_storeu_si128((__m128i *)(void *)d, v);
    if (m != 0) {
      int k = __builtin_ctz((unsigned)m);
      *dp = d + k;
      return p + k;
    }
    p += 16;
    d += 16;
  }
  while (p < end && (unsigned char)*p >= 0x20)
    *d++ = *p++;
  *dp = d;
  return p;
}
#else
static const char *copy_to_control(char **dp, const char *p, const char *end) {
  char *d = *dp;
  while (p < end && (unsigned char)*p >= 0x20)
    *d++ = *p++;
  *dp = d;
  return p;
}
#endif

#define SHORT_PREFIX 32   /* a prefix this short is copied as a fixed-size block */

/* Formats every line of p[0, n) into b (see the header). Room is kept
   for the rest of the input plus a prefix, a reset and the slack, so a
   line is copied while it is scanned. */
static void format_block(lua_State *L, outbuf *b, const char *p, size_t n, const char *prefix,
                         size_t plen, int clean, int keep_sgr) {
  const char *end = p + n;
  char pbuf[SHORT_PREFIX];
  const size_t extra = (plen > SHORT_PREFIX ? plen : SHORT_PREFIX) + sizeof RESET + COPY_SLACK + 1;
  if (plen <= SHORT_PREFIX) {
    memset(pbuf, 0, sizeof pbuf);
    memcpy(pbuf, prefix, plen);
  }
  for (;;) {
    const char *line = p, *stop;
    int dirty = 0;
    char *d = b->size - b->len >= (size_t)(end - p) + extra
                  ? b->p + b->len
                  : outbuf_room(L, b, (size_t)(end - p) + (size_t)(end - p) / 4 + extra);
    char *text;
    if (plen <= SHORT_PREFIX)
      memcpy(d, pbuf, SHORT_PREFIX);   /* a fixed size: two vector moves */
    else
      memcpy(d, prefix, plen);
    d += plen;
    text = d;
    while ((stop = copy_to_control(&d, p, end)) < end && *stop != '\n') {
      dirty |= is_trigger((unsigned char)*stop);
      *d++ = *stop;
      p = stop + 1;
    }
    if (dirty && clean)
      d = clean_line(text, line, (size_t)(stop - line), keep_sgr);
    *d++ = '\n';
    b->len = (size_t)(d - b->p);
    if (stop == end)
      break;
    p = stop + 1;
  }
}

static int format_lines(lua_State *L) {
  size_t n, plen;
  const char *p = luaL_checklstring(L, 1, &n);
  const char *prefix = luaL_checklstring(L, 2, &plen);
  int clean = lua_toboolean(L, 3), keep_sgr = lua_toboolean(L, 4);
  luaL_Stream *file = (luaL_Stream *)luaL_testudata(L, 5, LUA_FILEHANDLE);
  outbuf *b = (outbuf *)lua_touserdata(L, lua_upvalueindex(1));
  int ok = 1;
  if (file != NULL && file->closef == NULL)
    return luaL_error(L, "attempt to use a closed file");
  if (file == NULL && !lua_isnoneornil(L, 5))
    return luaL_typeerror(L, 5, "file or nil");
  b->len = 0;
  format_block(L, b, p, n, prefix, plen, clean, keep_sgr);
  if (file == NULL)
    lua_pushlstring(L, b->p, b->len);
  else
    ok = fwrite(b->p, 1, b->len, file->f) == b->len;
  outbuf_reset(b);
  if (file == NULL)
    return 1;
  if (!ok)
    return luaL_fileresult(L, 0, NULL);
  lua_settop(L, 5);
  return 1;
}

/* {======== line sinks */

#define SINK_MT "weft.line_sink"

/* User values: 1 the Lua file, 2 and 3 the stdout and stderr prefixes. */
typedef struct line_sink {
  outbuf buf;
  int clean, keep_sgr;
} line_sink;

static int sink_gc(lua_State *L) {
  line_sink *k = (line_sink *)luaL_checkudata(L, 1, SINK_MT);
  free(k->buf.p);
  memset(&k->buf, 0, sizeof k->buf);
  return 0;
}

static int new_line_sink(lua_State *L) {
  line_sink *k;
  luaL_checkudata(L, 1, LUA_FILEHANDLE);
  luaL_checkstring(L, 2);
  luaL_checkstring(L, 3);
  k = (line_sink *)lua_newuserdatauv(L, sizeof *k, 3);
  memset(k, 0, sizeof *k);
  k->clean = lua_toboolean(L, 4);
  k->keep_sgr = lua_toboolean(L, 5);
  luaL_setmetatable(L, SINK_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 2);
  lua_pushvalue(L, 3);
  lua_setiuservalue(L, -2, 3);
  return 1;
}

int weft__is_line_sink(lua_State *L, int idx) {
  return luaL_testudata(L, idx, SINK_MT) != NULL;
}

/* Writes lines p[0, n) of stream 0 (stdout) or 1 (stderr) through the
   sink at idx. A closed file or a failed write (a reader that went away)
   loses the block, as file:write would. */
void weft__line_sink_write(lua_State *L, int idx, int stream, const char *p, size_t n) {
  line_sink *k = (line_sink *)luaL_checkudata(L, idx, SINK_MT);
  luaL_Stream *file;
  const char *prefix;
  size_t plen;
  lua_getiuservalue(L, idx, 1);
  file = (luaL_Stream *)lua_touserdata(L, -1);
  lua_getiuservalue(L, idx, 2 + (stream != 0));
  prefix = lua_tolstring(L, -1, &plen);
  if (file->closef != NULL) {
    k->buf.len = 0;
    format_block(L, &k->buf, p, n, prefix, plen, k->clean, k->keep_sgr);
    if (fwrite(k->buf.p, 1, k->buf.len, file->f) != k->buf.len)
      clearerr(file->f);
    outbuf_reset(&k->buf);
  }
  lua_pop(L, 2);
}

/* }======== */

static int clean_one(lua_State *L) {
  size_t n, i;
  const char *s = luaL_checklstring(L, 1, &n);
  int keep_sgr = lua_toboolean(L, 2);
  luaL_Buffer b;
  char *d;
  for (i = 0; i < n && !is_trigger((unsigned char)s[i]); i++) {}
  if (i == n) {
    lua_settop(L, 1);
    return 1;
  }
  d = luaL_buffinitsize(L, &b, n + sizeof RESET);
  luaL_pushresultsize(&b, (size_t)(clean_line(d, s, n, keep_sgr) - d));
  return 1;
}

/* Where the last `want` (> 0) lines of s[0, n) begin: lines are split by
   "\n", and a final "\n" ends an empty last line. */
const char *weft__tail_start(const char *s, size_t n, int want) {
  const char *start = s + n, *nl;
  int got = 0;
  while (got < want && start > s) {
    got++;
    nl = (const char *)memrchr(s, '\n', (size_t)(start - s) - (got > 1));
    if (nl == NULL)
      return s;
    start = nl + 1;
  }
  return start;
}

static int last_lines(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_Integer want = luaL_checkinteger(L, 2);
  const char *start, *nl;
  int got = 0;
  luaL_argcheck(L, want >= 0 && want <= 1000, 2, "out of range (0 to 1000)");
  luaL_checkstack(L, (int)want, "too many lines");
  if (want == 0)
    return 0;
  start = weft__tail_start(s, n, (int)want);
  do {
    nl = (const char *)memchr(start, '\n', (size_t)(s + n - start));
    lua_pushlstring(L, start, (size_t)((nl != NULL ? nl : s + n) - start));
    got++;
    start = nl + 1;
  } while (nl != NULL);
  return got;
}

/* }======== */

static const luaL_Reg outlines_funcs[] = {
  {"_format_lines", format_lines},
  {"_clean_line", clean_one},
  {"_last_lines", last_lines},
  {"_line_sink", new_line_sink},
  {NULL, NULL}
};

int weft__open_outlines(lua_State *L, weft_runtime *rt) {
  static const luaL_Reg sink_metas[] = {{"__gc", sink_gc}, {NULL, NULL}};
  static const luaL_Reg outbuf_metas[] = {{"__gc", outbuf_gc}, {NULL, NULL}};
  outbuf *b;
  weft__class(L, rt, SINK_MT, NULL, NULL, sink_metas);
  weft__class(L, rt, OUTBUF_MT, NULL, NULL, outbuf_metas);
  lua_pop(L, 2);
  b = (outbuf *)lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, OUTBUF_MT);
  luaL_setfuncs(L, outlines_funcs, 1);
  return 0;
}
