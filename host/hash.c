/*
** hash.c: content identity for incremental pipelines. Owns `weft._hash`:
** 128-bit XXH3 digests of files and strings (hex), one stat that returns what
** the up-to-date cache keys on (kind, size, mtime in ns, inode), and the wall
** clock in ns the racy-timestamp rule compares mtimes with, `verify`, the
** loop that tells an up-to-date task by stat alone on a no-op run, and
** `defhash`, the digest of a task's definition without building its text.
** stdlib/weft/incremental.lua keeps the cache; weft.fs.hash is `file` below.
**
** The calls block the calling thread: a file is read in 64 KiB pieces with
** plain read(2), which for the source files of a build is cheaper than a trip
** through the thread pool.
*/
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "internal.h"

#define HASH_CHUNK (64 * 1024)

static void push_hex(lua_State *L, XXH128_hash_t h) {
  XXH128_canonical_t c;
  static const char digits[] = "0123456789abcdef";
  char hex[32];
  int i;
  XXH128_canonicalFromHash(&c, h);
  for (i = 0; i < 16; i++) {
    hex[2 * i] = digits[c.digest[i] >> 4];
    hex[2 * i + 1] = digits[c.digest[i] & 15];
  }
  lua_pushlstring(L, hex, sizeof hex);
}

static int fail_errno(lua_State *L, const char *what, const char *path, int err) {
  luaL_pushfail(L);
  lua_pushfstring(L, "%s %s: %s", what, path, strerror(err));
  lua_pushstring(L, err == ENOENT ? "ENOENT" : err == EISDIR ? "EISDIR"
                    : err == EACCES ? "EACCES" : "EIO");
  return 3;
}

/* Reads fd to the end into the hash state; 0 or an errno. */
static int hash_fd(int fd, XXH3_state_t *st, char *buf) {
  for (;;) {
    ssize_t n = read(fd, buf, HASH_CHUNK);
    if (n == 0)
      return 0;
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    XXH3_128bits_update(st, buf, (size_t)n);
  }
}

/* file(path) -> hex | fail, message, code */
static int hash_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  XXH3_state_t *st;
  char *buf;
  int fd, err;
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail_errno(L, "hash", path, errno);
  st = XXH3_createState();
  buf = (char *)malloc(HASH_CHUNK);   /* not static: weft threads hash too */
  if (st == NULL || buf == NULL) {
    close(fd);
    XXH3_freeState(st);
    free(buf);
    return luaL_error(L, "weft: out of memory");
  }
  XXH3_128bits_reset(st);
  err = hash_fd(fd, st, buf);
  close(fd);
  free(buf);
  if (err != 0) {
    XXH3_freeState(st);
    return fail_errno(L, "hash", path, err);
  }
  push_hex(L, XXH3_128bits_digest(st));
  XXH3_freeState(st);
  return 1;
}

/* string(s) -> hex */
static int hash_string(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  push_hex(L, XXH3_128bits(s, len));
  return 1;
}

static const char *kind_of(mode_t m) {
  if (S_ISREG(m)) return "file";
  if (S_ISDIR(m)) return "directory";
  return "other";
}

/* stat(path) -> kind, size, mtime_ns, inode | fail, message, code
   (follows symlinks, as reading the file does) */
static int hash_stat(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat sb;
  if (stat(path, &sb) != 0)
    return fail_errno(L, "stat", path, errno);
  lua_pushstring(L, kind_of(sb.st_mode));
  lua_pushinteger(L, (lua_Integer)sb.st_size);
  lua_pushinteger(L, (lua_Integer)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec);
  lua_pushinteger(L, (lua_Integer)sb.st_ino);
  return 4;
}

/* now_ns() -> the wall clock in ns, the clock file mtimes come from */
static int hash_now_ns(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushinteger(L, (lua_Integer)ts.tv_sec * 1000000000 + ts.tv_nsec);
  return 1;
}

/* {======== verify: the no-op fast path of stdlib/weft/incremental.lua */

/* One recorded file: "path\thash\tsize\tmtime_ns\tino\tchecked_ns". */
typedef struct recorded {
  char path[PATH_MAX];
  int missing;   /* hash "-": the file did not exist */
  long long size, mtime, ino, checked;
} recorded;

