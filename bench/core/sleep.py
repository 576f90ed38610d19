"""The asyncio peer of sleep.lua: N tasks sleeping S seconds concurrently
(create_task + gather). Prints wall, base_kb (VmRSS inside the loop before
the tasks), peak_kb (VmHWM at the end), bytes_per_task.
    python3 sleep.py N S"""
import asyncio
import re
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
S = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0


def status_kb(key):
    with open("/proc/self/status") as f:
        return int(re.search(key + r":\s*(\d+) kB", f.read()).group(1))


async def main():
    base = status_kb("VmRSS")
    t0 = time.perf_counter()
    tasks = [asyncio.create_task(asyncio.sleep(S)) for _ in range(N)]
    await asyncio.gather(*tasks)
    return base, time.perf_counter() - t0


base, wall = asyncio.run(main())
peak = status_kb("VmHWM")
print("wall=%.4f base_kb=%d peak_kb=%d bytes_per_task=%.0f n=%d"
      % (wall, base, peak, (peak - base) * 1024 / N, N))
