"""The shared HTTP server's bounds (receive/http_server.py), each against real sockets on loopback:
connection limit, slow and idle clients, body limits, clients that stop reading, auth, worker
threads, shutdown."""

from __future__ import annotations

import http.client
import logging
import socket
import threading
import time

import pytest
from aiohttp import web

from gensight.processor.receive.http_server import BodyError, HttpServer, read_body

IDLE_S = 0.5
LIMIT_BYTES = 1024
BIG_ANSWER_BYTES = 64 << 20  # far more than loopback socket buffers hold


async def echo(request: web.Request) -> web.Response:
    try:
        body = await read_body(request, LIMIT_BYTES, IDLE_S)
    except BodyError as exc:
        response = web.Response(status=exc.status, text=exc.message)
        response.force_close()
        return response
    return web.Response(body=body)


async def big(request: web.Request) -> web.Response:
    return web.Response(body=b"x" * BIG_ANSWER_BYTES)


@pytest.fixture
def serve():
    started: list[HttpServer] = []

    def start(**kw) -> HttpServer:
        kw.setdefault("routes", [web.post("/echo", echo), web.get("/big", big), web.get("/healthz", echo)])
        kw.setdefault("max_connections", 4)
        srv = HttpServer("test", "127.0.0.1", 0, client_max_size=LIMIT_BYTES, idle_timeout_s=IDLE_S, **kw)
        srv.start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.shutdown(1.0)


