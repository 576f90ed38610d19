# HTTP: N GETs (default 10000) of URL with a Python asyncio keep-alive client
# (asyncio streams, no third-party modules): C connections, each a worker
# sending one request at a time and reading Content-Length bytes back.
import asyncio, sys, time
from urllib.parse import urlsplit

URL = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
C = int(sys.argv[3]) if len(sys.argv) > 3 else 50
u = urlsplit(URL)
REQ = ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: bench\r\n\r\n" % (u.path or "/", u.netloc)).encode()
left = N

async def worker():
    global left
    r, w = await asyncio.open_connection(u.hostname, u.port or 80)
    got = 0
    while left > 0:
        left -= 1
        w.write(REQ)
        status = await r.readline()
        assert b" 200 " in status, status
        length = 0
        while True:
            line = await r.readline()
            if line == b"\r\n":
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        got += len(await r.readexactly(length))
    w.close()
    return got

async def main():
    t0 = time.perf_counter()
    got = sum(await asyncio.gather(*(worker() for _ in range(C))))
    print("asyncio keep-alive: %d GETs in %.3f s (%d bytes)" % (N, time.perf_counter() - t0, got))

asyncio.run(main())
