/*
** sorter.c: the topological sorter core on integer ids (see sorter.h). No
** lua_State here: sorter_lua.c maps Lua values to ids and raises errors,
** graph.c drives it from task completions, fuzz/ checks it.
**
** Layout: per node, the count of predecessors not yet done (npred), the head
** of its successor list and a state byte; per edge, the successor and the
** next edge of the same predecessor (a singly linked list in an array,
** pushed at the head while adding and reversed once by prepare, so the
** lists read in insertion order). Ready nodes wait in a binary min-heap of
** ids, so the least id (the first mentioned) comes out first; while they
** arrive in ascending order it is a sorted array popped from its front.
** Everything is an int array; nothing recurses (prepare's cycle search keeps its own
** stack), so a chain of a million nodes is fine. The search is skipped
** when every edge goes from a lower id to a higher one (the usual case:
** predecessors mentioned before their successors), as no cycle can exist.
*/
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "sorter.h"

struct weft_sorter {
  int n, ncap;             /* nodes and room for them */
  int e, ecap;             /* edges and room for them */
  int *npred;              /* per node: predecessors not yet done */
  int *head;               /* per node: first edge out, or -1 */
  unsigned char *state;    /* per node: WEFT_NODE_* */
  int *esucc, *enext;      /* per edge: successor, next edge of the same pred */
  int *heap;               /* ready ids, min-heap at heap + hbase */
  int nheap, heapcap;
  int hbase;               /* ids popped off the front of a sorted heap */
  int unsorted;            /* 0 while the heap is an ascending array */
  int nout;                /* handed out and not done */
  int backward;            /* edges whose pred id is not below its succ id */
  int prepared;
  int *cycle;              /* after ECYCLE: the cycle, first id repeated */
  int ncycle;
};

static int grow(void **p, int *cap, int need, size_t size) {
  int ncap = *cap ? *cap : 16;
  void *np;
  while (ncap < need) {
    if (ncap > INT_MAX / 2)
      return WEFT_SORTER_ETOOBIG;
    ncap *= 2;
  }
  np = realloc(*p, (size_t)ncap * size);
  if (np == NULL)
    return WEFT_SORTER_ENOMEM;
  *p = np;
  *cap = ncap;
  return 0;
}

weft_sorter *weft__sorter_new(void) {
  return (weft_sorter *)calloc(1, sizeof(weft_sorter));
}

void weft__sorter_free(weft_sorter *s) {
  if (s == NULL)
    return;
  free(s->npred);
  free(s->head);
  free(s->state);
  free(s->esucc);
  free(s->enext);
  free(s->heap);
  free(s->cycle);
  free(s);
}

int weft__sorter_count(const weft_sorter *s) {
  return s->n;
}

int weft__sorter_prepared(const weft_sorter *s) {
  return s->prepared;
}

/* {======== building */

static int grow_nodes(weft_sorter *s) {
  int cap = s->ncap, rc;
  void *p;
  if (s->n < s->ncap)
    return 0;
  p = s->npred;
  if ((rc = grow(&p, &cap, s->n + 1, sizeof(int))) != 0)
    return rc;
  s->npred = (int *)p;
  cap = s->ncap;
  p = s->head;
  if ((rc = grow(&p, &cap, s->n + 1, sizeof(int))) != 0)
    return rc;
  s->head = (int *)p;
  cap = s->ncap;
  p = s->state;
  if ((rc = grow(&p, &cap, s->n + 1, 1)) != 0)
    return rc;
  s->state = (unsigned char *)p;
  s->ncap = cap;
  return 0;
}

int weft__sorter_reserve(weft_sorter *s, int nodes) {
  int n = s->n, rc;
  if (nodes <= s->ncap)
    return 0;
  s->n = nodes - 1;   /* grow_nodes makes room for one more than n */
  rc = grow_nodes(s);
  s->n = n;
  return rc;
}

int weft__sorter_node(weft_sorter *s) {
  int rc;
  if (s->prepared)
    return WEFT_SORTER_EPREPARED;
  if ((rc = grow_nodes(s)) != 0)
    return rc;
  s->npred[s->n] = 0;
  s->head[s->n] = -1;
  s->state[s->n] = WEFT_NODE_WAITING;
  return s->n++;
}

