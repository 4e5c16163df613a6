"""The metrics' observer of every outbound call to Bitrix24 (bitrix24/observe.py's seam),
beside the REST log's: counts and times each attempt by service, method and outcome."""

from __future__ import annotations

from leadcard.bitrix24.observe import UpstreamCall
from leadcard.core import metrics


def observe_call(call: UpstreamCall) -> None:
    """Count one attempt (labels only from fixed sets and method names: core/metrics.py)."""
    metrics.observe_upstream(call.service, call.method, call.http_status, call.error_code,
                             call.duration)
