/*
** graph.c: weft.run_graph(graph, work [, opts]), completion-driven.
**
** The graph becomes a sorter (sorter_lua.c) and a block with one slot per
** node. Each started node runs work(node, results) as a light task (task.c):
** its memory comes from a task slab (task.c) whose chunks the block holds,
** and it has no Lua object unless something asks for one. Its slot is a waiter linked into
** the task's completion list, so when the task finishes, node_wake (C, no
** Lua running) stores the first result, marks the node done in the sorter
** and starts the nodes that became ready, up to `limit` and to
** STARTS_PER_TURN in one scheduler turn (the caller, requeued each turn,
** starts the rest). Nothing ever scans the pending work: the whole run
** costs O(nodes + edges) plus a heap operation per node.
**
** The block is also the run work gets as its third argument: run:add
** grows the graph while it runs (the sorter takes nodes and edges after
** prepare; added nodes' slots live in chunks the block frees, as slots
** never move once a task's list links them).
**
** A failure (without keep_going) stops the run: every running task is
** cancelled and nothing more starts; the caller is woken once no node
** task is left, then raises GraphError. A cancellation of the caller (or
** a Deadlock delivered to it) does the same and propagates that error.
**
** Ownership: the block is a userdata on the caller's stack for the whole
** run, and in the registry (g->ref) so that node_wake can reach its user
** values: where it was made, the sorter, work, results, failures, cancelled
** nodes, the chunks of node task memory and the env thread node_wake
** runs on (its stack holds the block and what push_env pushes, so a
** completion looks nothing up). g->ref lives until the last
** node task has finished, even when the caller stopped waiting; a node
** task's object, once made, holds the block too. Its __gc unlinks any slot
** still linked. User docs: docs/reference.md "Sorter and graph runner".
*/
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "sorter.h"

#define GRAPH_MT "weft.graph_run"

/* Most nodes one run_graph starts in one scheduler turn. A larger ready set
   starts over the next turns (the caller starts the rest), so a graph of
   100k independent quick nodes reuses a few hundred threads instead of
   holding 100k at once; nodes that wait stay running, as many as limit. */
#define STARTS_PER_TURN 128

enum {
  GV_WHERE = 1, GV_SORTER, GV_WORK, GV_RESULTS, GV_FAILURES,
  GV_CANCELLED, GV_CHUNKS, GV_ENV, GRAPH_NUV = GV_ENV
};

/* The caller's stack while it waits. */
enum { A_GRAPH = 1, A_WORK, A_OPTS, A_SORTER, A_BLOCK, A_SAVED };

typedef struct weft_graph weft_graph;

typedef struct graph_slot {
  weft_waiter w;          /* on the node task's completion list */
  weft_graph *g;
  weft_task *task;        /* while it runs */
  int id;                 /* its node */
} graph_slot;

#define EXTRA_SLOTS 64    /* slots of nodes added while running, per chunk */

struct weft_graph {
  weft_runtime *rt;
  weft_task *owner;
  weft_sorter *sorter;
  int ref;                /* registry ref to this block while it runs */
  int n;
  int limit;              /* most tasks at once, 0 for no limit */
  int keep_going;
  int running;
  int nfailures, ncancelled;
  int stopped;            /* a failure or an outside cancellation: start nothing */
  uint64_t turn;          /* the scheduler turn 'started' counts for */
  int started;            /* nodes started in that turn */
  int abandoned;          /* the caller left (interrupted twice): end quietly */
  weft_task_slab slab;    /* node task memory (task.c) */
  lua_State *env;         /* node_wake's own stack: block, then push_env's three */
  int total;              /* nodes, those added while running (add) included */
  graph_slot **extra;     /* slots of added nodes: chunks of EXTRA_SLOTS */
  int nextra;             /* chunks */
  graph_slot slots[1];    /* the first n nodes' */
};

/* The slot of node id: in the block for the graph's own nodes, in a chunk
   for added ones (slots never move: node tasks' lists link them). */
