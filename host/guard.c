/*
** guard.c: children die with weft, however weft ends (kill -9 included).
**
** Nothing runs in a process killed by SIGKILL, and PR_SET_PDEATHSIG cannot
** be set in a posix_spawn child (and would fire when the spawning *thread*
** ends, which weft.thread runtimes do). So the first spawn forks a small
** guard process that holds one end of a socket pair; weft tells it each
** process group it starts and forgets (4-byte messages: +pgid, -pgid). When
** weft dies the socket reaches end of file, and the guard sends TERM to
** every group it still knows, KILL to those alive a moment later, and exits.
** When weft exits normally its groups are already gone and forgotten.
**
** The guard is forked from a process that may have threads (and may run
** under AddressSanitizer, whose wrappers of libc calls can wait forever on
** a lock some other thread held at the fork): it makes raw system calls
** only. It is forked with every signal blocked and runs in its own session,
** so a terminal's SIGHUP or Ctrl-C does not end it before it has done its
** job.
*/
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "spawn.h"

#define GUARD_SLOTS 4096
#define GUARD_GRACE_TICKS 20          /* 20 x 50 ms from TERM to KILL */

static pthread_once_t guard_once = PTHREAD_ONCE_INIT;
static int guard_fd = -1;             /* weft's end; -1 if no guard */

/* {======== the guard process */

static int32_t guarded[GUARD_SLOTS];

static void guard_note(int32_t msg) {
  int i;
  for (i = 0; i < GUARD_SLOTS; i++) {
    if (msg > 0 && guarded[i] == 0) {
      guarded[i] = msg;
      return;
    }
    if (msg < 0 && guarded[i] == -msg) {
      guarded[i] = 0;
      return;
    }
  }
}

static int guard_signal_all(int sig) {
  int i, alive = 0;
  for (i = 0; i < GUARD_SLOTS; i++)
    if (guarded[i] > 0 && syscall(SYS_kill, -guarded[i], sig) == 0)
      alive++;
  return alive;
}

static void guard_close_others(int keep) {
  int fd;
#ifdef SYS_close_range
  if (syscall(SYS_close_range, 0, keep - 1, 0) == 0 &&
      syscall(SYS_close_range, keep + 1, ~0U, 0) == 0)
    return;
#endif
  for (fd = 0; fd < 65536; fd++)
    if (fd != keep)
      syscall(SYS_close, fd);
}

static _Noreturn void guard_main(int fd) {
  struct timespec tick = {0, 50 * 1000 * 1000};
  union { int32_t msg[256]; char bytes[1024]; } buf;
  size_t have = 0, i;
  syscall(SYS_setsid);
  syscall(SYS_chdir, "/");   /* keeps no mount busy */
  guard_close_others(fd);
  for (;;) {
    long n = syscall(SYS_read, fd, buf.bytes + have, sizeof buf - have);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    have += (size_t)n;
    for (i = 0; i + 4 <= have; i += 4)
      guard_note(buf.msg[i / 4]);
    have -= i;
    if (have > 0)   /* a message split across reads: keep its start */
      buf.msg[0] = buf.msg[i / 4];
  }
  if (guard_signal_all(SIGTERM) > 0)
    for (i = 0; i < GUARD_GRACE_TICKS && guard_signal_all(0) > 0; i++)
      syscall(SYS_nanosleep, &tick, NULL);
  guard_signal_all(SIGKILL);
  syscall(SYS_exit_group, 0);
  for (;;) {}   /* not reached */
}

/* }======== */

/* {======== weft's side */

static void guard_start(void) {
  int sv[2];
  pid_t pid;
  sigset_t all, old;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);   /* the guard keeps this mask */
  pid = fork();
  if (pid == 0)
    guard_main(sv[1]);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  close(sv[1]);
  if (pid < 0) {
    close(sv[0]);
    return;
  }
  guard_fd = sv[0];
}

static void guard_send(int32_t msg) {
  ssize_t n;
  do
    n = send(guard_fd, &msg, sizeof msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
}

void weft__guard_watch(int pgid) {
  pthread_once(&guard_once, guard_start);
  if (guard_fd >= 0 && pgid > 0)
    guard_send((int32_t)pgid);
}

void weft__guard_forget(int pgid) {
  if (guard_fd >= 0 && pgid > 0)
    guard_send(-(int32_t)pgid);
}

/* }======== */
