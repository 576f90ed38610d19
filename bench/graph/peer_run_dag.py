"""The Python peer: the seed's run_dag (graphlib + asyncio.TaskGroup +
asyncio.wait(FIRST_COMPLETED)), on the same generated graphs as
gen.lua, with no-op bodies that yield once (await asyncio.sleep(0)).
A limit is a semaphore around the body, as in the seed, so every ready
node is a pending task that asyncio.wait watches.

usage: python3 peer_run_dag.py layered|wide N [LIMIT]
prints: <seconds for run_dag>
"""
import asyncio
import graphlib
import sys
import time


def layered(n, width=100, deps=3):
    g = {}
    for i in range(1, n + 1):
        layer, pos = (i - 1) // width, (i - 1) % width
        preds = []
        if layer > 0:
            for k in range(deps):
                preds.append((layer - 1) * width + (pos + k) % width + 1)
        g[i] = preds
    return g


def wide(n):
    return {i: [] for i in range(1, n + 1)}


async def run_dag(graph, work, limit=None):
    ts = graphlib.TopologicalSorter(graph)
    ts.prepare()
    sem = asyncio.Semaphore(limit) if limit else None
    results = {}

    async def run(node):
        if sem is None:
            return await work(node, results)
        async with sem:
            return await work(node, results)

    pending = {}
    async with asyncio.TaskGroup() as tg:
        while ts.is_active():
            for node in ts.get_ready():
                pending[tg.create_task(run(node))] = node
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                node = pending.pop(t)
                results[node] = t.result()
                ts.done(node)
    return results


async def work(node, results):
    await asyncio.sleep(0)
    return node


def main():
    kind, n = sys.argv[1], int(sys.argv[2])
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else None
    g = layered(n) if kind == "layered" else wide(n)
    t0 = time.perf_counter()
    r = asyncio.run(run_dag(g, work, limit))
    t = time.perf_counter() - t0
    assert len(r) == n
    print(f"{t:.4f}")


main()