static graph_slot *slot_at(weft_graph *g, int id) {
  if (id < g->n)
    return &g->slots[id];
  id -= g->n;
  return &g->extra[id / EXTRA_SLOTS][id % EXTRA_SLOTS];
}

/* {======== options */

static int parse_limit(lua_State *L, int opts) {
  lua_Integer limit;
  int isint;
  if (lua_getfield(L, opts, "limit") == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  limit = lua_tointegerx(L, -1, &isint);
  if (!isint || limit < 1)
    luaL_argerror(L, opts, "limit must be a positive integer");
  lua_pop(L, 1);
  return limit > 0x7fffffff ? 0x7fffffff : (int)limit;
}

static int parse_keep_going(lua_State *L, int opts) {
  int keep;
  lua_getfield(L, opts, "keep_going");
  keep = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return keep;
}

/* }======== */

/* {======== starting and finishing nodes */

static void node_wake(weft_waiter *w, int reason);

static void init_slot(weft_graph *g, graph_slot *sl, int id) {
  weft_queue_init(&sl->w.node);
  sl->w.wake = node_wake;
  sl->g = g;
  sl->task = NULL;
  sl->id = id;
}

/* Cancels every running node task and starts nothing more. */
static void stop(lua_State *L, weft_graph *g) {
  int i;
  if (g->stopped)
    return;
  g->stopped = 1;
  for (i = 0; i < g->total && g->running > 0; i++)
    if (slot_at(g, i)->task != NULL)
      weft__task_cancel(L, slot_at(g, i)->task, 0);
}

/* What node_wake and start_ready use, pushed once at 'env' .. env + 2:
   work, the sorter, results. */
enum { E_WORK = 0, E_SORTER, E_RESULTS };

/* The env thread's stack (node_wake runs on it, with no lookups). */
enum { ENV_BLOCK = 1, ENV_ENV = 2, ENV_TOP = ENV_ENV + E_RESULTS };

static int push_env(lua_State *L, int gi) {
  int env = lua_gettop(L) + 1;
  lua_getiuservalue(L, gi, GV_WORK);
  lua_getiuservalue(L, gi, GV_SORTER);
  lua_getiuservalue(L, gi, GV_RESULTS);
  return env;
}

/* Spawns work(node, results) for node id. */
static void start_node(lua_State *L, weft_graph *g, int gi, int env, int id) {
  graph_slot *sl = slot_at(g, id);
  weft_task *t = weft__slab_take(L, &g->slab, gi, GV_CHUNKS);
  lua_pushvalue(L, env + E_WORK);
  weft__sorter_push_node(L, env + E_SORTER, id);
  lua_pushvalue(L, env + E_RESULTS);
  lua_pushvalue(L, gi);   /* the run, for add */
  weft__spawn_light(L, g->rt, t, 3, g->ref);
  t->label = g->owner->label;   /* node_wake runs with no current task */
  sl->task = t;
  weft_queue_insert_tail(&t->done.waiters, &sl->w.node);
  g->running++;
}

static int under_limit(weft_graph *g) {
  return !g->stopped && (g->limit == 0 || g->running < g->limit);
}

/* May one more node start now (the limit and this turn's starts allow)? */
static int may_start(weft_graph *g) {
  if (g->turn != g->rt->turns) {
    g->turn = g->rt->turns;
    g->started = 0;
  }
  return under_limit(g) && g->started < STARTS_PER_TURN;
}

/* Are there ready nodes that only this turn's count of starts holds back? */
static int feed_left(weft_graph *g) {
  return under_limit(g) && weft__sorter_nready(g->sorter) > 0;
}

/* Starts ready nodes while the limit and this turn's starts allow. */
static void start_ready(lua_State *L, weft_graph *g, int gi, int env) {
  while (may_start(g)) {
    int id = weft__sorter_pop_ready(g->sorter);
    if (id < 0)
      break;
    start_node(L, g, gi, env, id);
    g->started++;
  }
}

/* Appends the value on top to the array in user value uv of gi (pops it). */
static void append(lua_State *L, int gi, int uv, int *count) {
  lua_getiuservalue(L, gi, uv);
  lua_insert(L, -2);
  lua_rawseti(L, -2, ++*count);
  lua_pop(L, 1);
}

/* Pushes node id's value. */
static void push_node(lua_State *L, int gi, int id) {
  lua_getiuservalue(L, gi, GV_SORTER);
  weft__sorter_push_node(L, lua_gettop(L), id);
  lua_remove(L, -2);
}

/* Node id finished with the result on top (popped): results[node] = it. */
static void record_result(lua_State *L, weft_graph *g, int env, int id) {
  weft__sorter_set_at_node(L, env + E_SORTER, env + E_RESULTS, id);
  weft__sorter_done(g->sorter, id);
}

/* Records the outcome of node id, whose finished task is at ti. */
static void record(lua_State *L, weft_graph *g, int gi, int env, int id, weft_task *t,
                   int ti) {
  if (t->done.state == WEFT_DONE) {
    weft__push_outcome(L, ti);
    record_result(L, g, env, id);
  } else if (t->done.state == WEFT_CANCELLED && g->stopped) {
    push_node(L, gi, id);
    append(L, gi, GV_CANCELLED, &g->ncancelled);
  } else {
    weft__mark_observed(L, t);
    lua_createtable(L, 0, 2);
    push_node(L, gi, id);
    lua_setfield(L, -2, "node");
    weft__push_outcome(L, ti);
    lua_setfield(L, -2, "error");
    append(L, gi, GV_FAILURES, &g->nfailures);
    if (!g->keep_going)
      stop(L, g);
  }
}

/* The run no longer needs its block held: node tasks and node_wake are done. */
static void drop_ref(lua_State *L, weft_graph *g) {
  luaL_unref(L, LUA_REGISTRYINDEX, g->ref);
  g->ref = LUA_NOREF;
}

/* A node task finished (called from its completion list, no Lua running
   for it): record it, start what became ready, wake the caller at the end.
   Runs on the run's env thread, where what it needs is already pushed. A
   light task that returned has its first result on top of rt->L; its
   memory is reused from the next call on (its finish is still on the C
   stack). */
static void node_wake(weft_waiter *w, int reason) {
  graph_slot *sl = (graph_slot *)w;
  weft_graph *g = sl->g;
  weft_task *t = sl->task;
  lua_State *L = g->env;
  int id = sl->id;
  (void)reason;
  lua_checkstack(L, 16);
  g->running--;
  sl->task = NULL;
  if (t->light) {
    lua_pushvalue(g->rt->L, -1);
    lua_xmove(g->rt->L, L, 1);
    record_result(L, g, ENV_ENV, id);
    weft__slab_give(L, &g->slab, t);
  } else {
    weft__push_task(L, t);   /* finishing: the runtime still holds it */
    record(L, g, ENV_BLOCK, ENV_ENV, id, t, lua_gettop(L));
  }
  start_ready(L, g, ENV_BLOCK, ENV_ENV);
  lua_settop(L, ENV_TOP);
  if (g->abandoned) {
    if (g->running == 0)
      drop_ref(L, g);
  } else if (g->running == 0 || feed_left(g)) {
    weft__task_wake(g->owner, WEFT_WOKEN);
  }
}

/* }======== */

/* {======== growing while running: run:add(node [, preds]) */

/* Pushes the node at idx as messages show it: strings quoted. */
static const char *push_repr(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TSTRING)
    return lua_pushfstring(L, "\"%s\"", lua_tostring(L, idx));
  return luaL_tolstring(L, idx, NULL);
}

