/*
** spawn.c: the spawn path (spawn.h) every weft process goes through:
** posix_spawn, argv and env, process groups, the reaper and SIGCHLD.
**
** Every child runs in its own session and process group, so weft can signal
** the whole tree a command started. Children are started with posix_spawn,
** not uv_spawn: glibc's is a vfork (CLONE_VM | CLONE_VFORK), where libuv
** 1.44 forks and copies the page tables of every mapping of this process
** (about 250: libcurl and friends), which cost ~0.25 ms per child. The
** child gets what uv_spawn's got: setsid, stdio (socketpairs, /dev/null or
** inherited fds), cwd, env (PATH searched in it, scripts without #! run by
** /bin/sh as execvp does), default signal handling and an empty mask.
** Children are reaped here: a SIGCHLD watcher per runtime, referenced while
** any child is unreaped, waitpid()s the runtime's own pids.
** Termination is TERM to the group, then KILL after a grace period on the
** runtime clock; a waiting task resumes only after the leader was reaped and
** its pipes reached EOF (or the group was KILLed). Live groups are kept
** twice: on a per-runtime list (closed with the Lua state: TERM, grace,
** KILL, reap) and in a static table of pgids written with sig_atomic_t
** stores only, that weft__process_kill_all_now() reads from a signal handler.
**
** User docs: docs/io.md "Processes"; host/exec.c (weft.exec, weft.sh) and
** host/process.c (weft.process) build on it.
*/
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>   /* environ (_GNU_SOURCE) */

#include "spawn.h"


/* {======== the signal-safe table of live process groups */

#define PGID_SLOTS 4096

static volatile sig_atomic_t live_pgids[PGID_SLOTS];
static volatile sig_atomic_t pgid_high;   /* slots in use are below this */

static int slot_take(int pid) {
  int i;
  for (i = 0; i < PGID_SLOTS; i++) {
    if (live_pgids[i] == 0) {
      live_pgids[i] = pid;
      weft__guard_watch(pid);
      if (i >= pgid_high)
        pgid_high = i + 1;
      return i;
    }
  }
  return -1;   /* table full: the group is still on the runtime's list */
}

static void slot_free(int slot) {
  if (slot >= 0) {
    weft__guard_forget(live_pgids[slot]);
    live_pgids[slot] = 0;
  }
}

void weft__process_kill_all_now(void) {
  int i, n = pgid_high;
  for (i = 0; i < n; i++) {
    int pid = live_pgids[i];
    if (pid > 0)
      kill(-pid, SIGKILL);
  }
}

/* }======== */

/* {======== the per-runtime state: live list and reaper */

/* Lives in malloc'd memory: the SIGCHLD handle's close callback frees it,
   after lua_close. The Lua registry holds a box pointing to it. */
typedef struct weft_proc_set {
  weft_runtime *rt;
  weft_queue live;        /* weft_procs not yet closed */
  uv_signal_t chld;       /* SIGCHLD: reaps the pids of this runtime */
  int chld_open;          /* chld was initialised and started */
  int children;           /* spawned, not reaped: chld is referenced if > 0 */
  int *orphans;           /* closed before their reaping: reaped silently */
  int norphans, orphans_cap;
} proc_set;

static char set_key;

static proc_set *get_set(lua_State *L) {
  proc_set *s;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &set_key);
  s = *(proc_set **)lua_touserdata(L, -1);
  lua_pop(L, 1);
  return s;
}

static void child_gone(proc_set *s) {
  if (--s->children == 0)
    uv_unref((uv_handle_t *)&s->chld);
}

/* Records what waitpid reported, as libuv's exit callback would. */
static void proc_reaped(weft_proc *p, int st) {
  p->exited = 1;
  p->exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : 0;
  p->term_signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
  child_gone(p->set);
}

/* waitpid(pid, WNOHANG): the pid when reaped, 0 while it runs, -1 when it is
   not (or no longer) this process's child. */
static int try_reap(int pid, int *st) {
  int r;
  do
    r = waitpid(pid, st, WNOHANG);
  while (r < 0 && errno == EINTR);
  return r;
}

static void reap_orphans(proc_set *s) {
  int i, st;
  for (i = 0; i < s->norphans; i++)
    if (try_reap(s->orphans[i], &st) != 0)
      s->orphans[i--] = s->orphans[--s->norphans];
}

