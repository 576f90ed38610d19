"""graphlib.TopologicalSorter.static_order on N nodes with predecessors
(i - 1, (i + 1) // 2, (i + 2) // 3), built with add(), as static_order.lua does.
With "graph" as second argument, the graph is first built as a dict (not
timed, not counted) and given to TopologicalSorter(graph).
usage: python3 peer_static_order.py N [graph]
prints: <seconds for add + static_order> <VmHWM growth in MB>"""
import graphlib
import sys
import time


def vm(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024


n = int(sys.argv[1])
graph = None
if len(sys.argv) > 2 and sys.argv[2] == "graph":
    graph = {1: []}
    for i in range(2, n + 1):
        graph[i] = [i - 1, (i + 1) // 2, (i + 2) // 3]
base = vm("VmRSS")
t0 = time.process_time()
if graph is not None:
    ts = graphlib.TopologicalSorter(graph)
else:
    ts = graphlib.TopologicalSorter()
    for i in range(1, n + 1):
        if i > 1:
            ts.add(i, i - 1, (i + 1) // 2, (i + 2) // 3)
        else:
            ts.add(i)
order = list(ts.static_order())
t = time.process_time() - t0
assert len(order) == n and order[0] == 1
print(f"{t:.4f} {vm('VmHWM') - base:.1f}")