/* Makes sure the slot of node id (the next one) has memory, before the
   sorter knows the node: a failure then leaves nothing half made. */
static void reserve_slot(lua_State *L, weft_graph *g, int id) {
  int k = (id - g->n) / EXTRA_SLOTS;
  graph_slot **p;
  if (k < g->nextra)
    return;
  p = (graph_slot **)realloc(g->extra, (size_t)(k + 1) * sizeof *p);
  if (p == NULL)
    luaL_error(L, "run:add: not enough memory");
  g->extra = p;
  p[k] = (graph_slot *)malloc(EXTRA_SLOTS * sizeof **p);
  if (p[k] == NULL)
    luaL_error(L, "run:add: not enough memory");
  g->nextra = k + 1;
}

/* The node whose work is the running task, or -1 (add called from
   another task). A scan: add is rare next to the nodes' own traffic. */
static int running_node(weft_graph *g) {
  weft_task *me = g->rt->current;
  int i;
  for (i = 0; me != NULL && i < g->total; i++)
    if (slot_at(g, i)->task == me)
      return i;
  return -1;
}

typedef struct id_list { int *ids; int n; const weft_sorter *s; } id_list;

static void count_waiting(int id, void *arg) {
  id_list *l = (id_list *)arg;
  l->n += weft__sorter_state(l->s, id) == WEFT_NODE_WAITING;
}

