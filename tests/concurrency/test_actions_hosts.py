"""Never twice across hosts: an action on one gunicorn host and its retry on another (two
"hosts" of 2 workers each on one database) make one write at Bitrix24 — the key is claimed in
the shared database before the write (issue 13). SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.concurrency.concurrency_harness import free_port

pytestmark = pytest.mark.slow


def body(stack, text: str, key: str) -> dict:
    _url, form = stack.sim.placement_request("a", user_id=1, lead_id=101)
    return {"member_id": form["member_id"], "auth": form["AUTH_ID"],
            "placement": "CRM_LEAD_DETAIL_TAB", "id": 101, "action": "comment",
            "params": {"text": text}, "key": key}


def test_a_retry_on_another_host_while_the_first_is_writing_is_one_write(stack, gunicorn_factory):
    hosts = [gunicorn_factory(workers=2, threads=2),
             gunicorn_factory(workers=2, threads=2, port=free_port())]
    stack.sim.reset()
    stack.sim.knobs(latency=0.8)  # the first host is mid-write when the retry arrives
    payload = body(stack, "Agreed: call on Monday", uuid.uuid4().hex)
    start = threading.Barrier(2)

    def send(i: int) -> requests.Response:
        start.wait(timeout=10)
        if i == 1:
            time.sleep(0.2)  # the retry, a moment later, on the other host
        return requests.post(hosts[i].url + "/actions", json=payload, timeout=30)

    with ThreadPoolExecutor(2) as pool:
        first, retry = pool.map(send, range(2))
    assert first.status_code == retry.status_code == 200, (first.text, retry.text)
    assert first.json()["result"]["comment_id"] == retry.json()["result"]["comment_id"]
    assert retry.json()["result"]["replayed"] is True
    assert len(stack.sim.writes(portal="a", method="crm.timeline.comment.add")) == 1


def test_a_later_retry_on_another_host_replays_the_answer(stack, gunicorn_factory):
    hosts = [gunicorn_factory(workers=1, threads=2),
             gunicorn_factory(workers=1, threads=2, port=free_port())]
    stack.sim.reset()
    payload = body(stack, "Sent the offer", uuid.uuid4().hex)
    first = requests.post(hosts[0].url + "/actions", json=payload, timeout=30)
    again = requests.post(hosts[1].url + "/actions", json=payload, timeout=30)
    assert first.status_code == again.status_code == 200
    assert again.json()["result"]["replayed"] is True
    assert len(stack.sim.writes(portal="a", method="crm.timeline.comment.add")) == 1
