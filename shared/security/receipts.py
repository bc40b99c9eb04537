"""Signed usage receipts. A contractor with a signing key signs what it bills for a task: the task, its quote, its
charge, the usage it claims (tokens, compute seconds) and the version of the price list it priced them by (a
digest of its card's price list), as a JWT (EdDSA) with its card's key. The client checks the receipt against the
key it pinned for the contractor and the price list of the card it holds before it pays anything beyond the quote.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import jwt
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt import api_jws

from shared.a2a.models import Price
from shared.runtime import jsonio
from shared.security.keys import public_jwk, thumbprint

ALGORITHM = "EdDSA"
BILLED = ("quoteUsd", "costUsd", "usage")  # the billing fields a receipt covers


class ReceiptRejected(Exception):
    """A receipt that does not hold; the message says why."""


def price_list_version(price: Price) -> str:
    """A digest of a price list (its RFC 8785 JSON): changes whenever any price does."""
    return hashlib.sha256(rfc8785.dumps(price.model_dump(mode="json", by_alias=True))).hexdigest()[:32]


class ReceiptSigner:
    """Signs the receipts of one contractor: its key, and the version of its card's price list, worked out once."""

    def __init__(self, price: Price, key: Ed25519PrivateKey) -> None:
        self.key = key
        self.headers = {"kid": thumbprint(public_jwk(key.public_key()))}
        self.price_list = price_list_version(price)

    def sign(self, task_id: str, billing: dict[str, Any]) -> str:
        claims = {
            "taskId": task_id,
            **{name: billing[name] for name in BILLED},
            "priceList": self.price_list,
            "iat": int(time.time()),
        }
        # the claims written by the services' JSON writer and signed by PyJWT's JWS layer: the same JWT as
        # `jwt.encode` makes of them, without the standard library's encoder (most of what signing cost)
        return api_jws.encode(jsonio.dumps(claims), self.key, algorithm=ALGORITHM, headers=self.headers)


def verify_receipt(
    receipt: Any, task_id: str, billing: dict[str, Any], price_list: str, key: Ed25519PublicKey, kid: str
) -> None:
    """Raises ReceiptRejected unless `receipt` was signed by `key` (`kid`) for this task, over exactly the
    billing fields given, at the version of the price list the client holds (`price_list_version`)."""
    if not isinstance(receipt, str):
        raise ReceiptRejected("no receipt")
    try:
        if jwt.get_unverified_header(receipt).get("kid") != kid:
            raise ReceiptRejected("signed by another key than the contractor's pinned one")
        claims = jwt.decode(receipt, key, algorithms=[ALGORITHM], options={"require": ["taskId", "priceList"]})
    except jwt.PyJWTError as error:
        raise ReceiptRejected(f"bad signature: {error}") from None
    if claims["taskId"] != task_id:
        raise ReceiptRejected(f"a receipt for task {claims['taskId']!r}, not this one")
    if claims["priceList"] != price_list:
        raise ReceiptRejected("priced by another price list than the card's")
    for name in BILLED:
        if claims.get(name) != billing.get(name):
            raise ReceiptRejected(f"the billed {name} is not the one signed")