static void keep_waiting(int id, void *arg) {
  id_list *l = (id_list *)arg;
  if (weft__sorter_state(l->s, id) == WEFT_NODE_WAITING)
    l->ids[l->n++] = id;
}

/* The waiting successors of node 'adder' (they wait for what it adds), in
   a scratch userdata pushed on L. */
static id_list waiting_succs(lua_State *L, weft_graph *g, int adder) {
  id_list l = { NULL, 0, g->sorter };
  if (adder >= 0)
    weft__sorter_each_succ(g->sorter, adder, count_waiting, &l);
  l.ids = (int *)lua_newuserdatauv(L, (size_t)l.n * sizeof(int) + 1, 0);
  l.n = 0;
  if (adder >= 0)
    weft__sorter_each_succ(g->sorter, adder, keep_waiting, &l);
  return l;
}

/* Raises the cycle that node (at 2) from pred p through successor q would
   close: node -> q -> ... -> p -> node. The path is in the sorter. */
static int cycle_error(lua_State *L, weft_graph *g, int sud) {
  const int *path;
  int len = weft__sorter_cycle(g->sorter, &path), i;
  luaL_Buffer b;
  push_repr(L, 2);
  luaL_buffinit(L, &b);
  lua_pushvalue(L, -2);
  luaL_addvalue(&b);
  for (i = 0; i < len; i++) {
    luaL_addstring(&b, " -> ");
    weft__sorter_push_node(L, sud, path[i]);
    push_repr(L, -1);
    lua_remove(L, -2);
    luaL_addvalue(&b);
  }
  luaL_addstring(&b, " -> ");
  lua_pushvalue(L, -2);
  luaL_addvalue(&b);
  luaL_pushresult(&b);
  weft__error_new(L, "CycleError", "run:add: adding %s would close a cycle: %s",
                  lua_tostring(L, -2), lua_tostring(L, -1));
  return lua_error(L);
}

/* Refuses preds that some successor of the adder reaches (a cycle). Only a
   waiting pred can be reached: everything after the adder waits for it. */
static void check_cycles(lua_State *L, weft_graph *g, int sud, const int *pids, int np,
                         id_list succs) {
  int i, j;
  for (i = 0; i < np; i++) {
    if (weft__sorter_state(g->sorter, pids[i]) != WEFT_NODE_WAITING)
      continue;
    for (j = 0; j < succs.n; j++) {
      int len = weft__sorter_path(g->sorter, succs.ids[j], pids[i]);
      if (len < 0)
        luaL_error(L, "run:add: not enough memory");
      if (len > 0)
        cycle_error(L, g, sud);
    }
  }
}

/* The ids of the preds listed at 3 (all must be nodes), in a scratch
   userdata pushed on L. */
