/*
** statedb.c: the smallest SQLite binding the incremental pipeline needs, and
** the run lock. Owns `weft._statedb`:
**   open(path) -> db | fail, message     (WAL, synchronous=NORMAL, busy wait)
**   db:exec(sql) -> true | fail, message  (several statements, no results)
**   db:prepare(sql) -> stmt | fail, message
**   stmt:run(...) -> changes | fail, message       (binds ..., steps to the end)
**   stmt:rows(...) -> { {col, ...}, ... } | fail, message
**   stmt:first(...) -> true, col, ... | false (no row) | fail, message
**   db:close()
**   lock(path) -> lk | fail, message   (creates the file; holds nothing yet)
**   lk:try() -> true when this process now holds the exclusive flock
**   lk:release()
** Errors come back as values, not raised: a damaged state file must become a
** warning and a full run (stdlib/weft/incremental.lua decides). Misuse from
** Lua (wrong argument types, a closed db) raises as Lua's own libraries do.
** WAL with synchronous=NORMAL survives kill -9 of the process: a committed
** transaction is in the WAL file before COMMIT returns.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <sqlite3.h>

#include "internal.h"

#define DB_MT "weft.statedb"
#define STMT_MT "weft.statedb.stmt"
#define LOCK_MT "weft.statedb.lock"

typedef struct { sqlite3 *db; } db_box;
typedef struct { sqlite3_stmt *st; } stmt_box;
typedef struct { int fd; } lock_box;

static int fail_msg(lua_State *L, const char *msg) {
  luaL_pushfail(L);
  lua_pushstring(L, msg);
  return 2;
}

/* Connections and statements not yet closed or finalized, in every state
   of the process: a connection closed while a statement lives stays open
   (a zombie) until that statement is collected. */
static atomic_int open_handles;

int weft__statedb_open_handles(void) { return atomic_load(&open_handles); }

static sqlite3 *check_db(lua_State *L) {
  db_box *b = (db_box *)luaL_checkudata(L, 1, DB_MT);
  luaL_argcheck(L, b->db != NULL, 1, "database is closed");
  return b->db;
}

static int db_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  db_box *b = (db_box *)lua_newuserdatauv(L, sizeof *b, 0);
  int rc;
  b->db = NULL;
  luaL_setmetatable(L, DB_MT);
  /* a connection belongs to one Lua state, so to one thread at a time:
     no mutex around each of its calls (NOMUTEX) */
  rc = sqlite3_open_v2(path, &b->db,
                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    lua_pushstring(L, b->db ? sqlite3_errmsg(b->db) : sqlite3_errstr(rc));
    sqlite3_close_v2(b->db);
    b->db = NULL;
    luaL_pushfail(L);
    lua_insert(L, -2);
    return 2;
  }
  sqlite3_busy_timeout(b->db, 10000);
  {
    int persist = 1;
    sqlite3_file_control(b->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
  }
  atomic_fetch_add(&open_handles, 1);
  return 1;
}

static int db_exec(lua_State *L) {
  sqlite3 *db = check_db(L);
  const char *sql = luaL_checkstring(L, 2);
  char *err = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
    lua_pushstring(L, err ? err : sqlite3_errmsg(db));
    sqlite3_free(err);
    luaL_pushfail(L);
    lua_insert(L, -2);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int db_prepare(lua_State *L) {
  sqlite3 *db = check_db(L);
  const char *sql = luaL_checkstring(L, 2);
  stmt_box *s = (stmt_box *)lua_newuserdatauv(L, sizeof *s, 1);
  s->st = NULL;
  luaL_setmetatable(L, STMT_MT);
  if (sqlite3_prepare_v2(db, sql, -1, &s->st, NULL) != SQLITE_OK)
    return fail_msg(L, sqlite3_errmsg(db));
  if (s->st != NULL)
    atomic_fetch_add(&open_handles, 1);
  lua_pushvalue(L, 1);   /* the statement keeps its database alive */
  lua_setiuservalue(L, -2, 1);
  return 1;
}

static int db_close(lua_State *L) {
  db_box *b = (db_box *)luaL_checkudata(L, 1, DB_MT);
  if (b->db != NULL) {
    sqlite3_close_v2(b->db);   /* a zombie until its statements are finalized */
    b->db = NULL;
    atomic_fetch_sub(&open_handles, 1);
  }
  return 0;
}

static sqlite3_stmt *check_stmt(lua_State *L) {
  stmt_box *s = (stmt_box *)luaL_checkudata(L, 1, STMT_MT);
  luaL_argcheck(L, s->st != NULL, 1, "statement is finalized");
  return s->st;
}

/* Binds arguments 2.. of the call; raises on a value SQLite cannot hold. */
static void bind_args(lua_State *L, sqlite3_stmt *st) {
  int i, n = lua_gettop(L);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  for (i = 2; i <= n; i++) {
    int at = i - 1;
    switch (lua_type(L, i)) {
      case LUA_TNIL: sqlite3_bind_null(st, at); break;
      case LUA_TBOOLEAN: sqlite3_bind_int(st, at, lua_toboolean(L, i)); break;
      case LUA_TNUMBER:
        if (lua_isinteger(L, i))
          sqlite3_bind_int64(st, at, (sqlite3_int64)lua_tointeger(L, i));
        else
          sqlite3_bind_double(st, at, lua_tonumber(L, i));
        break;
      case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, i, &len);
        sqlite3_bind_text(st, at, s, (int)len, SQLITE_TRANSIENT);
        break;
      }
      default:
        luaL_typeerror(L, i, "nil, boolean, number or string");
    }
  }
}

