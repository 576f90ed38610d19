/*
** sorter_fuzz.c: libFuzzer harness over the sorter core (host/sorter.c).
**
** Each input is a program of small operations (make a node, add an edge,
** prepare, take the ready nodes, mark one done, ask is_active) run both on
** the core and on a plain reference (an adjacency-count matrix). After every
** operation the two must agree: return codes, which nodes are ready (handed
** out in increasing id order, each once, only after all its predecessors are
** done), is_active; prepare reports a cycle iff the reference finds one, and
** the reported cycle is a real one (first id repeated last, each id a
** predecessor of the next). A run without a cycle is driven to the end:
** every node must be handed out exactly once.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sorter.h"

#define MAXN 48

enum { R_WAITING = 0, R_READY, R_OUT, R_DONE };

typedef struct ref {
  int n;
  int count[MAXN][MAXN];           /* edges pred -> succ, with repeats */
  int remaining[MAXN];               /* predecessor edges not done */
  int state[MAXN];
  int handed[MAXN];                  /* times handed out */
  int prepared;
} ref;

#define CHECK(c) do { if (!(c)) { \
  fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); abort(); } } while (0)

static int ref_has_cycle(const ref *r) {
  int indeg[MAXN], queue[MAXN], qh = 0, qt = 0, seen = 0, v, w;
  for (v = 0; v < r->n; v++) {
    indeg[v] = 0;
    for (w = 0; w < r->n; w++)
      indeg[v] += r->count[w][v];
  }
  for (v = 0; v < r->n; v++)
    if (indeg[v] == 0)
      queue[qt++] = v;
  while (qh < qt) {
    v = queue[qh++];
    seen++;
    for (w = 0; w < r->n; w++)
      if (r->count[v][w] && (indeg[w] -= r->count[v][w]) == 0)
        queue[qt++] = w;
  }
  return seen < r->n;
}

static void check_cycle(const weft_sorter *s, const ref *r) {
  const int *path;
  int len = weft__sorter_cycle(s, &path), i, j;
  CHECK(len >= 2);
  CHECK(path[0] == path[len - 1]);
  for (i = 0; i + 1 < len; i++) {
    CHECK(path[i] >= 0 && path[i] < r->n);
    CHECK(r->count[path[i]][path[i + 1]] > 0);
    for (j = i + 1; j + 1 < len; j++)
      CHECK(path[i] != path[j]);
  }
}

static void ref_ready(ref *r, int v) {
  if (r->state[v] == R_WAITING && r->remaining[v] == 0)
    r->state[v] = R_READY;
}

static void op_prepare(weft_sorter *s, ref *r) {
  int rc = weft__sorter_prepare(s), v, w;
  if (r->prepared) {
    CHECK(rc == WEFT_SORTER_EPREPARED);
    return;
  }
  CHECK(rc == 0 || rc == WEFT_SORTER_ECYCLE);
  CHECK((rc == WEFT_SORTER_ECYCLE) == ref_has_cycle(r));
  if (rc == WEFT_SORTER_ECYCLE)
    check_cycle(s, r);
  r->prepared = 1;
  for (v = 0; v < r->n; v++) {
    r->remaining[v] = 0;
    for (w = 0; w < r->n; w++)
      r->remaining[v] += r->count[w][v];
    ref_ready(r, v);
  }
}

static void op_get_ready(weft_sorter *s, ref *r) {
  int last = -1, id, v, nready = 0;
  for (v = 0; v < r->n; v++)
    nready += r->state[v] == R_READY;
  CHECK(weft__sorter_nready(s) == nready);
  while ((id = weft__sorter_pop_ready(s)) >= 0) {
    CHECK(id > last && id < r->n);
    CHECK(r->state[id] == R_READY);
    CHECK(r->remaining[id] == 0);
    r->state[id] = R_OUT;
    r->handed[id]++;
    last = id;
  }
  for (v = 0; v < r->n; v++)
    CHECK(r->state[v] != R_READY);
}