/* Parses one integer field ending at a tab, a newline or the end (plain
   digits and a sign: strtoll's locale handling costs more than the stat). */
static const char *parse_int(const char *p, const char *end, long long *out) {
  int neg = 0, digits = 0;
  unsigned long long v = 0;
  if (p < end && *p == '-') {
    neg = 1;
    p++;
  }
  for (; p < end && *p >= '0' && *p <= '9'; p++, digits++) {
    if (digits == 19)
      return NULL;
    v = v * 10 + (unsigned long long)(*p - '0');
  }
  if (digits == 0 || v > (unsigned long long)LLONG_MAX || (p < end && *p != '\t'))
    return NULL;
  *out = neg ? -(long long)v : (long long)v;
  return p < end ? p + 1 : p;
}

/* Parses the line [p, end); 0 when it is not in the recorded form. */
static int parse_recorded(const char *p, const char *end, recorded *r) {
  const char *tab = memchr(p, '\t', (size_t)(end - p));
  const char *hash;
  size_t n;
  if (tab == NULL || (n = (size_t)(tab - p)) == 0 || n >= sizeof r->path)
    return 0;
  memcpy(r->path, p, n);
  r->path[n] = '\0';
  hash = tab + 1;
  tab = memchr(hash, '\t', (size_t)(end - hash));
  if (tab == NULL)
    return 0;
  r->missing = tab - hash == 1 && hash[0] == '-';
  p = parse_int(tab + 1, end, &r->size);
  if (p) p = parse_int(p, end, &r->mtime);
  if (p) p = parse_int(p, end, &r->ino);
  if (p) p = parse_int(p, end, &r->checked);
  return p != NULL;
}

/* What verify needs of a stat, as kept in a run's stat cache. */
typedef struct file_stat {
  long long size, mtime, ino;
  int kind;   /* FILE_OK, FILE_DIR, FILE_ABSENT (ENOENT, ENOTDIR), FILE_ERROR */
} file_stat;
enum { FILE_OK, FILE_DIR, FILE_ABSENT, FILE_ERROR };

/* A run's stat cache (`weft._hash.stat_cache()`, a userdata): path ->
   file_stat, and the recorded lines verify found as recorded, each in an
   open-addressing table. The compiles of a build share their headers, so
   most of a no-op's stats repeat, and so do most of its lines (the same
   header recorded by each compile): a line already verified against the
   stats of this cache is not parsed again. Only lines whose path was met
   before are kept: a line of a file only one task reads costs no copy.
   stdlib/weft/incremental.lua makes a new one whenever a task runs, so it
   only ever holds stats taken while no task of the run was writing. */
#define STAT_CACHE_MT "weft.stat_cache"

typedef struct cache_entry {
  char *key;   /* NULL: free slot */
  size_t len;
  XXH64_hash_t hash;
  file_stat fs;   /* in the table of stats */
} cache_entry;

typedef struct cache_table {
  cache_entry *slots;
  size_t cap, n;   /* cap a power of two, n <= cap / 2 */
} cache_table;

typedef struct stat_cache {
  cache_table stats, verified;
} stat_cache;

static cache_entry *cache_slot(cache_table *t, const char *key, size_t len, XXH64_hash_t h) {
  size_t i = (size_t)h & (t->cap - 1);
  while (t->slots[i].key != NULL &&
         (t->slots[i].hash != h || t->slots[i].len != len || memcmp(t->slots[i].key, key, len) != 0))
    i = (i + 1) & (t->cap - 1);
  return &t->slots[i];
}

/* The entry of `key`, or NULL. */
static cache_entry *cache_find(cache_table *t, const char *key, size_t len, XXH64_hash_t h) {
  cache_entry *e;
  if (t->cap == 0)
    return NULL;
  e = cache_slot(t, key, len, h);
  return e->key != NULL ? e : NULL;
}

/* Doubles the table; 0 when out of memory (the cache then stops growing). */
static int cache_grow(cache_table *t) {
  size_t cap = t->cap ? t->cap * 2 : 256, i;
  cache_entry *old = t->slots, *e;
  size_t oldcap = t->cap;
  cache_entry *slots = (cache_entry *)calloc(cap, sizeof *slots);
  if (slots == NULL)
    return 0;
  t->slots = slots;
  t->cap = cap;
  for (i = 0; i < oldcap; i++)
    if (old[i].key != NULL) {
      e = cache_slot(t, old[i].key, old[i].len, old[i].hash);
      *e = old[i];
    }
  free(old);
  return 1;
}