/* A closed proc whose leader still runs: reaped later, without a word. */
static void add_orphan(proc_set *s, int pid) {
  if (s->norphans == s->orphans_cap) {
    int cap = s->orphans_cap ? s->orphans_cap * 2 : 8;
    int *grown = (int *)realloc(s->orphans, (size_t)cap * sizeof *grown);
    if (grown == NULL)
      return;   /* it stays a zombie, as with a closed uv_process_t */
    s->orphans = grown;
    s->orphans_cap = cap;
  }
  s->orphans[s->norphans++] = pid;
}

/* Some child exited: reap every one of ours that did. on_exit may close its
   own proc (leaving the list), never another. */
static void on_sigchld(uv_signal_t *h, int signum) {
  proc_set *s = (proc_set *)h->data;
  weft_queue *q, *next;
  (void)signum;
  for (q = s->live.next; q != &s->live; q = next) {
    weft_proc *p = weft_queue_data(q, weft_proc, live_node);
    int st;
    next = q->next;
    if (p->exited || try_reap(p->pid, &st) <= 0)
      continue;   /* (-1, ECHILD: someone else reaped it; libuv waits on) */
    proc_reaped(p, st);
    if (p->on_exit != NULL)
      p->on_exit(p);
  }
  if (s->norphans > 0)
    reap_orphans(s);
}

/* Starts the SIGCHLD watcher before the first spawn (unreferenced). */
static int chld_start(proc_set *s) {
  int rc;
  if (s->chld_open)
    return 0;
  rc = uv_signal_init(s->rt->loop, &s->chld);
  if (rc != 0)
    return rc;
  s->chld.data = s;
  s->rt->nhandles_open++;
  s->chld_open = 1;
  uv_unref((uv_handle_t *)&s->chld);
  return uv_signal_start(&s->chld, on_sigchld, SIGCHLD);
}

static void chld_closed(uv_handle_t *h) {
  proc_set *s = (proc_set *)h->data;
  weft_runtime *rt = s->rt;
  free(s);
  weft__handle_closed(rt);
}

static double clock_s(void) {
  return (double)uv_hrtime() * 1e-9;
}

static void nap(void) {
  struct timespec ts = {0, 10 * 1000 * 1000};
  nanosleep(&ts, NULL);
}

/* The runtime is closing: terminate and reap every live group now, without
   the loop (TERM, up to the longest grace period, KILL), then let owners
   close their handles. */
static void reap_all_now(proc_set *s) {
  weft_queue *q;
  double grace = 0, until;
  int left = 0;
  for (q = s->live.next; q != &s->live; q = q->next) {
    weft_proc *p = weft_queue_data(q, weft_proc, live_node);
    if (!p->exited) {
      kill(-p->pid, SIGTERM);
      if (p->grace_s > grace)
        grace = p->grace_s;
      left++;
    }
  }
  until = clock_s() + grace;
  while (left > 0 && clock_s() < until) {
    nap();
    for (q = s->live.next; q != &s->live; q = q->next) {
      weft_proc *p = weft_queue_data(q, weft_proc, live_node);
      int st;
      if (!p->exited && try_reap(p->pid, &st) == p->pid) {
        proc_reaped(p, st);
        left--;
      }
    }
  }
  for (q = s->live.next; q != &s->live; q = q->next) {
    weft_proc *p = weft_queue_data(q, weft_proc, live_node);
    int st = 0;
    kill(-p->pid, SIGKILL);   /* the leader and whatever stayed in its group */
    if (!p->exited) {
      while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR)
        ;
      proc_reaped(p, st);
    }
  }
  while (!weft_queue_empty(&s->live)) {
    weft_proc *p = weft_queue_data(weft_queue_head(&s->live), weft_proc, live_node);
    if (p->on_abandon != NULL)
      p->on_abandon(p);
    if (!p->closing)
      weft__proc_close(p);
  }
}

static int set_gc(lua_State *L) {
  proc_set *s = *(proc_set **)lua_touserdata(L, 1);
  if (s == NULL)
    return 0;
  reap_all_now(s);
  reap_orphans(s);
  free(s->orphans);
  if (s->chld_open)
    uv_close((uv_handle_t *)&s->chld, chld_closed);
  else
    free(s);
  return 0;
}

