"""Signed usage receipts: a receipt covers exactly one task's bill at one price list, under one key."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.a2a.models import Price
from shared.security.keys import public_jwk, thumbprint
from shared.security.receipts import ReceiptRejected, ReceiptSigner, price_list_version, verify_receipt

PRICE = Price(base_usd=0.001, per_compute_second_usd=0.00003)
VERSION = price_list_version(PRICE)
BILL = {"quoteUsd": 0.001, "costUsd": 0.00106, "usage": {"inputTokens": 0, "outputTokens": 0, "computeSeconds": 2.0}}


def kid(key: Ed25519PrivateKey) -> str:
    return thumbprint(public_jwk(key.public_key()))


def test_a_receipt_covers_its_bill_and_nothing_else():
    key = Ed25519PrivateKey.generate()
    receipt = ReceiptSigner(PRICE, key).sign("t-1", BILL)
    verify_receipt(receipt, "t-1", dict(BILL), price_list_version(PRICE), key.public_key(), kid(key))
    altered = [
        ("t-1", {**BILL, "costUsd": 0.5}, PRICE, "costUsd"),
        ("t-1", {**BILL, "quoteUsd": 0.002}, PRICE, "quoteUsd"),
        ("t-1", {**BILL, "usage": {**BILL["usage"], "computeSeconds": 20.0}}, PRICE, "usage"),
        ("t-2", BILL, PRICE, "not this one"),
        ("t-1", BILL, PRICE.model_copy(update={"per_compute_second_usd": 0.001}), "price list"),
    ]
    for task_id, bill, price, why in altered:
        with pytest.raises(ReceiptRejected, match=why):
            verify_receipt(receipt, task_id, bill, price_list_version(price), key.public_key(), kid(key))


def test_a_receipt_under_another_key_or_none_at_all_is_refused():
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    forged = ReceiptSigner(PRICE, other).sign("t-1", BILL)
    with pytest.raises(ReceiptRejected, match="another key"):
        verify_receipt(forged, "t-1", BILL, VERSION, key.public_key(), kid(key))
    with pytest.raises(ReceiptRejected, match="bad signature"):  # the right kid claimed, another key's signature
        header_swapped = ReceiptSigner(PRICE, other).sign("t-1", BILL)
        verify_receipt(header_swapped, "t-1", BILL, VERSION, key.public_key(), kid(other))
    with pytest.raises(ReceiptRejected, match="no receipt"):
        verify_receipt(None, "t-1", BILL, VERSION, key.public_key(), kid(key))


def test_the_price_list_version_follows_every_price():
    versions = {
        price_list_version(PRICE.model_copy(update={field: value}))
        for field, value in [("base_usd", 0.002), ("per_1k_input_tokens_usd", 0.1), ("surge_alpha", 0.3)]
    }
    assert len(versions | {price_list_version(PRICE)}) == 4