static int *pred_ids(lua_State *L, int sud, int *np) {
  int n = lua_istable(L, 3) ? (int)lua_rawlen(L, 3) : 0, i;
  int *ids = (int *)lua_newuserdatauv(L, (size_t)n * sizeof(int) + 1, 0);
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, 3, i + 1);
    ids[i] = weft__sorter_lookup(L, sud, -1);
    if (ids[i] < 0) {
      push_repr(L, -1);
      push_repr(L, 2);
      luaL_error(L, "run:add: %s depends on unknown node %s", lua_tostring(L, -1),
                 lua_tostring(L, -2));
    }
    lua_pop(L, 1);
  }
  *np = n;
  return ids;
}

/* The node whose dependents wait for the new one: the one named at 4
   (it must be running), else the one whose work calls add, else none. */
static int adder_of(lua_State *L, weft_graph *g, int sud) {
  int id;
  if (lua_isnoneornil(L, 4))
    return running_node(g);
  id = weft__sorter_lookup(L, sud, 4);
  if (id < 0 || slot_at(g, id)->task == NULL) {
    push_repr(L, 4);
    luaL_error(L, "run:add: %s is not a running node", lua_tostring(L, -1));
  }
  return id;
}

/* run:add(node [, preds [, adder]]): a new node, run once every pred has
   finished; the nodes that depend on the adder (the running node named,
   else the one whose work calls add) also wait for it. Raises on a node
   already in the graph, an unknown pred, a cycle (CycleError) or a run
   that is stopping or over. */
static int graph_add(lua_State *L) {
  weft_graph *g = (weft_graph *)luaL_checkudata(L, 1, GRAPH_MT);
  int sud, np, id, i;
  int *pids;
  id_list succs;
  luaL_checkany(L, 2);
  if (lua_isnil(L, 2) || (lua_type(L, 2) == LUA_TNUMBER && lua_tonumber(L, 2) != lua_tonumber(L, 2)))
    luaL_argerror(L, 2, "a node cannot be nil or NaN");
  if (!lua_isnoneornil(L, 3))
    luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 4);
  if (g->ref == LUA_NOREF || g->stopped) {
    push_repr(L, 2);
    return luaL_error(L, "run:add: %s not added: the graph run %s", lua_tostring(L, -1),
                      g->ref == LUA_NOREF ? "has ended" : "is stopping (a failure or a cancellation)");
  }
  lua_getiuservalue(L, 1, GV_SORTER);
  sud = lua_gettop(L);                                  /* 5 */
  if (weft__sorter_lookup(L, sud, 2) >= 0) {
    push_repr(L, 2);
    return luaL_error(L, "run:add: node %s is already in the graph", lua_tostring(L, -1));
  }
  pids = pred_ids(L, sud, &np);                         /* 6 */
  succs = waiting_succs(L, g, adder_of(L, g, sud));     /* 7 */
  check_cycles(L, g, sud, pids, np, succs);
  reserve_slot(L, g, g->total);
  id = weft__sorter_intern_live(L, sud, 2);
  init_slot(g, slot_at(g, id), id);
  g->total = id + 1;
  for (i = 0; i < np; i++)
    if (weft__sorter_edge_live(g->sorter, pids[i], id) < 0)
      return luaL_error(L, "run:add: not enough memory");
  for (i = 0; i < succs.n; i++)
    if (weft__sorter_edge_live(g->sorter, id, succs.ids[i]) < 0)
      return luaL_error(L, "run:add: not enough memory");
  if (weft__sorter_release(g->sorter, id)) {
    start_ready(L, g, 1, push_env(L, 1));
    if (feed_left(g))
      weft__task_wake(g->owner, WEFT_WOKEN);
  }
  return 0;
}

/* }======== */

/* {======== the block */

static void unlink_all(weft_graph *g) {
  int i;
  for (i = 0; i < g->total; i++)
    if (weft_queue_linked(&slot_at(g, i)->w.node))
      weft_queue_remove(&slot_at(g, i)->w.node);
}