/* Adds `key` (absent); NULL when out of memory. */
static cache_entry *cache_add(cache_table *t, const char *key, size_t len, XXH64_hash_t h) {
  cache_entry *e;
  if ((t->n + 1) * 2 > t->cap && !cache_grow(t))
    return NULL;
  e = cache_slot(t, key, len, h);
  if ((e->key = (char *)malloc(len + 1)) == NULL)
    return NULL;
  memcpy(e->key, key, len);
  e->key[len] = '\0';
  e->len = len;
  e->hash = h;
  t->n++;
  return e;
}

static void cache_free(cache_table *t) {
  size_t i;
  for (i = 0; i < t->cap; i++)
    free(t->slots[i].key);
  free(t->slots);
  t->slots = NULL;
  t->cap = t->n = 0;
}

static void take_stat(const char *path, file_stat *fs) {
  struct stat sb;
  memset(fs, 0, sizeof *fs);
  if (stat(path, &sb) != 0) {
    fs->kind = errno == ENOENT || errno == ENOTDIR ? FILE_ABSENT : FILE_ERROR;
    return;
  }
  fs->kind = S_ISDIR(sb.st_mode) ? FILE_DIR : FILE_OK;
  fs->size = (long long)sb.st_size;
  fs->mtime = (long long)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
  fs->ino = (long long)sb.st_ino;
}

/* Stats `path`, through cache `c` when there is one; 1 when the stat came
   from the cache. */
static int stat_cached(stat_cache *c, const char *path, file_stat *fs) {
  size_t len;
  XXH64_hash_t h;
  cache_entry *e;
  if (c == NULL) {
    take_stat(path, fs);
    return 0;
  }
  len = strlen(path);
  h = XXH3_64bits(path, len);
  if ((e = cache_find(&c->stats, path, len, h)) != NULL) {
    *fs = e->fs;
    return 1;
  }
  take_stat(path, fs);
  if ((e = cache_add(&c->stats, path, len, h)) != NULL)
    e->fs = *fs;
  return 0;
}

static int stat_cache_gc(lua_State *L) {
  stat_cache *c = (stat_cache *)luaL_checkudata(L, 1, STAT_CACHE_MT);
  cache_free(&c->stats);
  cache_free(&c->verified);
  return 0;
}

/* stat_cache() -> a new, empty cache for verify */
static int hash_stat_cache(lua_State *L) {
  stat_cache *c = (stat_cache *)lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, STAT_CACHE_MT);
  return 1;
}

/* Is the file as recorded: the same stat, hashed more than racy_ns after
   its mtime (a write in the same clock tick would not change the stat), or
   still missing? Then its content is the recorded one without reading it. */
static int still_recorded(const recorded *r, long long racy_ns, const file_stat *fs) {
  if (fs->kind == FILE_ABSENT || fs->kind == FILE_ERROR)
    return r->missing && fs->kind == FILE_ABSENT;
  if (r->missing || fs->kind == FILE_DIR)
    return 0;
  return fs->size == r->size && fs->mtime == r->mtime && fs->ino == r->ino
         && r->checked - fs->mtime > racy_ns;
}

static int not_verified(lua_State *L, lua_Integer line) {
  lua_pushboolean(L, 0);
  lua_pushinteger(L, line);
  return 2;
}

/* verify(text, racy_ns[, cache]) -> true | false, line: is every file of
   `text` (lines as above) still as recorded? `line` is the first that is
   not, or that does not parse. Reads no file content: one stat per line,
   or none for a path already in `cache` (a stat_cache). */