static int grow_edges(weft_sorter *s) {
  int cap = s->ecap, rc;
  void *p;
  if (s->e < s->ecap)
    return 0;
  p = s->esucc;
  if ((rc = grow(&p, &cap, s->e + 1, sizeof(int))) != 0)
    return rc;
  s->esucc = (int *)p;
  cap = s->ecap;
  p = s->enext;
  if ((rc = grow(&p, &cap, s->e + 1, sizeof(int))) != 0)
    return rc;
  s->enext = (int *)p;
  s->ecap = cap;
  return 0;
}

int weft__sorter_edge(weft_sorter *s, int pred, int succ) {
  int rc;
  if (s->prepared)
    return WEFT_SORTER_EPREPARED;
  if (pred < 0 || pred >= s->n || succ < 0 || succ >= s->n)
    return WEFT_SORTER_EUNKNOWN;
  if ((rc = grow_edges(s)) != 0)
    return rc;
  s->esucc[s->e] = succ;
  s->enext[s->e] = s->head[pred];
  s->head[pred] = s->e++;
  s->npred[succ]++;
  s->backward += pred >= succ;
  return 0;
}

/* }======== */

/* {======== the ready heap */

static int heap_push(weft_sorter *s, int id) {
  int i, rc, *h;
  if (s->hbase + s->nheap == s->heapcap) {
    void *p = s->heap;
    if ((rc = grow(&p, &s->heapcap, s->hbase + s->nheap + 1, sizeof(int))) != 0)
      return rc;
    s->heap = (int *)p;
  }
  h = s->heap + s->hbase;
  i = s->nheap++;
  if (i > 0 && h[i - 1] > id)
    s->unsorted = 1;
  while (i > 0 && h[(i - 1) / 2] > id) {
    h[i] = h[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  h[i] = id;
  return 0;
}

/* Ids usually become ready in ascending order (prepare scans them so, and
   a layer of a graph finishes in the order it started): the heap is then a
   sorted array, a valid heap from any start, and the least id is popped
   off its front without a sift-down (a sift costs log2 n steps: 17 on
   100k ready nodes). The first id out of order makes it a heap again. */
static int heap_pop(weft_sorter *s) {
  int *h = s->heap + s->hbase, top = h[0], last, i = 0;
  if (!s->unsorted) {
    s->hbase++;
    if (--s->nheap == 0)
      s->hbase = 0;
    return top;
  }
  last = h[--s->nheap];
  for (;;) {
    int c = 2 * i + 1;
    if (c >= s->nheap)
      break;
    if (c + 1 < s->nheap && h[c + 1] < h[c])
      c++;
    if (h[c] >= last)
      break;
    h[i] = h[c];
    i = c;
  }
  if (s->nheap > 0)
    h[i] = last;
  else
    s->hbase = s->unsorted = 0;
  return top;
}

/* Makes node id ready. Each id is pushed once, so hbase + nheap never
   passes n: prepare reserves that room and this cannot fail. */
static void make_ready(weft_sorter *s, int id) {
  s->state[id] = WEFT_NODE_READY;
  (void)heap_push(s, id);
}

/* }======== */

/* {======== prepare and the cycle search */

/* Reverses every successor list, so that they read in insertion order. */
static void reverse_lists(weft_sorter *s) {
  int v;
  for (v = 0; v < s->n; v++) {
    int prev = -1, e = s->head[v];
    while (e >= 0) {
      int next = s->enext[e];
      s->enext[e] = prev;
      prev = e;
      e = next;
    }
    s->head[v] = prev;
  }
}

/* Records the cycle stack[from..top] followed by stack[from]. */
static int keep_cycle(weft_sorter *s, const int *stack, int from, int top) {
  int len = top - from + 2, i;
  s->cycle = (int *)malloc((size_t)len * sizeof(int));
  if (s->cycle == NULL)
    return WEFT_SORTER_ENOMEM;
  for (i = 0; i < len - 1; i++)
    s->cycle[i] = stack[from + i];
  s->cycle[len - 1] = stack[from];
  s->ncycle = len;
  return WEFT_SORTER_ECYCLE;
}

/* Depth-first search along successors from each unseen node in id order,
   as graphlib's _find_cycle does, with an explicit stack. pos[v] is -2
   for an unseen node, -1 for a finished one, else its stack index; cur[k]
   is the next edge to follow from stack[k]. Returns 0 or ECYCLE. */
static int find_cycle(weft_sorter *s, int *pos, int *stack, int *cur) {
  int root, v;
  for (v = 0; v < s->n; v++)
    pos[v] = -2;
  for (root = 0; root < s->n; root++) {
    int top = 0;
    if (pos[root] != -2)
      continue;
    stack[0] = root;
    cur[0] = s->head[root];
    pos[root] = 0;
    while (top >= 0) {
      int e = cur[top];
      if (e < 0) {
        pos[stack[top--]] = -1;
        continue;
      }
      cur[top] = s->enext[e];
      v = s->esucc[e];
      if (pos[v] >= 0)
        return keep_cycle(s, stack, pos[v], top);
      if (pos[v] == -2) {
        stack[++top] = v;
        cur[top] = s->head[v];
        pos[v] = top;
      }
    }
  }
  return 0;
}

static int search_cycle(weft_sorter *s) {
  int *pos, *stack, *cur, rc;
  if (s->backward == 0)
    return 0;   /* every edge goes up in id: the ids are a topological order */
  pos = (int *)malloc((size_t)s->n * sizeof(int) + 1);
  stack = (int *)malloc((size_t)s->n * sizeof(int) + 1);
  cur = (int *)malloc((size_t)s->n * sizeof(int) + 1);
  rc = WEFT_SORTER_ENOMEM;
  if (pos != NULL && stack != NULL && cur != NULL)
    rc = find_cycle(s, pos, stack, cur);
  free(pos);
  free(stack);
  free(cur);
  return rc;
}

int weft__sorter_prepare(weft_sorter *s) {
  int v, rc;
  if (s->prepared)
    return WEFT_SORTER_EPREPARED;
  reverse_lists(s);
  rc = search_cycle(s);
  if (rc == WEFT_SORTER_ENOMEM) {
    reverse_lists(s);   /* back as it was: prepare may be retried */
    return rc;
  }
  if (s->heapcap < s->n) {
    void *p = realloc(s->heap, (size_t)s->n * sizeof(int) + 1);
    if (p == NULL) {
      free(s->cycle);
      s->cycle = NULL;
      s->ncycle = 0;
      reverse_lists(s);
      return WEFT_SORTER_ENOMEM;
    }
    s->heap = (int *)p;
    s->heapcap = s->n;
  }
  s->prepared = 1;
  for (v = 0; v < s->n; v++)
    if (s->npred[v] == 0)
      make_ready(s, v);
  return rc;
}

int weft__sorter_cycle(const weft_sorter *s, const int **path) {
  *path = s->cycle;
  return s->ncycle;
}

/* }======== */

/* {======== growing while it runs (run_graph's add) */

int weft__sorter_node_live(weft_sorter *s) {
  int rc, id;
  if (!s->prepared)
    return weft__sorter_node(s);
  if (s->heapcap < s->n + 1) {   /* make_ready must find room */
    void *p = s->heap;
    if ((rc = grow(&p, &s->heapcap, s->n + 1, sizeof(int))) != 0)
      return rc;
    s->heap = (int *)p;
  }
  s->prepared = 0;
  id = weft__sorter_node(s);
  s->prepared = 1;
  return id;
}

int weft__sorter_edge_live(weft_sorter *s, int pred, int succ) {
  int rc;
  if (!s->prepared)
    return weft__sorter_edge(s, pred, succ);
  if (pred < 0 || pred >= s->n || succ < 0 || succ >= s->n)
    return WEFT_SORTER_EUNKNOWN;
  if (s->state[succ] != WEFT_NODE_WAITING)
    return WEFT_SORTER_EREADY;
  if (s->state[pred] == WEFT_NODE_DONE)
    return 0;   /* nothing to wait for */
  s->prepared = 0;
  rc = weft__sorter_edge(s, pred, succ);
  s->prepared = 1;
  return rc;
}

int weft__sorter_release(weft_sorter *s, int id) {
  if (id < 0 || id >= s->n || s->state[id] != WEFT_NODE_WAITING || s->npred[id] != 0)
    return 0;
  make_ready(s, id);
  return 1;
}

void weft__sorter_each_succ(const weft_sorter *s, int id, void (*fn)(int, void *), void *arg) {
  int e;
  for (e = s->head[id]; e >= 0; e = s->enext[e])
    fn(s->esucc[e], arg);
}

/* A depth-first search along successors from 'from' for 'to', keeping the
   path in s->cycle (as the cycle is kept): returns its length, 0 if there
   is none, or ENOMEM. */
int weft__sorter_path(weft_sorter *s, int from, int to) {
  int *pos, *stack, *cur, top = 0, len = 0;
  free(s->cycle);
  s->cycle = NULL;
  s->ncycle = 0;
  pos = (int *)malloc((size_t)s->n * sizeof(int) + 1);
  stack = (int *)malloc((size_t)s->n * sizeof(int) + 1);
  cur = (int *)malloc((size_t)s->n * sizeof(int) + 1);
  if (pos == NULL || stack == NULL || cur == NULL) {
    len = WEFT_SORTER_ENOMEM;
    goto done;
  }
  memset(pos, 0, (size_t)s->n * sizeof(int));   /* 1: seen */
  stack[0] = from;
  cur[0] = s->head[from];
  pos[from] = 1;
  while (top >= 0 && stack[top] != to) {
    int e = cur[top], v;
    if (e < 0) {
      top--;
      continue;
    }
    cur[top] = s->enext[e];
    v = s->esucc[e];
    if (!pos[v]) {
      pos[v] = 1;
      stack[++top] = v;
      cur[top] = s->head[v];
    }
  }
  if (top >= 0) {
    s->cycle = (int *)malloc((size_t)(top + 1) * sizeof(int));
    if (s->cycle == NULL) {
      len = WEFT_SORTER_ENOMEM;
      goto done;
    }
    memcpy(s->cycle, stack, (size_t)(top + 1) * sizeof(int));
    s->ncycle = len = top + 1;
  }
done:
  free(pos);
  free(stack);
  free(cur);
  return len;
}

/* }======== */

/* {======== handing out */

int weft__sorter_nready(const weft_sorter *s) {
  return s->nheap;
}

int weft__sorter_pop_ready(weft_sorter *s) {
  int id;
  if (s->nheap == 0)
    return -1;
  id = heap_pop(s);
  s->state[id] = WEFT_NODE_OUT;
  s->nout++;
  return id;
}

int weft__sorter_done(weft_sorter *s, int id) {
  int e;
  if (!s->prepared)
    return WEFT_SORTER_EUNPREPARED;
  if (id < 0 || id >= s->n)
    return WEFT_SORTER_EUNKNOWN;
  if (s->state[id] == WEFT_NODE_DONE)
    return WEFT_SORTER_EDONE;
  if (s->state[id] != WEFT_NODE_OUT)
    return WEFT_SORTER_ENOTOUT;
  s->state[id] = WEFT_NODE_DONE;
  s->nout--;
  for (e = s->head[id]; e >= 0; e = s->enext[e]) {
    int v = s->esucc[e];
    if (--s->npred[v] == 0)
      make_ready(s, v);
  }
  return 0;
}

int weft__sorter_is_active(const weft_sorter *s) {
  if (!s->prepared)
    return WEFT_SORTER_EUNPREPARED;
  return s->nout > 0 || s->nheap > 0;
}

int weft__sorter_state(const weft_sorter *s, int id) {
  if (id < 0 || id >= s->n)
    return WEFT_SORTER_EUNKNOWN;
  return s->state[id];
}

/* As graphlib: prepare, then take each ready batch whole and mark it done. */
int weft__sorter_static_order(weft_sorter *s, int *out) {
  int rc = weft__sorter_prepare(s), n = 0;
  if (rc != 0)
    return rc;
  while (s->nheap > 0) {
    int first = n, i;
    while (s->nheap > 0)
      out[n++] = weft__sorter_pop_ready(s);
    for (i = first; i < n; i++)
      weft__sorter_done(s, out[i]);
  }
  return n;
}

/* }======== */