def connect(srv: HttpServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", srv.port), timeout=5)


def closed_within(sock: socket.socket, timeout_s: float) -> bool:
    """True when the server closes ``sock`` (EOF or reset) within ``timeout_s``; drains what it sent."""
    sock.settimeout(timeout_s)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if not sock.recv(1 << 20):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return False


def wait_until(predicate, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return bool(predicate())


# -- connections ---------------------------------------------------------------------------------


def test_a_connection_beyond_the_limit_gets_503_at_once(serve):
    srv = serve(max_connections=2)
    held = [connect(srv) for _ in range(2)]
    try:
        assert wait_until(lambda: srv.open_connections == 2)
        with connect(srv) as extra:
            head = extra.recv(200)
        assert head.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in head
        assert srv.busy_rejections == 1 and srv.open_connections == 2
    finally:
        for s in held:
            s.close()


def test_a_closed_connection_frees_its_slot(serve):
    srv = serve(max_connections=1)
    with connect(srv):
        assert wait_until(lambda: srv.open_connections == 1)
    assert wait_until(lambda: srv.open_connections == 0)
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    conn.request("POST", "/echo", body=b"hello")
    assert conn.getresponse().read() == b"hello"
    conn.close()
    assert srv.busy_rejections == 0


# -- slow and idle clients ---------------------------------------------------------------------------


def test_an_idle_connection_is_closed_after_the_idle_timeout(serve):
    srv = serve()
    with connect(srv) as s:
        assert closed_within(s, IDLE_S * 6)


def test_a_slowloris_trickling_its_head_is_cut_after_the_idle_timeout(serve):
    srv = serve()
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200
    with connect(srv) as s:
        started = time.monotonic()
        cut = False
        for byte in head:  # one byte every 20 ms: never a complete head
            try:
                s.sendall(bytes([byte]))
            except OSError:
                cut = True
                break
            time.sleep(0.02)
            if time.monotonic() - started > IDLE_S * 6:
                break
        assert cut or closed_within(s, 0.5)
        assert time.monotonic() - started < IDLE_S * 6


def test_a_body_that_does_not_arrive_in_time_is_408(serve):
    srv = serve()
    with connect(srv) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        s.settimeout(IDLE_S * 6)
        assert s.recv(100).startswith(b"HTTP/1.1 408")


def test_a_client_that_stops_reading_its_answer_is_cut(serve):
    srv = serve()
    with connect(srv) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_until(lambda: srv.open_connections == 1)
        # never read: the server's send buffer fills, and after the idle timeout it lets go
        assert wait_until(lambda: srv.open_connections == 0, timeout_s=IDLE_S * 10)


# -- bodies ------------------------------------------------------------------------------------------


def test_a_declared_length_over_the_limit_is_413_before_the_body_is_sent(serve):
    srv = serve()
    with connect(srv) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10737418240\r\n\r\n")  # 10 GiB, none sent
        s.settimeout(5)
        assert s.recv(100).startswith(b"HTTP/1.1 413")


def test_a_chunked_body_over_the_limit_is_413(serve):
    srv = serve()
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    conn.request("POST", "/echo", body=iter([b"x" * 600, b"y" * 600]), encode_chunked=True)
    assert conn.getresponse().status == 413
    conn.close()


def test_a_body_without_length_or_chunking_is_411(serve):
    srv = serve()
    with connect(srv) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 411")


def test_a_head_the_parser_refuses_is_400_counted_and_not_logged_above_debug(serve, caplog):
    srv = serve()
    with caplog.at_level(logging.INFO), connect(srv) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nX-Bad: SECRET\x7fb\r\nContent-Length: 0\r\n\r\n")
        assert s.recv(100).split(b"\r\n")[0].endswith(b" 400 Bad Request")
        assert wait_until(lambda: srv.protocol_errors == 1)
    assert "SECRET" not in caplog.text


def test_gzip_bodies_are_not_inflated_by_the_server(serve):
    import gzip

    srv = serve()
    packed = gzip.compress(b"\0" * 100_000)  # small on the wire, 100 kB inflated: over the limit if inflated
    assert len(packed) < LIMIT_BYTES
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    conn.request("POST", "/echo", body=packed, headers={"Content-Encoding": "gzip"})
    assert conn.getresponse().read() == packed
    conn.close()


# -- auth, workers, shutdown --------------------------------------------------------------------------


def test_auth_guards_every_path_but_the_public_ones(serve):
    srv = serve(auth=lambda request: request.headers.get("Authorization") == "Bearer t", public_paths=("/healthz",))
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    conn.request("POST", "/echo", body=b"x")
    resp = conn.getresponse()
    assert resp.status == 401 and resp.getheader("WWW-Authenticate").startswith("Bearer")
    assert resp.getheader("Connection") == "close"
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    conn.request("POST", "/echo", body=b"x", headers={"Authorization": "Bearer t"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == b"x"
    conn.request("GET", "/healthz", headers={"Content-Length": "0"})
    assert conn.getresponse().status == 200
    conn.close()


def test_blocking_work_runs_on_the_workers_while_the_loop_keeps_answering(serve):
    gate = threading.Event()
    threads: list[str] = []

    def blocking() -> str:
        threads.append(threading.current_thread().name)
        gate.wait(10)
        return "slow"

    async def slow(request: web.Request) -> web.Response:
        return web.Response(text=await srv.run_blocking(blocking))

    srv = serve(routes=[web.get("/slow", slow), web.post("/echo", echo)], workers=1)
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("GET", "/slow")
    assert wait_until(lambda: threads == ["gensight-test_0"])
    fast = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    fast.request("POST", "/echo", body=b"fast")
    assert fast.getresponse().read() == b"fast"  # answered while the worker is still blocked
    assert not gate.is_set()
    gate.set()
    assert conn.getresponse().read() == b"slow"
    conn.close()
    fast.close()


def test_shutdown_finishes_a_request_in_flight_then_refuses_connections(serve):
    gate = threading.Event()

    async def slow(request: web.Request) -> web.Response:
        return web.Response(text=await srv.run_blocking(lambda: gate.wait(5) and "done"))

    srv = serve(routes=[web.get("/slow", slow)])
    port = srv.port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/slow")
    assert wait_until(lambda: srv.open_connections == 1)
    stopper = threading.Thread(target=srv.shutdown, args=(5.0,))
    stopper.start()
    time.sleep(0.2)
    gate.set()
    assert conn.getresponse().read() == b"done"
    stopper.join(10)
    conn.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_binding_a_busy_port_raises_oserror(serve):
    srv = serve()
    other = HttpServer("other", "127.0.0.1", srv.port, routes=[], max_connections=1, client_max_size=1)
    with pytest.raises(OSError):
        other.start()
    other.shutdown(0)


# -- TLS -----------------------------------------------------------------------------------------------


def tls_server(serve, certs, **kw) -> HttpServer:
    from gensight.processor.receive.tls import TlsConfig

    return serve(ssl_context=TlsConfig(str(certs.server_cert), str(certs.server_key)).server_ssl_context(), **kw)


def tls_connect(srv: HttpServer, certs) -> socket.socket:
    import ssl

    ctx = ssl.create_default_context(cafile=str(certs.ca_cert))
    return ctx.wrap_socket(connect(srv), server_hostname="localhost")


def test_a_tls_client_that_never_completes_its_handshake_is_cut(serve, certs):
    srv = tls_server(serve, certs)
    with connect(srv) as s:  # plain TCP: no ClientHello ever comes
        assert closed_within(s, IDLE_S * 6)


def test_a_tls_connection_beyond_the_limit_gets_503_after_its_handshake(serve, certs):
    srv = tls_server(serve, certs, max_connections=1)
    with tls_connect(srv, certs):
        assert wait_until(lambda: srv.open_connections == 1)
        with tls_connect(srv, certs) as extra:
            assert extra.recv(200).startswith(b"HTTP/1.1 503")
    assert srv.busy_rejections == 1