static int hash_verify(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  long long racy_ns = (long long)luaL_checkinteger(L, 2);
  stat_cache *cache = lua_isnoneornil(L, 3) ? NULL : (stat_cache *)luaL_checkudata(L, 3, STAT_CACHE_MT);
  const char *p = text, *end = text + len;
  recorded r;
  file_stat fs;
  lua_Integer line = 0;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *stop = nl ? nl : end;
    size_t n = (size_t)(stop - p);
    XXH64_hash_t h = 0;
    int hashed = 0, seen;
    line++;
    if (cache != NULL && cache->verified.n > 0) {   /* verified for another task? */
      h = XXH3_64bits(p, n);
      hashed = 1;
      if (cache_find(&cache->verified, p, n, h) != NULL) {
        p = nl ? nl + 1 : end;
        continue;
      }
    }
    if (!parse_recorded(p, stop, &r))
      return not_verified(L, line);
    seen = stat_cached(cache, r.path, &fs);
    if (!still_recorded(&r, racy_ns, &fs))
      return not_verified(L, line);
    if (seen) {   /* a shared file: the next task's line is likely this one */
      if (!hashed)
        h = XXH3_64bits(p, n);
      cache_add(&cache->verified, p, n, h);   /* out of memory: verified again next time */
    }
    p = nl ? nl + 1 : end;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* }======== */

/* {======== defhash: a task's definition key, digested as it is walked

   What it covers is what stdlib/weft/incremental.lua's definition() writes
   out (and a change to any of it changes the digest): each named field's
   value, the body's bytecode (stripped, and without the lines it is
   defined at, so moving it does not count) and the
   value of each variable it captures but _ENV, recursively. Tables with a
   metatable count as "an object", C functions as "a C function"; a table
   met again on the way down is "a cycle", one deeper than 12 "deep". A
   table's pairs are digested one by one and summed, so their order does not
   matter; a sequence is digested in order. */

#define DEF_DEPTH 12

/* The bytes of the walk go to one growing buffer and are digested with one
   XXH3 call: a body's bytecode arrives from lua_dump in thousands of pieces of
   a few bytes, each a costly update of a streaming state. The one-shot digest
   of the bytes is the streaming one's, so the key is unchanged. A table's
   pairs are written after the bytes of the depth being walked and digested
   apart (then cut off again), so the buffer is a stack. */
typedef struct def_walk {
  char *buf;
  size_t len, cap;
  const void *path[DEF_DEPTH + 3];   /* the tables and functions being walked */
  int npath;
  lua_State *L;   /* to raise out of memory */
} def_walk;

/* Makes room for n more bytes; 0 when out of memory. */
static int reserve(def_walk *w, size_t n) {
  size_t cap = w->cap ? w->cap : 4096;
  char *buf;
  if (n <= w->cap - w->len)
    return 1;
  while (cap - w->len < n)
    cap *= 2;
  if ((buf = (char *)realloc(w->buf, cap)) == NULL)
    return 0;
  w->buf = buf;
  w->cap = cap;
  return 1;
}

static void feed(def_walk *w, const void *p, size_t n) {
  if (!reserve(w, n))
    luaL_error(w->L, "weft: out of memory");
  memcpy(w->buf + w->len, p, n);
  w->len += n;
}

static void feed_tag(def_walk *w, char tag) { feed(w, &tag, 1); }

static int on_path(def_walk *w, const void *p) {
  int i;
  for (i = 0; i < w->npath; i++)
    if (w->path[i] == p)
      return 1;
  return 0;
}

/* Raises nothing inside lua_dump: a failure stops the dump, raised after.
   Most pieces are one byte (a tag, a size), copied without a call. */
static int dump_writer(lua_State *L, const void *p, size_t n, void *ud) {
  def_walk *w = (def_walk *)ud;
  (void)L;
  if (!reserve(w, n))
    return 1;
  if (n == 1)
    w->buf[w->len] = *(const char *)p;
  else
    memcpy(w->buf + w->len, p, n);
  w->len += n;
  return 0;
}

static void feed_value(lua_State *L, def_walk *w, int idx);

static void feed_table(lua_State *L, def_walk *w, int idx) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0, i;
  XXH128_hash_t sum = {0, 0};
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    count++;
    lua_pop(L, 1);
  }
  if (count == n) {   /* a sequence: its order matters */
    feed_tag(w, 'A');
    feed(w, &n, sizeof n);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, i);
      feed_value(L, w, lua_gettop(L));
      lua_pop(L, 1);
    }
    return;
  }
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    size_t start = w->len;
    XXH128_hash_t h;
    feed_value(L, w, lua_gettop(L) - 1);
    feed_value(L, w, lua_gettop(L));
    h = XXH3_128bits(w->buf + start, w->len - start);
    w->len = start;
    sum.low64 += h.low64;
    sum.high64 += h.high64;
    lua_pop(L, 1);
  }
  feed_tag(w, 'T');
  feed(w, &count, sizeof count);
  feed(w, &sum, sizeof sum);
}

