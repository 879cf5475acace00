"""Opens N keep-alive connections to 127.0.0.1:PORT from source addresses 127.0.0.SRC..,
sends one request on each and reads its answer, then keeps them all open (idle)
until a line arrives on stdin, then closes them. Prints "open N" once all are open,
"closed" at the end.

usage: idle_conns.py N PORT FIRST_SRC_OCTET
"""
import asyncio
import sys

PER_SOURCE = 10000
REQUEST = b"GET / HTTP/1.1\r\nHost: idle\r\n\r\n"


async def one(port, src, sem, conns):
    async with sem:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, local_addr=(src, 0), limit=4096
        )
        writer.write(REQUEST)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        conns.append(writer)


async def main():
    n, port, first = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    sem = asyncio.Semaphore(256)
    conns = []
    tasks = [
        one(port, f"127.0.0.{first + i // PER_SOURCE}", sem, conns) for i in range(n)
    ]
    await asyncio.gather(*tasks)
    print(f"open {len(conns)}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for w in conns:
        w.close()
    print("closed", flush=True)


asyncio.run(main())
