"""Fixtures for tests/concurrency; the machinery lives in `concurrency_harness.py`."""

from tests.concurrency.concurrency_harness import drivers, gunicorn_factory, stack  # noqa: F401 - pytest fixtures