static int graph_gc(lua_State *L) {
  weft_graph *g = (weft_graph *)lua_touserdata(L, 1);
  int i;
  unlink_all(g);
  weft__slab_free(&g->slab);
  for (i = 0; i < g->nextra; i++)
    free(g->extra[i]);
  free(g->extra);
  g->extra = NULL;
  g->nextra = 0;
  g->total = g->n;
  return 0;
}

/* Pushes a new block for the prepared sorter at A_SORTER. */
static weft_graph *new_block(lua_State *L, weft_runtime *rt, weft_task *owner,
                             weft_sorter *s) {
  int n = weft__sorter_count(s), i;
  size_t size = sizeof(weft_graph) + (size_t)(n > 0 ? n - 1 : 0) * sizeof(graph_slot);
  weft_graph *g = (weft_graph *)lua_newuserdatauv(L, size, GRAPH_NUV);
  memset(g, 0, sizeof *g);
  g->rt = rt;
  g->owner = owner;
  g->sorter = s;
  g->n = n;
  g->ref = LUA_NOREF;
  memset(&g->slab, 0, sizeof g->slab);
  g->total = n;
  for (i = 0; i < n; i++)
    init_slot(g, &g->slots[i], i);
  luaL_setmetatable(L, GRAPH_MT);
  weft__where(L, 1);
  lua_setiuservalue(L, -2, GV_WHERE);
  lua_pushvalue(L, A_SORTER);
  lua_setiuservalue(L, -2, GV_SORTER);
  lua_pushvalue(L, A_WORK);
  lua_setiuservalue(L, -2, GV_WORK);
  weft__sorter_push_table(L, A_SORTER);
  lua_setiuservalue(L, -2, GV_RESULTS);
  for (i = GV_FAILURES; i <= GV_CHUNKS; i++) {
    lua_newtable(L);
    lua_setiuservalue(L, -2, i);
  }
  g->env = lua_newthread(L);
  lua_pushvalue(L, -2);
  lua_xmove(L, g->env, 1);                 /* ENV_BLOCK */
  push_env(g->env, ENV_BLOCK);             /* ENV_ENV .. ENV_TOP */
  lua_setiuservalue(L, -2, GV_ENV);
  return g;
}

/* }======== */

/* {======== the caller's side */

/* Pushes the nodes whose work never started, in first-mention order. */
static void push_skipped(lua_State *L, weft_graph *g) {
  int i, k = 0;
  lua_newtable(L);
  for (i = 0; i < g->total; i++) {
    int st = weft__sorter_state(g->sorter, i);
    if (st == WEFT_NODE_WAITING || st == WEFT_NODE_READY) {
      push_node(L, A_BLOCK, i);
      lua_rawseti(L, -2, ++k);
    }
  }
}

static int raise_graph_error(lua_State *L, weft_graph *g) {
  int base = lua_gettop(L);
  lua_getiuservalue(L, A_BLOCK, GV_FAILURES);          /* base + 1 */
  lua_rawgeti(L, base + 1, 1);                          /* base + 2 first */
  lua_getfield(L, base + 2, "node");                    /* base + 3 */
  if (lua_type(L, base + 3) == LUA_TSTRING)
    lua_pushfstring(L, "\"%s\"", lua_tostring(L, base + 3));
  else
    luaL_tolstring(L, base + 3, NULL);                  /* base + 4 */
  lua_getfield(L, base + 2, "error");
  luaL_tolstring(L, -1, NULL);                          /* base + 6 */
  weft__error_new(L, "GraphError", "%d node%s failed, the first (%s) with: %s",
                  g->nfailures, g->nfailures == 1 ? "" : "s",
                  lua_tostring(L, base + 4), lua_tostring(L, base + 6));
  lua_pushvalue(L, base + 1);
  lua_setfield(L, -2, "failures");
  push_skipped(L, g);
  lua_setfield(L, -2, "skipped");
  lua_getiuservalue(L, A_BLOCK, GV_CANCELLED);
  lua_setfield(L, -2, "cancelled");
  lua_getiuservalue(L, A_BLOCK, GV_RESULTS);
  lua_setfield(L, -2, "results");
  return lua_error(L);
}

