"""bench/loadgen.py: the prebuilt request bytes and the response-head parser (no servers)."""

import socket
import threading
from urllib.parse import parse_qs

import pytest

from bench.loadgen import OneShot, form_request, parse_head


def test_form_request_is_one_complete_http11_post():
    raw = form_request("http://127.0.0.1:8123/placement?DOMAIN=a.test&LANG=en",
                       {"AUTH_ID": "tok en", "PLACEMENT_OPTIONS": '{"ID":"101"}'})
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /placement?DOMAIN=a.test&LANG=en HTTP/1.1"
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert headers == {"Host": "127.0.0.1:8123",
                       "Content-Type": "application/x-www-form-urlencoded",
                       "Content-Length": str(len(body)), "Connection": "close"}
    assert parse_qs(body.decode()) == {"AUTH_ID": ["tok en"],
                                       "PLACEMENT_OPTIONS": ['{"ID":"101"}']}


def test_form_request_without_query_or_port():
    raw = form_request("http://127.0.0.1/install", {})
    assert raw.startswith(b"POST /install HTTP/1.1\r\nHost: 127.0.0.1:80\r\n")
    assert raw.endswith(b"Content-Length: 0\r\nConnection: close\r\n\r\n")


def test_parse_head_reads_status_and_length_only():
    assert parse_head(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 42") \
        == (200, 42)
    assert parse_head(b"HTTP/1.1 502 BAD GATEWAY\r\ncontent-length:7") == (502, 7)
    assert parse_head(b"HTTP/1.0 204 No Content\r\nServer: x") == (204, None)
    with pytest.raises((ValueError, IndexError)):
        parse_head(b"garbage")


def test_oneshot_reads_exactly_content_length(monkeypatch):
    """Over a socket pair (no server): the view is over once Content-Length bytes are in."""
    ours, theirs = socket.socketpair()
    received = []

    def peer():
        received.append(theirs.recv(65536))
        theirs.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel")
        theirs.sendall(b"lo")  # no close: the client must not wait for one

    threading.Thread(target=peer, daemon=True).start()
    monkeypatch.setattr(socket, "create_connection", lambda address, timeout: ours)
    shot = OneShot("http://127.0.0.1:9/placement", {"a": "1"}, timeout=5)
    try:
        assert shot.post() == (200, b"hello")
        assert received == [shot.request]
    finally:
        theirs.close()
