/*
** hash.c: content identity for incremental pipelines. Owns `weft._hash`:
** 128-bit XXH3 digests of files and strings (hex), one stat that returns what
** the up-to-date cache keys on (kind, size, mtime in ns, inode), and the wall
** clock in ns the racy-timestamp rule compares mtimes with, and `verify`, the
** loop that tells an up-to-date task by stat alone on a no-op run.
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

/* Is the file as recorded: the same stat, hashed more than racy_ns after
   its mtime (a write in the same clock tick would not change the stat), or
   still missing? Then its content is the recorded one without reading it. */
static int still_recorded(const recorded *r, long long racy_ns) {
  struct stat sb;
  long long mtime;
  if (stat(r->path, &sb) != 0)
    return r->missing && (errno == ENOENT || errno == ENOTDIR);
  if (r->missing || S_ISDIR(sb.st_mode))
    return 0;
  mtime = (long long)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
  return (long long)sb.st_size == r->size && mtime == r->mtime
         && (long long)sb.st_ino == r->ino && r->checked - mtime > racy_ns;
}

/* verify(text, racy_ns) -> true | false, line: is every file of `text` (lines
   as above) still as recorded? `line` is the first that is not, or that does
   not parse. Reads no file content: one stat per line. */
static int hash_verify(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  long long racy_ns = (long long)luaL_checkinteger(L, 2);
  const char *p = text, *end = text + len;
  recorded r;
  lua_Integer line = 0;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *stop = nl ? nl : end;
    line++;
    if (!parse_recorded(p, stop, &r) || !still_recorded(&r, racy_ns)) {
      lua_pushboolean(L, 0);
      lua_pushinteger(L, line);
      return 2;
    }
    p = nl ? nl + 1 : end;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* }======== */

int weft__open_hash(lua_State *L, weft_runtime *rt) {
  static const luaL_Reg funcs[] = {
    {"file", hash_file}, {"string", hash_string}, {"stat", hash_stat},
    {"now_ns", hash_now_ns}, {"verify", hash_verify}, {NULL, NULL}
  };
  (void)rt;
  luaL_newlib(L, funcs);
  lua_setfield(L, -2, "_hash");
  return 0;
}