/* Every node task has finished: return the results or raise. */
static int graph_end(lua_State *L, weft_graph *g) {
  drop_ref(L, g);
  if (!lua_isnil(L, A_SAVED)) {
    lua_pushvalue(L, A_SAVED);
    return lua_error(L);
  }
  if (g->nfailures > 0)
    return raise_graph_error(L, g);
  lua_getiuservalue(L, A_BLOCK, GV_RESULTS);
  return 1;
}


static int finish_graph(lua_State *L, int status, lua_KContext ctx);

/* The caller's loop: start what may start, then come back next turn if
   ready nodes are left, wait for a node to finish if some run, or end. */
static int drive_graph(lua_State *L, weft_graph *g, weft_task *t) {
  start_ready(L, g, A_BLOCK, push_env(L, A_BLOCK));
  lua_settop(L, A_SAVED);
  if (feed_left(g))
    return weft__requeue(L, t, 0, finish_graph);
  if (g->running > 0)
    return weft__suspend(L, t, "run_graph", A_BLOCK, 0, finish_graph);
  return graph_end(L, g);
}

static int finish_graph(lua_State *L, int status, lua_KContext ctx) {
  weft_graph *g = (weft_graph *)lua_touserdata(L, A_BLOCK);
  weft_task *t = g->owner;
  (void)status;
  (void)ctx;
  if (t->deliver) {
    if (!lua_isnil(L, A_SAVED)) {
      /* interrupted again: stop waiting; the block stays held (its memory
         is the running node tasks') until the last of them has finished */
      g->abandoned = 1;
      if (g->running == 0)
        drop_ref(L, g);
      return weft__raise_pending(L, t);
    }
    weft__take_pending(L, t);   /* the caller's cancellation or Deadlock, raised at the end */
    lua_replace(L, A_SAVED);
    stop(L, g);
  }
  return drive_graph(L, g, t);
}

/* weft.run_graph(graph, work [, opts]) */
static int graph_run(lua_State *L) {
  weft_runtime *rt = WEFT_UPRT(L);
  weft_task *t = weft__current(L, rt, "weft.run_graph");
  weft_sorter *s;
  weft_graph *g;
  int limit = 0, keep_going = 0;
  luaL_checktype(L, A_GRAPH, LUA_TTABLE);
  if (lua_type(L, A_WORK) != LUA_TFUNCTION &&
      luaL_getmetafield(L, A_WORK, "__call") == LUA_TNIL)
    luaL_typeerror(L, A_WORK, "function");
  if (!lua_isnoneornil(L, A_OPTS)) {
    luaL_checktype(L, A_OPTS, LUA_TTABLE);
    limit = parse_limit(L, A_OPTS);
    keep_going = parse_keep_going(L, A_OPTS);
  }
  lua_settop(L, A_OPTS);
  s = weft__sorter_push_graph(L, A_GRAPH);            /* A_SORTER */
  weft__sorter_prepare_or_raise(L, A_SORTER);
  g = new_block(L, rt, t, s);                          /* A_BLOCK */
  g->limit = limit;
  g->keep_going = keep_going;
  lua_pushnil(L);                                      /* A_SAVED */
  lua_pushvalue(L, A_BLOCK);
  g->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return drive_graph(L, g, t);
}

/* }======== */

static const luaL_Reg graph_funcs[] = {
  {"run_graph", graph_run},
  {NULL, NULL}
};

static const luaL_Reg graph_methods[] = {
  {"add", graph_add},
  {NULL, NULL}
};

static const luaL_Reg graph_metas[] = {
  {"__gc", graph_gc},
  {NULL, NULL}
};

int weft__open_graph(lua_State *L, weft_runtime *rt) {
  weft__class(L, rt, GRAPH_MT, graph_methods, NULL, graph_metas);
  lua_pop(L, 1);
  lua_pushlightuserdata(L, rt);
  luaL_setfuncs(L, graph_funcs, 1);
  return 0;
}
