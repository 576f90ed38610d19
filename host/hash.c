/*
** hash.c: content identity for incremental pipelines. Owns `weft._hash`:
** 128-bit XXH3 digests of files and strings (hex), one stat that returns what
** the up-to-date cache keys on (kind, size, mtime in ns, inode), and the wall
** clock in ns the racy-timestamp rule compares mtimes with. stdlib/weft/
** incremental.lua keeps the cache; weft.fs.hash is `file` below.
**
** The calls block the calling thread: a file is read in 64 KiB pieces with
** plain read(2), which for the source files of a build is cheaper than a trip
** through the thread pool.
*/
#include <errno.h>
#include <fcntl.h>
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

int weft__open_hash(lua_State *L, weft_runtime *rt) {
  static const luaL_Reg funcs[] = {
    {"file", hash_file}, {"string", hash_string}, {"stat", hash_stat},
    {"now_ns", hash_now_ns}, {NULL, NULL}
  };
  (void)rt;
  luaL_newlib(L, funcs);
  lua_setfield(L, -2, "_hash");
  return 0;
}
