"""Where a service may send traffic it did not choose (a card URL, a push-notification webhook): http(s) only and,
unless allowed (a local market), no private, loopback, link-local or reserved address. The name is resolved and
checked before each request; an answer that changes between the check and the connection (DNS rebinding) is not
caught."""

from __future__ import annotations

import asyncio
import ipaddress
from urllib.parse import urlsplit


class AddressRefused(Exception):
    """The URL may not be contacted; the message says why."""


async def check_url(url: str, allow_private: bool, timeout_s: float = 5.0) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AddressRefused(f"{url}: only http and https URLs are fetched")
    if allow_private:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(parts.hostname, port), timeout=timeout_s)
    except (OSError, TimeoutError, ValueError) as error:
        raise AddressRefused(f"{url}: cannot resolve {parts.hostname}: {error}") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not address.is_global:
            raise AddressRefused(
                f"{url}: {parts.hostname} resolves to {address}, a private, loopback or reserved address"
            )
