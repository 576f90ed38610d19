/*
** io.h: what the I/O files (io.c, uvbind.c, json.c, stream.c, net.c,
** thread.c, http.c, process.c, exec.c) share: their open functions and the
** stream type that TCP, Unix sockets and process pipes have in common.
** Implements nothing itself; see each file's header.
*/
#ifndef WEFT_IO_H
#define WEFT_IO_H

#include "internal.h"

#define WEFT_STREAM_MT "weft.stream"
#define WEFT_SERVER_MT "weft.server"

/* A stream over a uv_stream_t (TCP, Unix socket or pipe). The struct, its
   handle and its requests are malloc'd together and freed in the close
   callback (libuv calls the callbacks of pending requests before it); the
   Lua userdata holds a pointer that close clears. */
typedef struct weft_stream {
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } u;
  uv_write_t wreq;
  uv_shutdown_t sreq;
  uv_connect_t creq;          /* net.c: connect */
  weft_runtime *rt;
  struct weft_stream **slot;  /* the userdata's pointer, NULL if none */
  char *buf;                  /* unread bytes are buf[off, len) */
  size_t off, len, cap;
  size_t scanned;             /* unread bytes already searched for "\n" */
  weft_task *reader;          /* a task waiting to read, or NULL */
  weft_task *writer;          /* a task waiting on a write, shutdown or connect */
  int mode;                   /* what the reader waits for */
  int rerr;                   /* read error (negative uv code), 0 */
  int status;                 /* status of the last write/shutdown/connect */
  unsigned char eof, reading, refs, pending, closed, inited;
  unsigned char close_when_written;   /* weft__stream_write_close */
  /* A C owner instead of a reading task (exec.c): told of every read, the
     buffer is never paused at its high mark, the owner consumes buf[off,len). */
  void (*on_read)(struct weft_stream *s, ssize_t nread);
  void *owner;
  char *wdata;                /* weft__stream_write_close's bytes, freed with s */
} weft_stream;

/* stream.c */
/* Allocates a stream whose handle the caller initialises (tcp or pipe) on
   weft_stream_handle(s); returns NULL when out of memory. */
weft_stream *weft__stream_alloc(weft_runtime *rt);
uv_stream_t *weft__stream_handle(weft_stream *s);
/* Frees a stream whose handle was never initialised. */
void weft__stream_free_unused(weft_stream *s);
/* Starts reading in the background (unref'd) and pushes its userdata. */
void weft__stream_push(lua_State *L, weft_stream *s, const char *peer);
/* Closes the stream (no-op when closed); waiting tasks get an error. */
void weft__stream_close(weft_stream *s);
/* For a C owner: reads in the background, calling on_read after each read
   (nread > 0: new bytes at buf[len - nread, len); else EOF or rerr set). */
int weft__stream_watch(weft_stream *s, void (*on_read)(weft_stream *s, ssize_t nread),
                       void *owner);
/* For a C owner: writes data (malloc'd, taken over: freed with the stream)
   with back-pressure, then closes the stream, also when the write fails. */
void weft__stream_write_close(weft_stream *s, char *data, size_t len);
/* The stream of the userdata at idx, raising when closed. */
weft_stream *weft__checkstream(lua_State *L, int idx);
/* Pushes an IOError for a libuv error code, with a 'code' and optional path. */
int weft__push_uv_error(lua_State *L, int rc, const char *what, const char *path);
int weft__raise_uv_error(lua_State *L, int rc, const char *what, const char *path);

/* the open functions io.c calls, module table on top */
int weft__open_uv(lua_State *L, weft_runtime *rt);
int weft__open_json(lua_State *L, weft_runtime *rt);
int weft__open_stream(lua_State *L, weft_runtime *rt);
int weft__open_net(lua_State *L, weft_runtime *rt);
int weft__open_thread(lua_State *L, weft_runtime *rt);
int weft__open_http(lua_State *L, weft_runtime *rt);
void weft__uv_close_all(lua_State *L);   /* before the runtime closes */

/* thread.c: sizes libuv's thread pool once, before its first use. */
void weft__size_pool(void);

#endif
