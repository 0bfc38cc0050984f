"""The upstream stub: `GET /delay?ms=N` answers after N ms, so the `http` workload measures how the
target waits on a slow dependency (httpx.Client in def, httpx.AsyncClient in async), not the
dependency. It must never be the bottleneck: stdlib asyncio.Protocol, HTTP/1.1 keep-alive, timers
via loop.call_later (no task per request), one request at a time per connection (pipelined requests
wait in the buffer, so responses keep their order).

`python -m upstream.server [--bind 127.0.0.1] [--port 8100]`, or UPSTREAM_BIND / UPSTREAM_PORT.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import signal
import sys

MAX_MS = 60_000
MAX_HEAD = 16_384  # a request head larger than this is refused
MAX_BUFFER = 65_536  # pipelined bytes held while a delay runs; reading pauses beyond this
REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 405: b"Method Not Allowed"}


def command(python: str, bind: str, port: int) -> list[str]:
    """The argv that starts the stub (for the runner; tests read it)."""
    return [python, "-m", "upstream.server", "--bind", bind, "--port", str(port)]


def response(status: int, body: bytes, close: bool, head_only: bool = False, extra: bytes = b"") -> bytes:
    conn = b"Connection: close\r\n" if close else b"Connection: keep-alive\r\n"
    return b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s%s\r\n%s" % (
        status, REASONS[status], len(body), conn, extra, b"" if head_only else body
    )


def route(method: bytes, target: bytes) -> tuple[int, bytes, int, bytes]:
    """(status, body, delay ms, extra headers) for one request."""
    path, _, query = target.partition(b"?")
    if path == b"/healthz":
        if method in (b"GET", b"HEAD"):
            return 200, b'{"status":"ok"}', 0, b""
        return 405, b'{"error":"method not allowed"}', 0, b"Allow: GET, HEAD\r\n"
    if path != b"/delay":
        return 404, b'{"error":"not found"}', 0, b""
    if method != b"GET":
        return 405, b'{"error":"method not allowed"}', 0, b"Allow: GET\r\n"
    ms = -1
    for pair in query.split(b"&"):
        key, _, value = pair.partition(b"=")
        if key == b"ms":
            ms = int(value) if value.isdigit() and len(value) <= 5 else -1
    if not 0 <= ms <= MAX_MS:
        return 400, b'{"error":"ms must be an integer from 0 to 60000"}', 0, b""
    return 200, b'{"ok":true,"ms":%d}' % ms, ms, b""


class Http(asyncio.Protocol):
    def __init__(self, live: set[Http]) -> None:
        self.live = live
        self.buf = bytearray()
        self.skip = 0  # request body bytes still to discard
        self.busy = False  # a delayed response is pending
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.live.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.live.discard(self)
        self.transport = None
        if self.timer is not None:
            self.timer.cancel()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.busy:
            if len(self.buf) > MAX_BUFFER and self.transport is not None:
                self.transport.pause_reading()
        else:
            self.process()

    def process(self) -> None:
        while self.transport is not None and not self.busy:
            if self.skip:
                n = min(self.skip, len(self.buf))
                del self.buf[:n]
                self.skip -= n
                if self.skip:
                    return
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    self.reply(response(400, b'{"error":"request head too large"}', True), True)
                return
            head = bytes(self.buf[:end]).split(b"\r\n")
            del self.buf[: end + 4]
            parts = head[0].split(b" ")
            if len(parts) != 3 or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0") or not parts[1].startswith(b"/"):
                self.reply(response(400, b'{"error":"bad request line"}', True), True)
                return
            method, target, version = parts
            tokens: list[bytes] = []
            for line in head[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"connection":
                    tokens += [t.strip().lower() for t in value.split(b",")]
                elif name == b"content-length" and value.strip().isdigit():
                    self.skip = int(value)
                elif name in (b"content-length", b"transfer-encoding"):  # a body we cannot skip
                    self.reply(response(400, b'{"error":"unsupported body"}', True), True)
                    return
            close = b"close" in tokens if version == b"HTTP/1.1" else b"keep-alive" not in tokens
            status, body, ms, extra = route(method, target)
            data = response(status, body, close, method == b"HEAD", extra)
            if ms:
                self.busy = True
                self.timer = asyncio.get_running_loop().call_later(ms / 1000, self.finish, data, close)
                return
            self.reply(data, close)

    def reply(self, data: bytes, close: bool) -> None:
        if self.transport is not None:
            self.transport.write(data)
            if close:
                self.transport.close()
                self.transport = None

    def finish(self, data: bytes, close: bool) -> None:
        self.busy, self.timer = False, None
        self.reply(data, close)
        if self.transport is not None:
            self.transport.resume_reading()
            self.process()


async def serve(bind: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    live: set[Http] = set()
    server = await loop.create_server(lambda: Http(live), bind, port, reuse_address=True, backlog=1024)
    host = f"[{bind}]" if ":" in bind else bind
    print(f"upstream: listening on http://{host}:{port}", file=sys.stderr)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    for conn in list(live):
        if conn.transport is not None:
            conn.transport.abort()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="upstream", description="delay stub for the http workload")
    parser.add_argument("--bind", default=os.environ.get("UPSTREAM_BIND", "127.0.0.1"))
    parser.add_argument("--port", default=os.environ.get("UPSTREAM_PORT", "8100"))
    args = parser.parse_args(argv)
    try:
        bind = str(ipaddress.ip_address(args.bind))
    except ValueError:
        print(f"upstream: --bind {args.bind!r} is not an IP address literal", file=sys.stderr)
        return 2
    port = int(args.port) if args.port.isdigit() and len(args.port) <= 5 else 0
    if not 1 <= port <= 65535:
        print(f"upstream: --port {args.port!r} is not a port from 1 to 65535", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(bind, port))
    except OSError as exc:
        print(f"upstream: cannot listen on {bind} port {port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
