/*
** sorter.h: the topological sorter core on integer ids (sorter.c), with no
** lua_State, so that weft.sorter (sorter_lua.c), the graph runner (graph.c),
** a libFuzzer harness (fuzz/) and benchmarks drive the same code.
**
** Nodes are ids 0..n-1 handed out by weft__sorter_node in creation order;
** edges go from a predecessor to its successor. Semantics follow Python's
** graphlib.TopologicalSorter, except that ready nodes always come out in
** increasing id order (first mention, when ids are given that way).
** Memory: about 13 bytes per node and 8 per edge, plus a ready heap as large
** as the most nodes ready at once.
*/
#ifndef WEFT_SORTER_H
#define WEFT_SORTER_H

typedef struct weft_sorter weft_sorter;

/* Return codes: 0 or one of these. */
enum {
  WEFT_SORTER_ENOMEM = -1,       /* out of memory (nothing changed) */
  WEFT_SORTER_EPREPARED = -2,    /* add after prepare, or prepare twice */
  WEFT_SORTER_EUNPREPARED = -3,  /* get_ready/done/is_active before prepare */
  WEFT_SORTER_ECYCLE = -4,       /* prepare found a cycle (see _cycle) */
  WEFT_SORTER_EUNKNOWN = -5,     /* done: no such node */
  WEFT_SORTER_ENOTOUT = -6,      /* done: not handed out yet */
  WEFT_SORTER_EDONE = -7,        /* done: already done */
  WEFT_SORTER_ETOOBIG = -8,      /* more nodes or edges than an int counts */
  WEFT_SORTER_EREADY = -9        /* edge_live: the successor no longer waits */
};

/* Node states, as weft__sorter_state reports them. */
enum {
  WEFT_NODE_WAITING = 0,   /* some predecessor not done (or not prepared) */
  WEFT_NODE_READY,         /* ready, not handed out yet */
  WEFT_NODE_OUT,           /* handed out, not done */
  WEFT_NODE_DONE
};

weft_sorter *weft__sorter_new(void);
void weft__sorter_free(weft_sorter *s);
int weft__sorter_count(const weft_sorter *s);       /* number of nodes */
int weft__sorter_prepared(const weft_sorter *s);

/* Makes room for 'nodes' nodes at once (a hint). Returns 0 or a code. */
int weft__sorter_reserve(weft_sorter *s, int nodes);
/* Creates a node: returns its id (>= 0) or a negative code. */
int weft__sorter_node(weft_sorter *s);
/* Adds the edge pred -> succ (both existing ids). Repeated edges count
   once each, as in graphlib. Returns 0 or a negative code. */
int weft__sorter_edge(weft_sorter *s, int pred, int succ);

/* Prepares: returns 0, WEFT_SORTER_ECYCLE (the instance stays prepared and
   hands out the nodes outside the cycle, as graphlib), or a negative code. */
int weft__sorter_prepare(weft_sorter *s);
/* After ECYCLE: the cycle as ids, first node repeated last, each node a
   predecessor of the next; returns its length (0 if none). */
int weft__sorter_cycle(const weft_sorter *s, const int **path);

/* Number of ready nodes not yet handed out. */
int weft__sorter_nready(const weft_sorter *s);
/* Hands out the ready node of least id: returns it, or -1 if none. */
int weft__sorter_pop_ready(weft_sorter *s);
/* Marks a handed-out node done, readying successors whose predecessors
   are now all done. Returns 0 or a negative code. */
int weft__sorter_done(weft_sorter *s, int id);
/* 1 while some node is ready or handed out and not done, 0 if not, or
   WEFT_SORTER_EUNPREPARED. */
int weft__sorter_is_active(const weft_sorter *s);
int weft__sorter_state(const weft_sorter *s, int id);

/* Growing a sorter while it runs (weft.run_graph's add), after prepare:
   node_live makes a waiting node; edge_live adds pred -> succ where succ
   still waits (else EREADY), and does nothing if pred is done; release
   makes a waiting node with nothing left to wait for ready (returns 1).
   No cycle check: path finds a path from -> to along successors (length,
   0 if none; the ids are then what _cycle returns), for the caller to
   refuse an edge that would close one. */
int weft__sorter_node_live(weft_sorter *s);
int weft__sorter_edge_live(weft_sorter *s, int pred, int succ);
int weft__sorter_release(weft_sorter *s, int id);
int weft__sorter_path(weft_sorter *s, int from, int to);
/* Calls fn(id of each successor of node id, arg), in edge order. */
void weft__sorter_each_succ(const weft_sorter *s, int id, void (*fn)(int, void *), void *arg);

/* Prepares and writes one whole order into out (room for count ids).
   Returns the number written, or a negative code (ECYCLE included). */
int weft__sorter_static_order(weft_sorter *s, int *out);

/* sorter_lua.c, for graph.c: only where lua.h came first. */
#ifdef LUA_VERSION_NUM
/* Pushes a new weft.sorter userdata built from the graph table at 'graph'
   (node -> array of predecessors); raises naming a bad entry. */
weft_sorter *weft__sorter_push_graph(lua_State *L, int graph);
/* Pushes the Lua value of node 'id' of the sorter userdata at 'ud' (an
   absolute index). */
void weft__sorter_push_node(lua_State *L, int ud, int id);
/* t[node id] = the value on top of L (popped); t is at index 'tab'. */
void weft__sorter_set_at_node(lua_State *L, int ud, int tab, int id);
/* Pushes an empty table sized to map every node of the sorter userdata at
   'ud' to a value. */
void weft__sorter_push_table(lua_State *L, int ud);
/* Prepares the sorter userdata at 'ud', raising CycleError (or an
   ordinary error) on failure. */
void weft__sorter_prepare_or_raise(lua_State *L, int ud);
/* The id of the node at idx in the sorter userdata at 'ud', or -1. */
int weft__sorter_lookup(lua_State *L, int ud, int idx);
/* A new node for the value at idx (not yet a node) in the prepared sorter
   userdata at 'ud': its id; raises on memory errors. */
int weft__sorter_intern_live(lua_State *L, int ud, int idx);
#endif

#endif
