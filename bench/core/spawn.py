"""The asyncio peer of spawn.lua: create_task + gather of N tasks whose body
is `await asyncio.sleep(0)`, BATCH tasks created before they are gathered.
    python3 spawn.py N BATCH
Prints one line of key=value pairs; time is wall seconds inside the loop."""
import asyncio
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000
BATCH = int(sys.argv[2]) if len(sys.argv) > 2 else 1000


async def body():
    await asyncio.sleep(0)


async def main():
    create_task, gather = asyncio.create_task, asyncio.gather
    t0 = time.perf_counter()
    for _ in range(N // BATCH):
        tasks = [create_task(body()) for _ in range(BATCH)]
        await gather(*tasks)
    return time.perf_counter() - t0


dt = asyncio.run(main())
print("time=%.4f us_per_task=%.3f n=%d batch=%d" % (dt, dt / N * 1e6, N, BATCH))
