/*
** sys.c: weft._sys, the few system calls `weft run` makes before and
** between its tasks (is stderr a terminal, how many CPUs, the working
** directory, listing a directory for a glob, the state directory). They
** are libuv's own functions, called synchronously, with luv's results and
** error strings, so that a run that starts nothing never opens luv: weft.uv
** is opened on first use (io.c), and registering luv's 300 functions was
** a tenth of a no-op `weft run`'s CPU (issue 13). Two more are string work
** that every task of a Weftfile passes through, done here in one call
** instead of several Lua library calls each: the normal form of a path
** (weft.incremental) and the "file:line" of a declaration (weft.pipeline).
*/
#include <string.h>

#include "internal.h"

/* nil, "CODE: message[: path]", "CODE": what luv returns for a failure */
static int fail(lua_State *L, int r, const char *path) {
  lua_pushnil(L);
  if (path != NULL)
    lua_pushfstring(L, "%s: %s: %s", uv_err_name(r), uv_strerror(r), path);
  else
    lua_pushfstring(L, "%s: %s", uv_err_name(r), uv_strerror(r));
  lua_pushstring(L, uv_err_name(r));
  return 3;
}

/* isatty(fd) -> is fd a terminal (uv.guess_handle(fd) == "tty") */
static int sys_isatty(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  luaL_argcheck(L, fd >= 0, 1, "a file descriptor must not be negative");
  lua_pushboolean(L, uv_guess_handle(fd) == UV_TTY);
  return 1;
}

/* cpu_count() -> uv.available_parallelism() */
static int sys_cpu_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)uv_available_parallelism());
  return 1;
}

/* cwd() -> path | nil, message, code */
static int sys_cwd(lua_State *L) {
  char buf[4096];
  size_t n = sizeof buf;
  int r = uv_cwd(buf, &n);
  if (r < 0)
    return fail(L, r, NULL);
  lua_pushlstring(L, buf, n);
  return 1;
}

/* chdir(path) -> true | nil, message, code */
static int sys_chdir(lua_State *L) {
  int r = uv_chdir(luaL_checkstring(L, 1));
  if (r < 0)
    return fail(L, r, NULL);
  lua_pushboolean(L, 1);
  return 1;
}

/* mkdir(path, mode) -> true | nil, message, code (EEXIST included) */
static int sys_mkdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int mode = (int)luaL_checkinteger(L, 2);
  uv_fs_t req;
  int r = uv_fs_mkdir(NULL, &req, path, mode, NULL);
  uv_fs_req_cleanup(&req);
  if (r < 0)
    return fail(L, r, path);
  lua_pushboolean(L, 1);
  return 1;
}

/* uv_dirent_type_t -> luv's name; NULL when the file system did not say */
static const char *dirent_kind(uv_dirent_type_t t) {
  switch (t) {
  case UV_DIRENT_FILE: return "file";
  case UV_DIRENT_DIR: return "directory";
  case UV_DIRENT_LINK: return "link";
  case UV_DIRENT_FIFO: return "fifo";
  case UV_DIRENT_SOCKET: return "socket";
  case UV_DIRENT_CHAR: return "char";
  case UV_DIRENT_BLOCK: return "block";
  default: return NULL;
  }
}

/* scandir(path) -> names, kinds | nil, message, code. kinds[i] is luv's
   type name of names[i], false when the file system did not say. */
static int sys_scandir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  uv_fs_t req;
  uv_dirent_t ent;
  lua_Integer i = 0;
  int r = uv_fs_scandir(NULL, &req, path, 0, NULL);
  if (r < 0) {
    uv_fs_req_cleanup(&req);
    return fail(L, r, path);
  }
  lua_createtable(L, r, 0);
  lua_createtable(L, r, 0);
  while (uv_fs_scandir_next(&req, &ent) != UV_EOF) {
    const char *kind = dirent_kind(ent.type);
    i++;
    lua_pushstring(L, ent.name);
    lua_rawseti(L, -3, i);
    if (kind != NULL)
      lua_pushstring(L, kind);
    else
      lua_pushboolean(L, 0);
    lua_rawseti(L, -2, i);
  }
  uv_fs_req_cleanup(&req);
  return 2;
}

/* lexists(path) -> does path exist, a dangling symlink included */
static int sys_lexists(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  uv_fs_t req;
  int r = uv_fs_lstat(NULL, &req, path, NULL);
  uv_fs_req_cleanup(&req);
  lua_pushboolean(L, r == 0);
  return 1;
}

/* path(p) -> p's normal form, does p hold a wildcard (* ? or [).
   The normal form: runs of '/' made one, one leading "./" dropped, then
   every "." segment after a '/' that is not the last segment ("a/./b" ->
   "a/b", "a/." stays): what stdlib/weft/incremental.lua's gsubs made. */
static int sys_path(lua_State *L) {
  size_t len, i, n = 0;
  const char *p = luaL_checklstring(L, 1, &len);
  int wild = memchr(p, '*', len) || memchr(p, '?', len) || memchr(p, '[', len);
  luaL_Buffer b;
  char *out;
  if (!(memmem(p, len, "//", 2) || (len >= 2 && p[0] == '.' && p[1] == '/') ||
        memmem(p, len, "/./", 3))) {
    lua_settop(L, 1);   /* already normal: the same string */
    lua_pushboolean(L, wild);
    return 2;
  }
  out = luaL_buffinitsize(L, &b, len);
  for (i = 0; i < len; i++)   /* runs of '/' made one */
    if (p[i] != '/' || n == 0 || out[n - 1] != '/')
      out[n++] = p[i];
  i = (n >= 2 && out[0] == '.' && out[1] == '/') ? 2 : 0;
  len = n;
  n = 0;
  for (; i < len; i++) {   /* "/." followed by '/' dropped */
    if (out[i] == '/' && i + 2 < len && out[i + 1] == '.' && out[i + 2] == '/') {
      out[n++] = '/';
      i += 2;
      while (i + 2 < len && out[i + 1] == '.' && out[i + 2] == '/')
        i += 2;
      continue;
    }
    out[n++] = out[i];
  }
  luaL_pushresultsize(&b, n);
  lua_pushboolean(L, wild);
  return 2;
}

/* where(level) -> "short_src:line" of the first Lua function from stack
   level `level` up (level 0 is this function; C functions, as pcall, are
   passed over), or "?". */
static int sys_where(lua_State *L) {
  int level = (int)luaL_checkinteger(L, 1);
  lua_Debug ar;
  luaL_argcheck(L, level >= 0, 1, "a stack level must not be negative");
  for (; lua_getstack(L, level, &ar); level++) {
    lua_getinfo(L, "Sl", &ar);
    if (ar.what[0] != 'C') {
      lua_pushfstring(L, "%s:%d", ar.short_src, ar.currentline);
      return 1;
    }
  }
  lua_pushliteral(L, "?");
  return 1;
}

int weft__open_sys(lua_State *L, weft_runtime *rt) {
  static const luaL_Reg fns[] = {
    {"isatty", sys_isatty}, {"cpu_count", sys_cpu_count}, {"cwd", sys_cwd},
    {"chdir", sys_chdir}, {"mkdir", sys_mkdir}, {"scandir", sys_scandir},
    {"lexists", sys_lexists}, {"path", sys_path}, {"where", sys_where}, {NULL, NULL}
  };
  (void)rt;
  luaL_newlib(L, fns);
  lua_setfield(L, -2, "_sys");
  return 0;
}
