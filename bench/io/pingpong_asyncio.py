# Line ping-pong over loopback TCP with Python asyncio streams: N round trips.
import asyncio, sys, time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100000

async def handle(r, w):
    while True:
        line = await r.readline()
        if not line:
            break
        w.write(line)
        await w.drain()
    w.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    r, w = await asyncio.open_connection("127.0.0.1", port)
    t0 = time.perf_counter()
    for _ in range(N):
        w.write(b"ping\n")
        await w.drain()
        await r.readline()
    dt = time.perf_counter() - t0
    print("asyncio streams: %d round trips, %.2f us each" % (N, dt / N * 1e6))
    w.close()
    await w.wait_closed()
    await asyncio.sleep(0.01)
    server.close()
    await server.wait_closed()

asyncio.run(main())
