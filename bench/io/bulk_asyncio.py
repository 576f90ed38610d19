# Bulk echo with Python asyncio streams: BYTES (default 1 GiB) in 64 KiB writes.
import asyncio, sys, time

TOTAL = int(sys.argv[1]) if len(sys.argv) > 1 else 1 << 30
BLOCK = b"x" * 65536

async def handle(r, w):
    while True:
        data = await r.read(65536)
        if not data:
            break
        w.write(data)
        await w.drain()
    w.write_eof()
    await w.drain()
    w.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    r, w = await asyncio.open_connection("127.0.0.1", port)
    t0 = time.perf_counter()

    async def writer():
        for _ in range(TOTAL // len(BLOCK)):
            w.write(BLOCK)
            await w.drain()
        w.write_eof()

    wt = asyncio.create_task(writer())
    got = 0
    while True:
        data = await r.read(1 << 20)
        if not data:
            break
        got += len(data)
    await wt
    dt = time.perf_counter() - t0
    assert got == TOTAL, "short echo"
    print("asyncio streams: %d MiB echoed in %.3f s" % (TOTAL >> 20, dt))
    w.close()
    server.close()

asyncio.run(main())
