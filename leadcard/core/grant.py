"""A grant, and the two facts every layer reads off a portal's REST endpoint.

A `Grant` is an access/refresh pair plus the portal identity the OAuth server vouched for;
it is made by the OAuth client (bitrix24) and stored by the portal store (storage), so it
lives below both.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Grant:
    """An access/refresh pair plus the portal identity the OAuth server vouched for."""

    access_token: str
    refresh_token: str
    expires_at: float
    member_id: str
    client_endpoint: str
    server_endpoint: str
    scope: str
    status: str
    user_id: int | None

    @property
    def domain(self) -> str:
        return portal_domain(self.client_endpoint)

    def __repr__(self) -> str:  # never print tokens, even by accident
        return f"Grant(member_id={self.member_id!r}, client_endpoint={self.client_endpoint!r})"



def portal_domain(client_endpoint: str) -> str:
    """`https://x.bitrix24.com/rest/` → `x.bitrix24.com` (host[:port])."""
    return urlsplit(client_endpoint).netloc


def portal_origin(client_endpoint: str) -> str:
    parts = urlsplit(client_endpoint)
    return f"{parts.scheme}://{parts.netloc}"