/* {======== the lines a function is defined at, left out of its dump

   lua_dump with strip still writes each prototype's linedefined and
   lastlinedefined: a comment added above a task would change its body's
   bytes and rerun it. The dump is read once more, as lundump.c reads Lua
   5.4's format, and rewritten in place with those two numbers 0. A dump
   that does not read as that format is left as it is (its digest then
   counts lines, as before). */

typedef struct dump_cursor {
  const unsigned char *p, *end;
  unsigned char *out;   /* where bytes go (behind p: the dump only shrinks); NULL: only read */
} dump_cursor;

static int dc_copy(dump_cursor *c, size_t n) {
  if ((size_t)(c->end - c->p) < n)
    return 0;
  if (c->out != NULL) {
    memmove(c->out, c->p, n);
    c->out += n;
  }
  c->p += n;
  return 1;
}

/* A size (7 bits a byte, the last with 0x80), copied (keep) or written as 0. */
static int dc_size(dump_cursor *c, size_t *v, int keep) {
  const unsigned char *start = c->p;
  size_t x = 0;
  int b;
  do {
    if (c->p == c->end || c->p - start == 10)
      return 0;
    b = *c->p++;
    x = (x << 7) | (size_t)(b & 0x7f);
  } while ((b & 0x80) == 0);
  if (v != NULL)
    *v = x;
  if (c->out != NULL) {
    if (keep) {
      memmove(c->out, start, (size_t)(c->p - start));
      c->out += c->p - start;
    } else {
      *c->out++ = 0x80;
    }
  }
  return 1;
}

static int dc_string(dump_cursor *c) {
  size_t n;
  return dc_size(c, &n, 1) && (n == 0 || dc_copy(c, n - 1));
}

/* n items of `each` bytes, n read first (checked against what is left) */
static int dc_vector(dump_cursor *c, size_t each) {
  size_t n;
  return dc_size(c, &n, 1) && n <= (size_t)(c->end - c->p) / each && dc_copy(c, n * each);
}

static int dc_function(dump_cursor *c, int depth) {
  size_t n, i;
  if (depth > 200 || !dc_string(c) || !dc_size(c, NULL, 0) || !dc_size(c, NULL, 0) ||
      !dc_copy(c, 3) || !dc_vector(c, 4) || !dc_size(c, &n, 1))
    return 0;
  for (i = 0; i < n; i++) {   /* constants: a tag byte, then the value */
    int tag = c->p < c->end ? *c->p : -1;
    if (!dc_copy(c, 1))
      return 0;
    if (tag == 0x03 || tag == 0x13) {   /* integer, float */
      if (!dc_copy(c, 8))
        return 0;
    } else if (tag == 0x04 || tag == 0x14) {   /* short, long string */
      if (!dc_string(c))
        return 0;
    } else if (tag != 0x00 && tag != 0x01 && tag != 0x11) {   /* nil, false, true */
      return 0;
    }
  }
  if (!dc_vector(c, 3) || !dc_size(c, &n, 1))   /* upvalues, then nested prototypes */
    return 0;
  for (i = 0; i < n; i++)
    if (!dc_function(c, depth + 1))
      return 0;
  if (!dc_vector(c, 1) || !dc_size(c, &n, 1))   /* line info, then absolute line info */
    return 0;
  for (i = 0; i < n; i++)
    if (!dc_size(c, NULL, 1) || !dc_size(c, NULL, 1))
      return 0;
  if (!dc_size(c, &n, 1))   /* local variables */
    return 0;
  for (i = 0; i < n; i++)
    if (!dc_string(c) || !dc_size(c, NULL, 1) || !dc_size(c, NULL, 1))
      return 0;
  if (!dc_size(c, &n, 1))   /* upvalue names */
    return 0;
  for (i = 0; i < n; i++)
    if (!dc_string(c))
      return 0;
  return 1;
}

/* Reads the dump at buf (len bytes); 1 when it is Lua 5.4's format through
   to its end. With out, writes it there (out <= buf: it only shrinks),
   as it reads. */
