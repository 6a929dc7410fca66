"""Executors' handling of a --scheduler address: a peer that is not a Dask scheduler gets one line and exit 2, quickly.

Each peer is a small server on a thread of this process; the ensemble is a three-member
sweep of tests/models/decay.mdl, so a test costs the check of the address and little more.
"""

from __future__ import annotations

import http.server
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from click.testing import CliRunner, Result
from paths import MODELS

from sdmodel import executors
from sdmodel.cli import main
from sdmodel.errors import InputError

HANG_GUARD = 60.0  # seconds: far beyond any answer the check gives, only there so a hang fails instead of stalling the suite
BUDGET = 2.0  # the check's deadline in these tests: a silent peer costs the whole deadline, and 10 s would only slow them


@pytest.fixture(autouse=True)
def short_deadline(monkeypatch):
    monkeypatch.setattr(executors, "SCHEDULER_TIMEOUT", BUDGET)


def sweep_on(address: str) -> Result:
    """`sdmodel sweep --scheduler ADDRESS` through CliRunner, on a thread, so a hang fails the test."""
    args = ["sweep", "--param", "lifetime=1:3:3", "--model", str(MODELS / "decay.mdl"), "--output", "Stock"]
    args += ["--scheduler", address]
    results: list[Result] = []
    thread = threading.Thread(target=lambda: results.append(CliRunner().invoke(main, args)), daemon=True)
    thread.start()
    thread.join(HANG_GUARD)
    assert results, f"sdmodel sweep --scheduler {address} still had no answer after {HANG_GUARD:g} s"
    return results[0]


def assert_one_line_error(result: Result, address: str, needle: str, runs_dir) -> None:
    """Exit 2 (bad input; an uncaught exception exits 1), one line naming the option and the address, and nothing saved."""
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"sdmodel: error: --scheduler: {address}: "), lines[0]
    assert needle in lines[0], lines[0]
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


@contextmanager
def tcp_peer(on_connect: Callable[[socket.socket], None]) -> Iterator[str]:
    """A TCP server on a free local port that hands each connection to ``on_connect``; yields its tcp:// address."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []  # connections left open stay referenced, so they are not closed by garbage collection

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:  # the server socket was closed: the test is over
                return
            held.append(connection)
            on_connect(connection)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()
        for connection in held:
            connection.close()


def answer_and_close(data: bytes) -> Callable[[socket.socket], None]:
    def on_connect(connection: socket.socket) -> None:
        connection.sendall(data)
        connection.close()

    return on_connect


def answer_and_stay(data: bytes) -> Callable[[socket.socket], None]:
    return lambda connection: connection.sendall(data)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the server's log would mix with pytest's output
        pass


@contextmanager
def http_server() -> Iterator[str]:
    """Python's own HTTP server on a free local port: it neither answers Dask's handshake nor hangs up."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"tcp://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


HTTP_REPLY = b"HTTP/1.1 200 OK\r\n\r\nhello"  # read as a Dask frame length, "HTTP/1.1" asked numpy for 3.07 EiB


def dask_framed(body: bytes) -> bytes:
    """``body`` in Dask's TCP framing: the frames arrive whole, and then ``body`` must decode as msgpack."""
    from distributed.protocol.utils import pack_frames

    frames = pack_frames([body])
    return struct.pack("Q", len(frames)) + frames


NOT_MSGPACK = dask_framed(b"\xc1")  # a byte msgpack never uses: distributed logs it at CRITICAL, with a traceback


@pytest.mark.parametrize(
    ("on_connect", "needle"),
    [
        (answer_and_close(HTTP_REPLY), "is not a Dask scheduler (it answered in another protocol)"),
        (answer_and_stay(HTTP_REPLY), "is not a Dask scheduler (it answered in another protocol)"),
        (answer_and_close(b"hi"), "is not a Dask scheduler (it closed the connection at Dask's handshake)"),
        (answer_and_stay(NOT_MSGPACK), "is not a Dask scheduler (it answered in another protocol)"),
    ],
    ids=["http-reply-then-close", "http-reply-stays-open", "two-bytes-then-close", "dask-frames-not-msgpack"],
)
def test_scheduler_address_where_something_else_answers(on_connect, needle, isolated_runs_dir):
    with tcp_peer(on_connect) as address:
        result = sweep_on(address)
    assert_one_line_error(result, address, needle, isolated_runs_dir)
    assert "start one with `dask scheduler`" in result.stderr


def test_scheduler_check_leaves_one_line_on_a_real_stderr(tmp_path):
    """CliRunner captures click's output, not Dask's log handler, which writes to the process's stderr: so one real process."""
    code = "from sdmodel.cli import main; main()"
    with tcp_peer(answer_and_stay(NOT_MSGPACK)) as address:
        args = ["sweep", "--param", "lifetime=1:3:3", "--model", str(MODELS / "decay.mdl"), "--output", "Stock"]
        args += ["--scheduler", address]
        env = {**os.environ, "SDMODEL_RUNS_DIR": str(tmp_path / "runs")}
        command = [sys.executable, "-c", code, *args]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=HANG_GUARD, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        (
            f"sdmodel: error: --scheduler: {address}: is not a Dask scheduler (it answered in another protocol); "
            "start one with `dask scheduler` and give its tcp:// address"
        )
    ]
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("peer", [http_server, lambda: tcp_peer(lambda connection: None)], ids=["http-server", "silent"])
def test_scheduler_address_where_nothing_answers_in_time(peer, isolated_runs_dir):
    """A peer that takes the connection and stays silent is given up on at the deadline, not waited on for ever."""
    start = time.monotonic()
    with peer() as address:
        result = sweep_on(address)
    elapsed = time.monotonic() - start
    needle = f"is not a Dask scheduler (it took the connection but gave no Dask answer within {BUDGET:g} s)"
    assert_one_line_error(result, address, needle, isolated_runs_dir)
    assert elapsed >= BUDGET  # it was the deadline that ended the wait (a lower bound only: a loaded machine is slower)


def test_scheduler_address_where_nothing_listens(isolated_runs_dir):
    with socket.socket() as bound:  # bound, never listening: connections to its port are refused while it is held
        bound.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{bound.getsockname()[1]}"
        result = sweep_on(address)
    # the reason in brackets is the last attempt's: "Connection refused", or distributed's timeout when the deadline cut it short
    assert_one_line_error(result, address, "cannot connect (", isolated_runs_dir)
    assert "check the address and that `dask scheduler` runs there" in result.stderr


@pytest.mark.parametrize(
    ("address", "needle"), [("http://127.0.0.1:8786", "unknown address scheme 'http'"), ("tcp://127.0.0.1", "missing port")]
)
def test_scheduler_address_that_is_not_an_address(address, needle, isolated_runs_dir):
    result = sweep_on(address)
    assert_one_line_error(result, address, f"is not a Dask address ({needle}", isolated_runs_dir)
    assert "give it as tcp://HOST:PORT" in result.stderr


def test_a_scheduler_passes_the_check_and_runs_the_sweep_but_a_worker_does_not(isolated_runs_dir):
    """The check must not refuse the real thing: a scheduler's address runs the ensemble, its worker's is refused."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", dashboard_address=None) as cluster:
        executors.check_scheduler(cluster.scheduler_address)
        result = sweep_on(cluster.scheduler_address)
        assert result.exit_code == 0, (result.output, result.exception)
        worker = next(iter(cluster.scheduler.workers))
        with pytest.raises(InputError, match=r"is not a Dask scheduler \(it is a Dask Worker\)"):
            executors.check_scheduler(worker)