static void op_done(weft_sorter *s, ref *r, int id) {
  int rc = weft__sorter_done(s, id), w;
  if (!r->prepared)
    CHECK(rc == WEFT_SORTER_EUNPREPARED);
  else if (id < 0 || id >= r->n)
    CHECK(rc == WEFT_SORTER_EUNKNOWN);
  else if (r->state[id] == R_DONE)
    CHECK(rc == WEFT_SORTER_EDONE);
  else if (r->state[id] != R_OUT)
    CHECK(rc == WEFT_SORTER_ENOTOUT);
  else {
    CHECK(rc == 0);
    r->state[id] = R_DONE;
    for (w = 0; w < r->n; w++)
      if (r->count[id][w]) {
        r->remaining[w] -= r->count[id][w];
        ref_ready(r, w);
      }
  }
}

static void check_active(const weft_sorter *s, const ref *r) {
  int v, active = 0;
  if (!r->prepared) {
    CHECK(weft__sorter_is_active(s) == WEFT_SORTER_EUNPREPARED);
    return;
  }
  for (v = 0; v < r->n; v++)
    active |= r->state[v] == R_READY || r->state[v] == R_OUT;
  CHECK(weft__sorter_is_active(s) == active);
  for (v = 0; v < r->n; v++)
    CHECK(weft__sorter_state(s, v) == r->state[v]);
}

/* Takes and finishes everything; without a cycle every node comes out once. */
static void drain(weft_sorter *s, ref *r, int cycle) {
  int v;
  if (!r->prepared)
    return;
  for (v = 0; v < r->n; v++)
    if (r->state[v] == R_OUT)
      op_done(s, r, v);
  while (weft__sorter_nready(s) > 0) {
    op_get_ready(s, r);
    for (v = 0; v < r->n; v++)
      if (r->state[v] == R_OUT)
        op_done(s, r, v);
  }
  check_active(s, r);
  CHECK(weft__sorter_is_active(s) == 0);
  for (v = 0; v < r->n && !cycle; v++)
    CHECK(r->handed[v] == 1 && r->state[v] == R_DONE);
  for (v = 0; v < r->n; v++)
    CHECK(r->handed[v] <= 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  weft_sorter *s = weft__sorter_new();
  ref *r = (ref *)calloc(1, sizeof *r);
  size_t i = 0;
  int cycle = 0;
  CHECK(s != NULL && r != NULL);
  while (i < size) {
    int op = data[i++] % 8;
    int a = i < size ? data[i] : 0, b = i + 1 < size ? data[i + 1] : 0;
    if (op <= 1) {                                  /* node */
      int id;
      if (r->n >= MAXN)
        continue;
      id = weft__sorter_node(s);
      if (r->prepared) {
        CHECK(id == WEFT_SORTER_EPREPARED);
      } else {
        CHECK(id == r->n);
        r->n++;
      }
    } else if (op <= 4) {                           /* edge */
      int rc;
      i += 2;
      if (r->n == 0)
        continue;
      a %= r->n;
      b %= r->n;
      rc = weft__sorter_edge(s, a, b);
      if (r->prepared) {
        CHECK(rc == WEFT_SORTER_EPREPARED);
      } else {
        CHECK(rc == 0);
        r->count[a][b]++;
      }
    } else if (op == 5) {
      int was = r->prepared;
      op_prepare(s, r);
      if (!was)
        cycle = ref_has_cycle(r);
    } else if (op == 6) {
      if (r->prepared)
        op_get_ready(s, r);
      else
        CHECK(weft__sorter_pop_ready(s) == -1);
    } else {
      i++;
      op_done(s, r, a % (r->n + 2) - 1);
    }
    check_active(s, r);
  }
  if (!r->prepared) {
    op_prepare(s, r);
    cycle = ref_has_cycle(r);
  }
  drain(s, r, cycle);
  weft__sorter_free(s);
  free(r);
  return 0;
}