static int dc_dump(unsigned char *buf, size_t len, unsigned char *out, size_t *outlen) {
  dump_cursor c;
  c.p = buf;
  c.end = buf + len;
  c.out = out;
  if (len < 6 || memcmp(buf, "\x1bLua\x54\x00", 6) != 0)
    return 0;
  /* header: signature, version, format, LUAC_DATA, three sizes, LUAC_INT,
     LUAC_NUM, then the main function's upvalue count */
  if (!dc_copy(&c, 4 + 1 + 1 + 6 + 3 + 8 + 8 + 1) || !dc_function(&c, 0) || c.p != c.end)
    return 0;
  if (outlen != NULL)
    *outlen = (size_t)(c.out - out);
  return 1;
}

/* The dump at w->buf + start, rewritten without its definition lines; 0
   when it did not read as Lua 5.4's format (the bytes are then spoiled:
   the caller dumps again). */
static int drop_definition_lines(def_walk *w, size_t start) {
  unsigned char *buf = (unsigned char *)w->buf + start;
  size_t newlen;
  if (!dc_dump(buf, w->len - start, buf, &newlen))
    return 0;
  w->len = start + newlen;
  return 1;
}

/* Appends the bytecode of the function on top of L to w, stripped and
   without the lines it is defined at (as lua_dump writes it when the dump
   does not read as 5.4's format); 0 when out of memory. */
static int dump_code(lua_State *L, def_walk *w) {
  size_t start = w->len;
  if (lua_dump(L, dump_writer, w, 1) != 0)
    return 0;
  if (drop_definition_lines(w, start))
    return 1;
  w->len = start;
  return lua_dump(L, dump_writer, w, 1) == 0;
}

/* }======== */

static char dump_cache_key;   /* registry: function -> its stripped bytecode (weak keys) */

/* The function's bytecode, once per function for a function met inside
   definitions (a helper every task captures, as `sh` in
   examples/build/Weftfile.lua): a function's prototype never changes, so
   neither does its dump. A task's own body is dumped each time (bodies are
   rarely shared: no copy kept). */
static void feed_bytecode(lua_State *L, def_walk *w, int idx, int shared) {
  size_t start = w->len, len;
  const char *s;
  if (shared) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &dump_cache_key) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_newtable(L);
      lua_createtable(L, 0, 1);
      lua_pushliteral(L, "k");
      lua_setfield(L, -2, "__mode");
      lua_setmetatable(L, -2);
      lua_pushvalue(L, -1);
      lua_rawsetp(L, LUA_REGISTRYINDEX, &dump_cache_key);
    }
    lua_pushvalue(L, idx);
    if (lua_rawget(L, -2) == LUA_TSTRING) {
      s = lua_tolstring(L, -1, &len);
      feed(w, s, len);
      lua_pop(L, 2);
      return;
    }
    lua_pop(L, 1);
  }
  lua_pushvalue(L, idx);
  if (!dump_code(L, w))
    luaL_error(L, "weft: out of memory");
  lua_pop(L, 1);
  if (shared) {
    lua_pushvalue(L, idx);
    lua_pushlstring(L, w->buf + start, w->len - start);
    lua_rawset(L, -3);
    lua_pop(L, 1);
  }
}

static void feed_function(lua_State *L, def_walk *w, int idx) {
  const char *name;
  int i;
  if (lua_iscfunction(L, idx)) {
    feed_tag(w, 'C');
    return;
  }
  feed_tag(w, 'F');
  feed_bytecode(L, w, idx, w->npath > 1);
  for (i = 1; (name = lua_getupvalue(L, idx, i)) != NULL; i++) {
    if (strcmp(name, "_ENV") != 0) {
      feed_tag(w, 'u');
      feed(w, name, strlen(name) + 1);
      feed_value(L, w, lua_gettop(L));
    }
    lua_pop(L, 1);
  }
}

/* Feeds the value at idx (absolute); tables and functions nested in it
   count one level deeper for the depth limit. */
