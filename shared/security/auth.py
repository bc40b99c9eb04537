"""API keys for the client's API and for contractors: bearer tokens (or `X-API-Key`), compared in constant time,
each with its own token-bucket rate limit. Cards declare the scheme as A2A security schemes."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

BEARER_SCHEME = "bearer"


class AuthError(Exception):
    """A request refused: `status` 401 (no or wrong key) or 429 (over the key's rate)."""

    def __init__(self, status: int, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        if self.status == 401:
            return {"WWW-Authenticate": 'Bearer realm="coalesce"'}
        return {"Retry-After": str(max(1, round(self.retry_after_s or 1)))}


@dataclass
class TokenBucket:
    rate_per_s: float
    burst: float
    tokens: float = -1.0
    updated: float = field(default_factory=time.monotonic)

    def take(self) -> float:
        """0 when a request may pass now, else the seconds until one may."""
        now = time.monotonic()
        if self.tokens < 0:
            self.tokens = self.burst
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate_per_s)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate_per_s


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class ApiKeys:
    """The keys a service accepts. With no keys configured every request passes (a local market)."""

    def __init__(self, keys: Iterable[str] = (), rate_per_s: float = 50.0, burst: int = 100) -> None:
        self._digests = [_digest(k) for k in keys if k]
        self._buckets = [TokenBucket(rate_per_s, float(burst)) for _ in self._digests]

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def check_request(self, headers: Mapping[str, str]) -> str | None:
        """The caller (see `check`) of a request whose headers (`Authorization: Bearer` or `X-API-Key`) carry an
        accepted key within its rate; AuthError otherwise."""
        return self.check(headers.get("authorization"), headers.get("x-api-key"))

    def check(self, authorization: str | None, api_key: str | None = None) -> str | None:
        """The caller: `key:` and a digest of the accepted key (never the key), or None when no keys are required
        (an anonymous caller). Raises AuthError unless the request carries an accepted key within its rate."""
        if not self.enabled:
            return None
        presented = api_key
        if authorization and authorization[:7].lower() == "bearer ":
            presented = authorization[7:].strip()
        if not presented:
            raise AuthError(401, "an API key is required: send 'Authorization: Bearer <key>'")
        digest = _digest(presented)
        match = -1
        for index, known in enumerate(self._digests):  # every key compared, in constant time each
            if hmac.compare_digest(digest, known):
                match = index
        if match < 0:
            raise AuthError(401, "the API key is not valid")
        wait = self._buckets[match].take()
        if wait > 0:
            raise AuthError(429, f"rate limit exceeded for this API key; retry in {wait:.2f} s", wait)
        return "key:" + self._digests[match].hex()[:32]

    def card_fields(self) -> dict[str, Any]:
        """The A2A security scheme and requirement a card declares when keys are required."""
        if not self.enabled:
            return {}
        return {
            "securitySchemes": {BEARER_SCHEME: {"type": "http", "scheme": "bearer", "description": "COALESCE API key"}},
            "security": [{BEARER_SCHEME: []}],
        }
