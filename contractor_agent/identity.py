"""Who a contractor is: its long-term keys, skill certificate and API keys, and the signed card they make."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from shared.a2a.models import COALESCE_EXTENSION_URI, AgentCard
from shared.security.auth import ApiKeys
from shared.security.card_signing import sign_card
from shared.security.channel import ClaimsChannels, KeyAgreements, ReplayGuard, e2e_extension
from shared.security.keys import load_or_create

SIGNING_KEY_FILE = "signing-ed25519.pem"
E2E_KEY_FILE = "e2e-x25519.pem"
log = logging.getLogger("coalesce.contractor")


class CertificateFile:
    """A skill certificate kept in a file and read again whenever the file changes (an attestor may issue or
    renew it while the contractor runs). No file: no certificate. A file that stops parsing keeps the last good
    certificate; one that does not parse at start is an error."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._certificate: dict[str, Any] | None = None
        self.read(strict=True)

    def read(self, strict: bool = False) -> dict[str, Any] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return self._certificate
        if (stat.st_mtime_ns, stat.st_size) != self._stamp:
            try:
                certificate = json.loads(self.path.read_text())
                if not isinstance(certificate, dict):
                    raise ValueError("not a JSON object")
            except (OSError, ValueError) as error:
                if strict:
                    raise ValueError(f"{self.path}: not a skill certificate: {error}") from error
                log.warning("%s: not a skill certificate (%s); the last good one stays", self.path, error)
                return self._certificate
            self._stamp, self._certificate = (stat.st_mtime_ns, stat.st_size), certificate
        return self._certificate


@dataclass
class Identity:
    """`signing_keys`: the current key first, then (during a rotation) the previous one, whose signature tells
    clients that pinned it to move to the new key."""

    signing_keys: list[Ed25519PrivateKey] = field(default_factory=list)
    e2e_key: X25519PrivateKey | None = None
    plaintext_accepted: bool = True
    skill_certificate: dict[str, Any] | None = None  # a fixed certificate ...
    certificate_file: CertificateFile | None = None  # ... or one read from a file as it changes
    api_keys: ApiKeys = field(default_factory=ApiKeys)
    replay_guard: ClaimsChannels = field(default_factory=ReplayGuard)

    @cached_property
    def agreements(self) -> KeyAgreements | None:
        """The end-to-end key's agreements with clients' session keys (None: no end-to-end key)."""
        return KeyAgreements(self.e2e_key) if self.e2e_key is not None else None

    @classmethod
    def from_key_dir(
        cls,
        key_dir: Path,
        previous_signing_key: Path | None = None,
        certificate: Path | None = None,
        plaintext_accepted: bool = True,
        api_keys: ApiKeys | None = None,
    ) -> Identity:
        """Keys from `key_dir` (created there on first start); the skill certificate from `certificate` whenever
        that file exists."""
        signing = [load_or_create(key_dir / SIGNING_KEY_FILE, Ed25519PrivateKey)]
        if previous_signing_key is not None:
            signing.append(load_or_create(previous_signing_key, Ed25519PrivateKey))
        return cls(
            signing_keys=signing,  # type: ignore[arg-type]
            e2e_key=load_or_create(key_dir / E2E_KEY_FILE, X25519PrivateKey),  # type: ignore[arg-type]
            plaintext_accepted=plaintext_accepted,
            certificate_file=CertificateFile(certificate) if certificate else None,
            api_keys=api_keys or ApiKeys(),
        )

    def certificate(self) -> dict[str, Any] | None:
        """The skill certificate as it is now."""
        return self.certificate_file.read() if self.certificate_file else self.skill_certificate

    def publish(self, card: AgentCard, base_url: str, certificate: dict[str, Any] | None = None) -> dict[str, Any]:
        """The card as served from `base_url`: the end-to-end key and `certificate` (`self.certificate()` as it
        is now) added, the security scheme declared, then signed."""
        served = card.served_at(base_url)
        extensions = list(served.capabilities.extensions)
        if certificate is not None:
            extensions = [
                e.model_copy(update={"params": {**(e.params or {}), "skillCertificate": certificate}})
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
