"""OTLP/HTTP ingestion on three HTTP servers: the measurement for choosing the library under the
HTTP endpoints (issue 14, part 4).

Each server answers ``POST /v1/traces`` the same way: read the protobuf body, decode it with the
processor's own ``decode_trace_request``, hand it to a consumer that accepts (no pipeline: this
measures the HTTP layer plus decode), answer an ``ExportTraceServiceResponse``:

(a) the receiver: ``HttpReceiver`` (on the stdlib ``BoundedHTTPServer`` when this was measured;
    on the aiohttp ``receive/http_server.HttpServer`` since the move, measured before/after by
    ``bench/http_ingest.py``);
(b) aiohttp (``web.Application`` on its own event-loop thread; decode in the loop);
(c) uvicorn (httptools parser) with a bare ASGI app (no framework), same decode.

Clients: ``--clients`` threads, each a keep-alive ``http.client`` connection sending
``--requests`` requests of ``--spans`` GenAI spans. Rounds alternate the servers; medians and
ratios to (a) from the same run.

    python bench/http_servers.py [--rounds 3] [--clients 4] [--requests 60] [--spans 512]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from http_ingest import drive as _drive  # bench/: the same load client for both benchmarks
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from gensight.processor.receive.admission import ACCEPTED
from gensight.processor.receive.decode import decode_trace_request
from gensight.processor.receive.http_receiver import HttpReceiver, HttpReceiverConfig

RESPONSE = ExportTraceServiceResponse().SerializeToString()
MAX_BODY_BYTES = 64 * 1024 * 1024


def payload(spans: int) -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="bench")))
    ss = rs.scope_spans.add()
    for i in range(spans):
        s = ss.spans.add(name="chat gpt-4o-mini", trace_id=i.to_bytes(16, "big"), span_id=i.to_bytes(8, "big"))
        s.start_time_unix_nano = 1_700_000_000_000_000_000 + i * 1_000_000
        s.end_time_unix_nano = s.start_time_unix_nano + 500_000_000
        for k, v in (("gen_ai.operation.name", "chat"), ("gen_ai.provider.name", "openai"),
                     ("gen_ai.request.model", "gpt-4o-mini"), ("http.method", "POST")):
            s.attributes.append(KeyValue(key=k, value=AnyValue(string_value=v)))
        for k, n in (("gen_ai.usage.input_tokens", 120), ("gen_ai.usage.output_tokens", 40)):
            s.attributes.append(KeyValue(key=k, value=AnyValue(int_value=n)))
    return req.SerializeToString()


def consume(request: Any, raw: bytes | None = None) -> Any:
    return ACCEPTED


# -- the three servers: each returns (port, stop) ------------------------------------------------------

def start_receiver() -> tuple[int, Callable[[], None]]:
    cfg = HttpReceiverConfig(endpoint="127.0.0.1:0")
    cfg.validate()
    rx = HttpReceiver(cfg, consume)
    rx.start()
    return rx.port, lambda: rx.stop(1.0)


def start_aiohttp() -> tuple[int, Callable[[], None]]:
    from aiohttp import web

    async def traces(request: Any) -> Any:
        body = await request.read()
        consume(decode_trace_request(body), body)
        return web.Response(body=RESPONSE, content_type="application/x-protobuf")

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post("/v1/traces", traces)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)

    return port, stop


def start_uvicorn() -> tuple[int, Callable[[], None]]:
    import socket

    import uvicorn

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        more = True
        while more:
            msg = await receive()
            chunks.append(msg.get("body", b""))
            more = msg.get("more_body", False)
        body = b"".join(chunks)
        consume(decode_trace_request(body), body)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/x-protobuf")]})
        await send({"type": "http.response.body", "body": RESPONSE})

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, http="httptools", lifespan="off", log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(5)
        sock.close()

    return port, stop


SERVERS = {"(a) HttpReceiver": start_receiver, "(b) aiohttp": start_aiohttp, "(c) uvicorn + ASGI": start_uvicorn}


def drive(port: int, body: bytes, clients: int, requests: int) -> float:
    """``clients`` keep-alive connections posting ``body`` ``requests`` times each; seconds taken."""
    return _drive(port, body, clients, requests, {"Content-Type": "application/x-protobuf"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=60, help="per client")
    ap.add_argument("--spans", type=int, default=512, help="per request")
    args = ap.parse_args()
    body = payload(args.spans)
    total_spans = args.clients * args.requests * args.spans
    rates: dict[str, list[float]] = {name: [] for name in SERVERS}
    for _ in range(args.rounds):
        for name, start in SERVERS.items():
            port, stop = start()
            try:
                drive(port, body, args.clients, 3)  # warm up
                rates[name].append(total_spans / drive(port, body, args.clients, args.requests))
            finally:
                stop()
    base = statistics.median(rates["(a) HttpReceiver"])
    print(f"{len(body)} B requests of {args.spans} spans, {args.clients} keep-alive clients x {args.requests}, "
          f"{args.rounds} rounds")
    for name, r in rates.items():
        med = statistics.median(r)
        print(f"{name:30s} {med / 1e3:8.1f} k spans/s  ratio {med / base:.2f}  (rounds: "
              f"{', '.join(f'{x / 1e3:.0f}k' for x in r)})")


if __name__ == "__main__":
    main()