static void feed_value(lua_State *L, def_walk *w, int idx) {
  int t = lua_type(L, idx);
  luaL_checkstack(L, 8, "definition too deep");
  switch (t) {
    case LUA_TNIL: feed_tag(w, 'n'); break;
    case LUA_TBOOLEAN: feed_tag(w, lua_toboolean(L, idx) ? 't' : 'f'); break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        lua_Integer v = lua_tointeger(L, idx);
        feed_tag(w, 'i');
        feed(w, &v, sizeof v);
      } else {
        lua_Number v = lua_tonumber(L, idx);
        feed_tag(w, 'd');
        feed(w, &v, sizeof v);
      }
      break;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      feed_tag(w, 's');
      feed(w, &len, sizeof len);
      feed(w, s, len);
      break;
    }
    case LUA_TTABLE:
    case LUA_TFUNCTION: {
      const void *p = lua_topointer(L, idx);
      if (t == LUA_TTABLE && lua_getmetatable(L, idx)) {
        lua_pop(L, 1);
        feed_tag(w, 'o');
      } else if (on_path(w, p)) {
        feed_tag(w, 'c');
      } else if (w->npath > DEF_DEPTH) {
        feed_tag(w, 'D');
      } else {
        w->path[w->npath++] = p;
        if (t == LUA_TTABLE)
          feed_table(L, w, idx);
        else
          feed_function(L, w, idx);
        w->npath--;
      }
      break;
    }
    default:
      feed_tag(w, 'x');
      feed(w, &t, sizeof t);
  }
}

static int walk_definition(lua_State *L) {
  def_walk *w = (def_walk *)lua_touserdata(L, 4);
  lua_Integer i, n = (lua_Integer)lua_rawlen(L, 2);
  w->L = L;
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 2, i);   /* a field name */
    lua_pushvalue(L, -1);
    if (lua_rawget(L, 1) != LUA_TNIL) {
      feed_tag(w, 'k');
      feed_value(L, w, lua_gettop(L) - 1);
      feed_value(L, w, lua_gettop(L));
    }
    lua_pop(L, 2);
  }
  if (!lua_isnil(L, 3)) {
    feed_tag(w, 'B');
    feed_value(L, w, 3);
  }
  push_hex(L, XXH3_128bits(w->buf, w->len));
  return 1;
}

/* code(fn) -> the hex digest of fn's stripped bytecode without the lines
   it is defined at (what defhash digests of a body), or nil for a C
   function: the text of a definition names a body by it. */
static int hash_code(lua_State *L) {
  def_walk w;
  XXH128_hash_t h;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (lua_iscfunction(L, 1)) {
    lua_pushnil(L);
    return 1;
  }
  lua_settop(L, 1);
  memset(&w, 0, sizeof w);
  w.L = L;
  if (!dump_code(L, &w)) {
    free(w.buf);
    return luaL_error(L, "weft: out of memory");
  }
  h = XXH3_128bits(w.buf, w.len);
  free(w.buf);
  push_hex(L, h);
  return 1;
}

/* defhash(spec, names, fn) -> hex: see above; `names` the key fields, sorted. */
static int hash_defhash(lua_State *L) {
  def_walk w;
  int status;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (!lua_isnoneornil(L, 3))
    luaL_checktype(L, 3, LUA_TFUNCTION);
  lua_settop(L, 3);
  memset(&w, 0, sizeof w);
  lua_pushcfunction(L, walk_definition);   /* the buffer is freed on errors too */
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_pushlightuserdata(L, &w);
  status = lua_pcall(L, 4, 1, 0);
  free(w.buf);
  if (status != LUA_OK)
    return lua_error(L);
  return 1;
}

/* }======== */

int weft__open_hash(lua_State *L, weft_runtime *rt) {
  static const luaL_Reg funcs[] = {
    {"file", hash_file}, {"string", hash_string}, {"stat", hash_stat},
    {"now_ns", hash_now_ns}, {"verify", hash_verify}, {"stat_cache", hash_stat_cache},
    {"defhash", hash_defhash}, {"code", hash_code}, {NULL, NULL}
  };
  static const luaL_Reg cache_metas[] = {{"__gc", stat_cache_gc}, {NULL, NULL}};
  weft__class(L, rt, STAT_CACHE_MT, NULL, NULL, cache_metas);
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  lua_pushstring(L, lua_ident);   /* the Lua release bytecode is valid for */
  lua_setfield(L, -2, "lua_ident");
  lua_setfield(L, -2, "_hash");
  return 0;
}
