"""Bitrix24 error envelopes (real payloads) map onto the documented error family."""

import pytest

from leadcard.bitrix24.rest import error_from, php_query
from leadcard.core import errors
from tests.conftest import load_payload


@pytest.mark.parametrize("name, expected", [
    ("rest_error_expired_token.pysdk_docstring.json", errors.ExpiredToken),
    ("rest_error_invalid_token.pysdk_docstring.json", errors.InvalidToken),
    ("rest_error_query_limit_exceeded.pysdk_docstring.json", errors.RateLimited),
    ("rest_error_operation_time_limit.pysdk_docstring.json", errors.OperationTimeLimit),
    ("rest_error_payment_required.pysdk_docstring.json", errors.PaymentRequired),
    ("rest_error_insufficient_scope.pysdk_docstring.json", errors.InsufficientScope),
    ("rest_error_user_access_error.pysdk_docstring.json", errors.UserAccessDenied),
    ("rest_error_portal_deleted.pysdk_docstring.json", errors.PortalClosed),
    ("rest_error_application_not_found.pysdk_docstring.json", errors.AppNotInstalled),
    ("rest_error_access_denied.pysdk_docstring.json", errors.AccessDenied),
    ("crm_lead_get_error_not_found.docs.json", errors.LeadNotFound),
    ("rest_error_error_unexpected_answer.pysdk_docstring.json", errors.PortalError),
])
def test_real_error_payloads(name, expected):
    body = load_payload(name)
    exc = error_from(str(body.get("error") or ""), str(body.get("error_description") or ""), 400)
    assert type(exc) is expected


def test_legacy_empty_code_uses_description():
    assert type(error_from("", "Access denied.", 400)) is errors.AccessDenied
    assert type(error_from("", "ID is not defined or invalid.", 400)) is errors.LeadNotFound
    assert type(error_from("", "Something else", 400)) is errors.PortalError


def test_error_text_is_bounded_and_code_case_insensitive():
    exc = error_from("QUERY_limit_EXCEEDED", "x" * 5000, 503)
    assert isinstance(exc, errors.RateLimited) and len(str(exc)) < 200


def test_php_query_nesting_keeps_back_references():
    q = php_query({"FILTER": {"ID": ["$result[lead][ASSIGNED_BY_ID]", 3]}, "id": 5})
    assert q == "FILTER[ID][0]=$result[lead][ASSIGNED_BY_ID]&FILTER[ID][1]=3&id=5"
    assert php_query({"q": "a&b=c d"}) == "q=a%26b%3Dc%20d"
