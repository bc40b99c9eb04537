"""The local market's arguments to the client: an attestor's key id that begins with "-" (base64url allows it) is
still read as the value of `--trust-attestor`, not as an option."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coalesce.attest import attestor_id
from coalesce.cli import build_parser
from coalesce.market import trusting


def test_an_attestor_id_beginning_with_a_dash_is_trusted():
    key = next(k for k in (Ed25519PrivateKey.generate() for _ in range(100_000)) if attestor_id(k).startswith("-"))
    args = build_parser().parse_args(["client", "serve", trusting(key)])
    assert args.trust_attestor == [attestor_id(key)]
