"""Signed push notifications. A contractor signs every notification it sends with its card's signing key (Ed25519),
as a JWT in the `X-A2A-Notification-Signature` header, the way the A2A push-notification guidance describes for
asymmetric keys: the receiver takes the key from the contractor's signed Agent Card (by `kid`), checks the
signature, that the body it received is the one signed (its SHA-256), the task it is about, and that it is recent
(replays of old notifications are refused).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.security.keys import public_jwk, thumbprint

ALGORITHM = "EdDSA"
SIGNATURE_HEADER = "X-A2A-Notification-Signature"
MAX_AGE_S = 300.0


class NotificationRejected(Exception):
    """A notification whose signature does not hold; the message says why."""


def sign_notification(body: bytes, task_id: str, key: Ed25519PrivateKey, now: float | None = None) -> str:
    claims = {
        "iat": int(now if now is not None else time.time()),
        "taskId": task_id,
        "requestBodySha256": hashlib.sha256(body).hexdigest(),
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": thumbprint(public_jwk(key.public_key()))})


def verify_notification(
    token: str,
    body: bytes,
    keys: dict[str, Ed25519PublicKey],
    max_age_s: float = MAX_AGE_S,
    now: float | None = None,
) -> dict[str, Any]:
    """The claims of a notification signed by one of `keys` (kid -> key, from the sender's verified card) over
    exactly `body`, at most `max_age_s` old; NotificationRejected otherwise."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as error:
        raise NotificationRejected(f"not a JWT: {error}") from None
    if kid not in keys:
        raise NotificationRejected(f"signed by key {kid!r}, which the sender's card does not hold")
    try:
        claims: dict[str, Any] = jwt.decode(
            token, keys[kid], algorithms=[ALGORITHM], options={"require": ["iat", "taskId", "requestBodySha256"]}
        )
    except jwt.PyJWTError as error:
        raise NotificationRejected(f"bad signature or claims: {error}") from None
    if claims["requestBodySha256"] != hashlib.sha256(body).hexdigest():
        raise NotificationRejected("the body is not the one that was signed")
    age = (now if now is not None else time.time()) - float(claims["iat"])
    if not -30.0 <= age <= max_age_s:
        raise NotificationRejected(f"signed {age:.0f} s ago, outside the {max_age_s:.0f} s window (a replay?)")
    return claims
