"""Who a contractor is: its long-term keys, skill certificate and API keys, and the signed card they make."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from shared.a2a.models import COALESCE_EXTENSION_URI, AgentCard
from shared.security.auth import ApiKeys
from shared.security.card_signing import sign_card
from shared.security.channel import ClaimsChannels, ReplayGuard, e2e_extension
from shared.security.keys import load_or_create

SIGNING_KEY_FILE = "signing-ed25519.pem"
E2E_KEY_FILE = "e2e-x25519.pem"


@dataclass
class Identity:
    """`signing_keys`: the current key first, then (during a rotation) the previous one, whose signature tells
    clients that pinned it to move to the new key."""

    signing_keys: list[Ed25519PrivateKey] = field(default_factory=list)
    e2e_key: X25519PrivateKey | None = None
    plaintext_accepted: bool = True
    skill_certificate: dict[str, Any] | None = None
    api_keys: ApiKeys = field(default_factory=ApiKeys)
    replay_guard: ClaimsChannels = field(default_factory=ReplayGuard)

    @classmethod
    def from_key_dir(
        cls,
        key_dir: Path,
        previous_signing_key: Path | None = None,
        certificate: Path | None = None,
        plaintext_accepted: bool = True,
        api_keys: ApiKeys | None = None,
    ) -> Identity:
        """Keys from `key_dir` (created there on first start)."""
        signing = [load_or_create(key_dir / SIGNING_KEY_FILE, Ed25519PrivateKey)]
        if previous_signing_key is not None:
            signing.append(load_or_create(previous_signing_key, Ed25519PrivateKey))
        try:
            skill_certificate = json.loads(certificate.read_text()) if certificate else None
        except (OSError, ValueError) as error:
            raise ValueError(f"{certificate}: not a skill certificate: {error}") from error
        return cls(
            signing_keys=signing,  # type: ignore[arg-type]
            e2e_key=load_or_create(key_dir / E2E_KEY_FILE, X25519PrivateKey),  # type: ignore[arg-type]
            plaintext_accepted=plaintext_accepted,
            skill_certificate=skill_certificate,
            api_keys=api_keys or ApiKeys(),
        )

    def publish(self, card: AgentCard, base_url: str) -> dict[str, Any]:
        """The card as served from `base_url`: the end-to-end key and the skill certificate added, the security
        scheme declared, then signed."""
        served = card.served_at(base_url)
        extensions = list(served.capabilities.extensions)
        if self.skill_certificate is not None:
            extensions = [
                e.model_copy(update={"params": {**(e.params or {}), "skillCertificate": self.skill_certificate}})
                if e.uri == COALESCE_EXTENSION_URI
                else e
                for e in extensions
            ]
        wire = served.model_copy(
            update={"capabilities": served.capabilities.model_copy(update={"extensions": extensions})}
        ).wire()
        if self.e2e_key is not None:
            wire["capabilities"]["extensions"].append(e2e_extension(self.e2e_key, self.plaintext_accepted))
        wire.update(self.api_keys.card_fields())
        return sign_card(wire, self.signing_keys) if self.signing_keys else wire