/* }======== */

/* {======== posix_spawn */

#define MAX_STDIO 16

/* What the child gets and what the parent keeps, per stdio slot. */
typedef struct spawn_io {
  int n;
  int child[MAX_STDIO];    /* fd to dup2 onto the slot, or -1 */
  int parent[MAX_STDIO];   /* our end of a created pipe, or -1 */
  int owned[MAX_STDIO];    /* child[i] is ours to close after the spawn */
} spawn_io;

static void io_close(spawn_io *io, int parents_too) {
  int i;
  for (i = 0; i < io->n; i++) {
    if (io->owned[i] && io->child[i] >= 0)
      close(io->child[i]);
    if (parents_too && io->parent[i] >= 0)
      close(io->parent[i]);
  }
}

/* A pipe for slot i: a close-on-exec socketpair with 64 KB buffers, as
   uv_spawn makes it (a stream the parent can shut down; the child sees the
   same kind of fd as before). */
static int io_pipe(spawn_io *io, int i) {
  int fds[2], size = 64 * 1024, k;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    return -errno;
  for (k = 0; k < 2; k++) {
    setsockopt(fds[k], SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    setsockopt(fds[k], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  }
  io->child[i] = fds[1];
  io->parent[i] = fds[0];
  io->owned[i] = 1;
  return 0;
}

/* An inherited fd 0-2 becomes blocking, as uv_spawn's child does it. */
static void io_blocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0 && (fl & O_NONBLOCK))
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

int weft__inherit_fd[3] = {-1, -1, -1};

/* Fills io from o->stdio: creates pipes, finds inherited fds. */
static int io_prepare(spawn_io *io, const uv_process_options_t *o) {
  int i, rc = 0;
  io->n = o->stdio_count;
  if (io->n > MAX_STDIO)
    return UV_EINVAL;
  for (i = 0; i < io->n; i++) {
    io->child[i] = io->parent[i] = -1;
    io->owned[i] = 0;
  }
  for (i = 0; i < io->n && rc == 0; i++) {
    const uv_stdio_container_t *c = &o->stdio[i];
    int mask = c->flags & (UV_IGNORE | UV_CREATE_PIPE | UV_INHERIT_FD | UV_INHERIT_STREAM);
    if (mask == UV_CREATE_PIPE) {
      if (c->data.stream == NULL || c->data.stream->type != UV_NAMED_PIPE)
        rc = UV_EINVAL;
      else
        rc = io_pipe(io, i);
    } else if (mask == UV_INHERIT_FD || mask == UV_INHERIT_STREAM) {
      uv_os_fd_t fd = c->data.fd;
      if (mask == UV_INHERIT_STREAM && uv_fileno((uv_handle_t *)c->data.stream, &fd) != 0)
        fd = -1;
      if (fd >= 1 && fd <= 2 && weft__inherit_fd[fd] >= 0)
        fd = weft__inherit_fd[fd];   /* the REPL's relay (repl.c) */
      if (fd < 0)
        rc = UV_EINVAL;
      io->child[i] = fd;
      if (fd >= 0 && i <= 2)
        io_blocking(fd);
    } else if (mask != UV_IGNORE) {
      rc = UV_EINVAL;
    }
  }
  /* A source below its slot could be overwritten by an earlier dup2 (say
     stdout and stderr swapped): move it out of the way first. */
  for (i = 0; i < io->n && rc == 0; i++) {
    int fd = io->child[i];
    if (fd >= 0 && fd < i) {
      int high = fcntl(fd, F_DUPFD_CLOEXEC, io->n);
      if (high < 0)
        rc = -errno;
      else {
        if (io->owned[i])
          close(fd);
        io->child[i] = high;
        io->owned[i] = 1;
      }
    }
  }
  if (rc != 0)
    io_close(io, 1);
  return rc;
}

static int io_actions(posix_spawn_file_actions_t *fa, const spawn_io *io, const char *cwd) {
  int i, rc = 0;
  for (i = 0; i < io->n && rc == 0; i++) {
    if (io->child[i] >= 0)
      rc = posix_spawn_file_actions_adddup2(fa, io->child[i], i);   /* clears CLOEXEC */
    else if (i <= 2)   /* ignored: /dev/null, as uv_spawn does */
      rc = posix_spawn_file_actions_addopen(fa, i, "/dev/null", i == 0 ? O_RDONLY : O_RDWR, 0);
  }
  if (rc == 0 && cwd != NULL)
    rc = posix_spawn_file_actions_addchdir_np(fa, cwd);
  return rc;
}

/* Adds sig to set even where sigaddset refuses: glibc's posix_spawn child
   sets glibc's own signals (32, 33) to SIG_IGN, which exec keeps, unless
   they are in the sigdefault set; sigaddset rejects them. */
static void sigset_add_raw(sigset_t *set, int sig) {
#ifdef __GLIBC__
  unsigned long *w = (unsigned long *)(void *)set;
  size_t bits = 8 * sizeof *w;
  w[(size_t)(sig - 1) / bits] |= 1UL << ((size_t)(sig - 1) % bits);
#else
  sigaddset(set, sig);
#endif
}

/* The child's own session, default handling for signals 1-31 (and glibc's
   32, 33, as a forked child has them) and an empty mask: what uv_spawn's
   child does before its exec. */
static int spawn_attrs(posix_spawnattr_t *a, int detached) {
  sigset_t set;
  int sig;
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (detached)
    flags |= POSIX_SPAWN_SETSID;
  sigemptyset(&set);
  posix_spawnattr_setsigmask(a, &set);
  for (sig = 1; sig < 34; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      sigset_add_raw(&set, sig);
  posix_spawnattr_setsigdefault(a, &set);
  return posix_spawnattr_setflags(a, flags);
}

typedef struct spawn_req {
  pid_t pid;
  char **args, **env;
  posix_spawn_file_actions_t *fa;
  posix_spawnattr_t *attr;
} spawn_req;

/* A file that is executable but no binary runs through /bin/sh, as
   execvp does it (posix_spawn alone reports ENOEXEC). */
static int spawn_script(spawn_req *r, const char *path) {
  size_t n = 0, i;
  char **argv;
  int err;
  while (r->args[n] != NULL)
    n++;
  argv = (char **)malloc((n + 2) * sizeof *argv);
  if (argv == NULL)
    return ENOMEM;
  argv[0] = (char *)"/bin/sh";
  argv[1] = (char *)path;
  for (i = 1; i <= n; i++)
    argv[i + 1] = r->args[i];
  err = posix_spawn(&r->pid, "/bin/sh", r->fa, r->attr, argv, r->env);
  free(argv);
  return err;
}

/* ELF magic or a NUL byte in the first line marks a binary the kernel
   refused (as bash decides it): /bin/sh would only fail on it with a misleading 127. */
static int looks_binary(const char *path) {
  char head[256];
  ssize_t n;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  n = read(fd, head, sizeof head);
  close(fd);
  if (n <= 0)
    return 0;
  if (n >= 4 && memcmp(head, "\177ELF", 4) == 0)
    return 1;
  {
    const char *nl = (const char *)memchr(head, '\n', (size_t)n);
    size_t first = nl != NULL ? (size_t)(nl - head) : (size_t)n;
    return memchr(head, '\0', first) != NULL;
  }
}

static int spawn_path(spawn_req *r, const char *path) {
  int err = posix_spawn(&r->pid, path, r->fa, r->attr, r->args, r->env);
  if (err == ENOEXEC && !looks_binary(path))
    return spawn_script(r, path);
  return err;
}

/* execvp's search of 'dirs' for file, one spawn per candidate. */
static int spawn_search(spawn_req *r, const char *file, const char *dirs) {
  size_t flen = strlen(file);
  int seen_eacces = 0;
  const char *p = dirs, *z;
  for (;; p = z + 1) {
    char *buf;
    size_t dlen;
    int err;
    z = strchrnul(p, ':');
    dlen = (size_t)(z - p);
    buf = (char *)malloc(dlen + flen + 2);
    if (buf == NULL)
      return ENOMEM;
    memcpy(buf, p, dlen);
    buf[dlen] = '/';
    memcpy(buf + dlen + (dlen > 0), file, flen + 1);   /* "" is the current dir */
    err = spawn_path(r, buf);
    free(buf);
    if (err == EACCES)
      seen_eacces = 1;
    else if (err != ENOENT && err != ENOTDIR && err != ESTALE && err != ENODEV && err != ETIMEDOUT)
      return err;
    if (*z == '\0')
      return seen_eacces ? EACCES : ENOENT;
  }
}

static const char *env_path(char **env) {
  for (; *env != NULL; env++)
    if (strncmp(*env, "PATH=", 5) == 0)
      return *env + 5;
  return NULL;
}

/* Runs file as execvp would in a child whose environ is r->env: PATH is
   looked up in that environment. posix_spawnp searches the parent's PATH,
   which is the same one in the usual case. Returns 0 or an errno. */
static int spawn_file(spawn_req *r, const char *file, int own_env) {
  const char *dirs = getenv("PATH");
  if (strchr(file, '/') != NULL)
    return spawn_path(r, file);
  if (own_env) {
    const char *mine = env_path(r->env);
    if (mine == NULL ? dirs != NULL : dirs == NULL || strcmp(mine, dirs) != 0)
      return spawn_search(r, file, mine != NULL ? mine : "/bin:/usr/bin");
  }
  {
    int err = posix_spawnp(&r->pid, file, r->fa, r->attr, r->args, r->env);
    if (err != ENOEXEC)
      return err;
  }
  return spawn_search(r, file, dirs != NULL ? dirs : "/bin:/usr/bin");
}

/* Hands our end of every created pipe to its stream. */
static void io_open_streams(spawn_io *io, const uv_process_options_t *o) {
  int i;
  for (i = 0; i < io->n; i++) {
    if (io->parent[i] < 0)
      continue;
    if (uv_pipe_open((uv_pipe_t *)o->stdio[i].data.stream, io->parent[i]) != 0)
      close(io->parent[i]);   /* the child sees EOF or EPIPE */
    io->parent[i] = -1;
  }
}

/* Starts the child of o. Returns 0 (*pid set) or a negative UV_E* code. */
static int spawn_child(const uv_process_options_t *o, int *pid) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  spawn_io io;
  spawn_req r;
  int err;
  if (o->flags & (UV_PROCESS_SETUID | UV_PROCESS_SETGID))
    return UV_ENOTSUP;
  err = io_prepare(&io, o);
  if (err != 0)
    return err;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  err = io_actions(&fa, &io, o->cwd);
  if (err == 0)
    err = spawn_attrs(&attr, (o->flags & UV_PROCESS_DETACHED) != 0);
  if (err == 0) {
    r.args = o->args;
    r.env = o->env != NULL ? o->env : environ;
    r.fa = &fa;
    r.attr = &attr;
    err = spawn_file(&r, o->file, o->env != NULL);
  }
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  io_close(&io, err != 0);
  if (err != 0)
    return uv_translate_sys_error(err);
  io_open_streams(&io, o);
  *pid = (int)r.pid;
  return 0;
}

/* }======== */

/* {======== the spawn path */

static void proc_closed(uv_handle_t *h) {
  weft_proc *p = (weft_proc *)h->data;
  if (p->on_close != NULL)
    p->on_close(p);
}

int weft__proc_spawn(lua_State *L, weft_runtime *rt, weft_proc *p,
                     uv_process_options_t *o) {
  proc_set *s = get_set(L);
  int rc, pid = 0;
  p->rt = rt;
  p->set = s;
  p->slot = -1;
  p->grace.slot = WEFT_HEAP_NONE;
  weft_queue_init(&p->live_node);
  if (p->grace_s <= 0)
    p->grace_s = WEFT_PROC_GRACE;
  o->flags |= UV_PROCESS_DETACHED;
  uv_idle_init(rt->loop, &p->handle);
  p->handle.data = p;
  rc = chld_start(s);   /* before the child exists: its SIGCHLD is not lost */
  if (rc == 0)
    rc = spawn_child(o, &pid);
  if (rc != 0) {
    p->closing = 1;
    uv_close((uv_handle_t *)&p->handle, proc_closed);
    return rc;
  }
  p->pid = pid;
  if (s->children++ == 0)
    uv_ref((uv_handle_t *)&s->chld);
  p->slot = slot_take(p->pid);
  weft_queue_insert_tail(&s->live, &p->live_node);
  return 0;
}

int weft__proc_signal(weft_proc *p, int sig) {
  if (p->pid <= 0 || p->closing || (p->exited && !weft__proc_group_alive(p)))
    return -1;
  return kill(-p->pid, sig) == 0 ? 0 : -1;
}

int weft__proc_group_alive(weft_proc *p) {
  if (p->pid <= 0)
    return 0;
  return kill(-p->pid, 0) == 0 || errno == EPERM;
}

static void grace_fire(weft_deadline *d) {
  weft_proc *p = weft_queue_data(d, weft_proc, grace);
  if (p->exited && !weft__proc_group_alive(p))
    return;
  kill(-p->pid, SIGKILL);
  p->killed = 1;
  if (p->on_kill != NULL)
    p->on_kill(p);
}

void weft__proc_terminate(weft_proc *p) {
  if (p->terminating || p->closing || p->pid <= 0)
    return;
  p->terminating = 1;
  if (p->exited && !weft__proc_group_alive(p))
    return;
  kill(-p->pid, SIGTERM);
  p->grace.fire = grace_fire;
  weft__deadline_arm(p->rt, &p->grace, weft__now(p->rt) + p->grace_s);
}

void weft__proc_close(weft_proc *p) {
  if (p->closing)
    return;
  p->closing = 1;
  weft__deadline_disarm(p->rt, &p->grace);
  slot_free(p->slot);
  p->slot = -1;
  weft_queue_remove(&p->live_node);
  if (!p->exited && p->pid > 0) {   /* nobody waits for it any more */
    add_orphan(p->set, p->pid);
    child_gone(p->set);
  }
  uv_close((uv_handle_t *)&p->handle, proc_closed);
}

int weft__proc_code(const weft_proc *p) {
  return p->term_signal ? 128 + p->term_signal : (int)p->exit_status;
}

/* }======== */

/* {======== argv and env */

void weft__proc_free_strv(char **v) {
  size_t i;
  if (v == NULL)
    return;
  for (i = 0; v[i] != NULL; i++)
    free(v[i]);
  free(v);
}

static char **strv_new(lua_State *L, size_t n) {
  char **v = (char **)calloc(n + 1, sizeof *v);
  if (v == NULL)
    luaL_error(L, "weft: out of memory");
  return v;
}

/* Copies the string on top into v[i] and pops it; frees v and raises on
   failure. */
static void strv_set(lua_State *L, char **v, size_t i) {
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  v[i] = (char *)malloc(len + 1);
  if (v[i] == NULL) {
    weft__proc_free_strv(v);
    luaL_error(L, "weft: out of memory");
  }
  memcpy(v[i], s, len + 1);
  lua_pop(L, 1);
}

char **weft__proc_argv(lua_State *L, int idx) {
  lua_Integer n = luaL_len(L, idx), i;
  char **v;
  luaL_argcheck(L, n >= 1, idx, "argv must hold the program name");
  for (i = 1; i <= n; i++) {
    if (lua_geti(L, idx, i) != LUA_TSTRING && !lua_isnumber(L, -1))
      luaL_argerror(L, idx, lua_pushfstring(L, "argv[%I] is not a string", i));
    lua_pop(L, 1);
  }
  v = strv_new(L, (size_t)n);
  for (i = 1; i <= n; i++) {
    lua_geti(L, idx, i);
    lua_tostring(L, -1);
    strv_set(L, v, (size_t)i - 1);
  }
  return v;
}

/* Checks the env table at idx; returns how many entries it has. */
static size_t env_check(lua_State *L, int idx) {
  size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int vt = lua_type(L, -1);
    if (lua_type(L, -2) != LUA_TSTRING ||
        !(vt == LUA_TSTRING || vt == LUA_TNUMBER || (vt == LUA_TBOOLEAN && !lua_toboolean(L, -1))))
      luaL_error(L, "env: names must be strings and values strings, numbers or false");
    n++;
    lua_pop(L, 1);
  }
  return n;
}

