/* The floor of any one-stage reader of a child's output (issue 15's
   throughput target): runs `cat FILE` with its stdout on a channel and
   consumes everything with no per-line work, so the figure is what the
   child's writes and the kernel's channel cost before weft does anything.
     pipe_floor socketpair FILE   AF_UNIX stream pair, as libuv's stdio pipes;
                                  read() into a 256 KiB buffer, discarded
     pipe_floor pipe FILE         pipe2 widened to 1 MiB, same reads
     pipe_floor splice FILE       pipe2 widened to 1 MiB, spliced to /dev/null
                                  (the reader copies nothing at all)
   Built by bench/pipeline/throughput.sh with the system's cc. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define READ_SIZE (256 * 1024)
#define PIPE_SIZE (1024 * 1024)

static int open_channel(const char *mode, int fds[2]) {
  if (strcmp(mode, "socketpair") == 0)
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
  if (pipe2(fds, O_CLOEXEC) != 0)
    return -1;
  /* best effort: an unprivileged process may be capped below 1 MiB */
  (void)fcntl(fds[1], F_SETPIPE_SZ, PIPE_SIZE);
  return 0;
}

static long long drain_read(int fd) {
  static char buf[READ_SIZE];
  long long total = 0;
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0)
    total += n;
  return n < 0 ? -1 : total;
}

static long long drain_splice(int fd) {
  long long total = 0;
  ssize_t n;
  int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (devnull < 0)
    return -1;
  while ((n = splice(fd, NULL, devnull, NULL, PIPE_SIZE, SPLICE_F_MOVE)) > 0)
    total += n;
  close(devnull);
  return n < 0 ? -1 : total;
}

int main(int argc, char **argv) {
  int fds[2], status;
  long long total;
  pid_t child;
  if (argc != 3 || (strcmp(argv[1], "socketpair") != 0 && strcmp(argv[1], "pipe") != 0 &&
                    strcmp(argv[1], "splice") != 0)) {
    fprintf(stderr, "usage: pipe_floor socketpair|pipe|splice FILE\n");
    return 2;
  }
  if (open_channel(argv[1], fds) != 0) {
    perror("pipe_floor: channel");
    return 1;
  }
  child = fork();
  if (child < 0) {
    perror("pipe_floor: fork");
    return 1;
  }
  if (child == 0) {
    dup2(fds[1], 1);
    execlp("cat", "cat", argv[2], (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  total = strcmp(argv[1], "splice") == 0 ? drain_splice(fds[0]) : drain_read(fds[0]);
  close(fds[0]);
  if (waitpid(child, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
      total < 0) {
    fprintf(stderr, "pipe_floor: cat failed or the channel broke\n");
    return 1;
  }
  printf("%lld bytes\n", total);
  return 0;
}
