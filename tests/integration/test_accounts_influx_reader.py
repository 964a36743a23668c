"""The accounts' InfluxDB reader keeps one HTTP connection for a round of queries, and asks again on a new one when
the server closed the kept one while it was idle (InfluxDB, or a proxy in front of it, ends idle connections).
The server here speaks InfluxDB's /query answer over HTTP/1.1 and closes each connection after a short idle time."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from agent.center.accounts.metered import InfluxReader
from agent.center.config import InfluxConfig
from tests.servers.http_connections import ConnectionCounts, counting_handler


@pytest.fixture
def server() -> Iterator[tuple[str, ConnectionCounts, list[str]]]:
    counts, queries = ConnectionCounts(), []

    class Handler(counting_handler(counts, idle_timeout_s=0.2)):  # type: ignore[misc]  # a class made at run time
        def do_GET(self) -> None:
            q = parse_qs(urlsplit(self.path).query)["q"][0]
            with counts.lock:
                queries.append(q)
            body = json.dumps(
                {"results": [{"statement_id": 0, "series": [{"name": "sample", "values": [[1000, 1.5]]}]}]}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", counts, queries
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_a_round_of_queries_shares_one_connection_and_a_closed_idle_one_is_replaced(
    server: tuple[str, ConnectionCounts, list[str]],
) -> None:
    url, counts, queries = server
    reader = InfluxReader(InfluxConfig(url=url, database="plant"))
    try:
        for i in range(20):
            assert reader.query(f"SELECT value FROM sample WHERE n={i}")[0]["values"] == [[1000, 1.5]]
        assert counts.opened == 1
        deadline = time.monotonic() + 10
        while counts.closed < 1:  # the server ends the idle connection
            assert time.monotonic() < deadline, "the server never closed the idle connection"
            time.sleep(0.01)
        assert reader.query("SELECT value FROM sample WHERE n=20")[0]["values"] == [[1000, 1.5]]
    finally:
        reader.close()
    assert counts.opened == 2
    assert queries == [f"SELECT value FROM sample WHERE n={i}" for i in range(21)]  # each asked once