char **weft__proc_env(lua_State *L, int idx) {
  size_t n = 0, extra, k = 0, i;
  char **v;
  if (idx == 0 || lua_isnoneornil(L, idx))
    return NULL;
  idx = lua_absindex(L, idx);
  if (!lua_istable(L, idx))
    luaL_error(L, "bad option 'env' (table expected, got %s)", luaL_typename(L, idx));
  extra = env_check(L, idx);
  while (environ[n] != NULL)
    n++;
  v = strv_new(L, n + extra);
  for (i = 0; i < n; i++) {      /* inherited entries the table does not name */
    const char *eq = strchr(environ[i], '=');
    if (eq == NULL)
      continue;
    lua_pushlstring(L, environ[i], (size_t)(eq - environ[i]));
    if (lua_rawget(L, idx) != LUA_TNIL) {
      lua_pop(L, 1);
      continue;
    }
    lua_pop(L, 1);
    lua_pushstring(L, environ[i]);
    strv_set(L, v, k++);
  }
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -1) == LUA_TBOOLEAN) {
      lua_pop(L, 1);
      continue;
    }
    lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
    strv_set(L, v, k++);
    lua_pop(L, 1);
  }
  return v;
}

/* The spawn's chdir runs in the child, where its failure looks like the
   program's: 0 when cwd is a directory we may enter, else the errno. */