static void push_column(lua_State *L, sqlite3_stmt *st, int c) {
  switch (sqlite3_column_type(st, c)) {
    case SQLITE_INTEGER: lua_pushinteger(L, (lua_Integer)sqlite3_column_int64(st, c)); break;
    case SQLITE_FLOAT: lua_pushnumber(L, sqlite3_column_double(st, c)); break;
    case SQLITE_NULL: lua_pushnil(L); break;
    default:
      lua_pushlstring(L, (const char *)sqlite3_column_text(st, c),
                      (size_t)sqlite3_column_bytes(st, c));
  }
}

static int step_error(lua_State *L, sqlite3_stmt *st) {
  const char *msg = sqlite3_errmsg(sqlite3_db_handle(st));
  luaL_pushfail(L);
  lua_pushstring(L, msg);
  sqlite3_reset(st);
  return 2;
}

static int stmt_run(lua_State *L) {
  sqlite3_stmt *st = check_stmt(L);
  int rc;
  bind_args(L, st);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    ;
  if (rc != SQLITE_DONE)
    return step_error(L, st);
  sqlite3_reset(st);
  lua_pushinteger(L, sqlite3_changes(sqlite3_db_handle(st)));
  return 1;
}

static int stmt_rows(lua_State *L) {
  sqlite3_stmt *st = check_stmt(L);
  int rc, n = 0, c, ncol;
  bind_args(L, st);
  lua_newtable(L);
  ncol = sqlite3_column_count(st);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    lua_createtable(L, ncol, 0);
    for (c = 0; c < ncol; c++) {
      push_column(L, st, c);
      lua_rawseti(L, -2, c + 1);
    }
    lua_rawseti(L, -2, ++n);
  }
  if (rc != SQLITE_DONE)
    return step_error(L, st);
  sqlite3_reset(st);
  return 1;
}

/* The first row's columns as values, without a table per row: a no-op run
   looks up each task's row by key. */
static int stmt_first(lua_State *L) {
  sqlite3_stmt *st = check_stmt(L);
  int rc, c, ncol;
  bind_args(L, st);
  rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) {
    sqlite3_reset(st);
    lua_pushboolean(L, 0);
    return 1;
  }
  if (rc != SQLITE_ROW)
    return step_error(L, st);
  ncol = sqlite3_column_count(st);
  luaL_checkstack(L, ncol + 1, "too many columns");
  lua_pushboolean(L, 1);
  for (c = 0; c < ncol; c++)
    push_column(L, st, c);
  sqlite3_reset(st);
  return ncol + 1;
}

static int stmt_gc(lua_State *L) {
  stmt_box *s = (stmt_box *)luaL_checkudata(L, 1, STMT_MT);
  if (s->st != NULL) {
    sqlite3_finalize(s->st);
    s->st = NULL;
    atomic_fetch_sub(&open_handles, 1);
  }
  return 0;
}

/* {======== the run lock: an flock on a file in .weft/ */

static int lock_new(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lock_box *b = (lock_box *)lua_newuserdatauv(L, sizeof *b, 0);
  b->fd = -1;
  luaL_setmetatable(L, LOCK_MT);
  b->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (b->fd < 0) {
    luaL_pushfail(L);
    lua_pushfstring(L, "%s: %s", path, strerror(errno));
    return 2;
  }
  return 1;
}

static int lock_try(lua_State *L) {
  lock_box *b = (lock_box *)luaL_checkudata(L, 1, LOCK_MT);
  luaL_argcheck(L, b->fd >= 0, 1, "lock is released");
  lua_pushboolean(L, flock(b->fd, LOCK_EX | LOCK_NB) == 0);
  return 1;
}

static int lock_release(lua_State *L) {
  lock_box *b = (lock_box *)luaL_checkudata(L, 1, LOCK_MT);
  if (b->fd >= 0) {
    close(b->fd);   /* drops the flock */
    b->fd = -1;
  }
  return 0;
}

/* }======== */

static void new_class(lua_State *L, const char *name, const luaL_Reg *methods,
                      lua_CFunction gc) {
  luaL_newmetatable(L, name);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
}

int weft__open_statedb(lua_State *L, weft_runtime *rt) {
  static const luaL_Reg db_methods[] = {
    {"exec", db_exec}, {"prepare", db_prepare}, {"close", db_close}, {NULL, NULL}
  };
  static const luaL_Reg stmt_methods[] = {
    {"run", stmt_run}, {"rows", stmt_rows}, {"first", stmt_first}, {"finalize", stmt_gc},
    {NULL, NULL}
  };
  static const luaL_Reg lock_methods[] = {
    {"try", lock_try}, {"release", lock_release}, {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {{"open", db_open}, {"lock", lock_new}, {NULL, NULL}};
  (void)rt;
  new_class(L, DB_MT, db_methods, db_close);
  new_class(L, STMT_MT, stmt_methods, stmt_gc);
  new_class(L, LOCK_MT, lock_methods, lock_release);
  luaL_newlib(L, funcs);
  lua_setfield(L, -2, "_statedb");
  return 0;
}