static int cwd_error(const char *cwd) {
  struct stat st;
  if (cwd == NULL)
    return 0;
  if (stat(cwd, &st) != 0)
    return errno;
  if (!S_ISDIR(st.st_mode))
    return ENOTDIR;
  return access(cwd, X_OK) == 0 ? 0 : errno;
}

/* libuv 1.44 has no name for ENOEXEC, which a spawn can give. */
int weft__proc_opt_stdio(lua_State *L, int opts, const char *name,
                         const char *const modes[]) {
  int mode = 0, t = lua_getfield(L, opts, name);
  if (t != LUA_TNIL) {
    const char *s;
    if (t != LUA_TSTRING)
      luaL_error(L, "bad option '%s' (string expected, got %s)", name, luaL_typename(L, -1));
    s = lua_tostring(L, -1);
    for (mode = 0; modes[mode] != NULL && strcmp(modes[mode], s) != 0; mode++)
      ;
    if (modes[mode] == NULL)
      luaL_error(L, "bad option '%s' (\"%s\", \"%s\" or \"%s\" expected, got \"%s\")",
                 name, modes[0], modes[1], modes[2], s);
  }
  lua_pop(L, 1);
  return mode;
}

void weft__proc_args(lua_State *L) {
  if (lua_isnoneornil(L, 2)) {
    lua_settop(L, 1);
    lua_pushvalue(L, 1);
  } else {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
  }
}

void weft__proc_push_spawn_error(lua_State *L, int rc, int argv_idx, const char *cwd) {
  int cwd_err = cwd_error(cwd);
  argv_idx = lua_absindex(L, argv_idx);
  lua_geti(L, argv_idx, 1);
  if (cwd_err != 0) {
    rc = uv_translate_sys_error(cwd_err);
    weft__uv_error_new(L, "ProcessError", rc, "cannot run '%s' in '%s'", lua_tostring(L, -1),
                       cwd);
    lua_pushstring(L, cwd);
    lua_setfield(L, -2, "cwd");
  } else {
    weft__uv_error_new(L, "ProcessError", rc, "cannot run '%s'", lua_tostring(L, -1));
  }
  lua_remove(L, -2);
  lua_pushstring(L, weft__uv_err_name(rc));
  lua_setfield(L, -2, "errno");
  lua_pushinteger(L, rc == UV_ENOENT ? 127 : 126);
  lua_setfield(L, -2, "code");
  lua_pushvalue(L, argv_idx);
  lua_setfield(L, -2, "argv");
}

/* }======== */

/* The per-runtime state, and SIGPIPE ignored in the host. */
int weft__open_spawn(lua_State *L, weft_runtime *rt) {
  proc_set **box;
  struct sigaction old;
  /* A child that stops reading must not kill the host with SIGPIPE; the
     child gets every signal's default back (spawn_attrs). */
  if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
    signal(SIGPIPE, SIG_IGN);
  box = (proc_set **)lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, set_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &set_key);
  *box = (proc_set *)calloc(1, sizeof **box);
  if (*box == NULL)
    return luaL_error(L, "weft: out of memory");
  (*box)->rt = rt;
  weft_queue_init(&(*box)->live);
  return 0;
}
