"""``X-iAdvize-Signature``: how iAdvize signs each call, and how a connector checks it.

The header is ``sha256=<hex HMAC-SHA256>`` keyed with the app's secret, computed over the
raw query string for GET requests and over the raw body for every other method.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-iAdvize-Signature"
PREFIX = "sha256="


def signed_part(method: str, query_string: bytes, body: bytes) -> bytes:
    """The bytes the signature covers for a request of this method."""
    return query_string if method.upper() in ("GET", "HEAD") else body  # a HEAD is a GET without its body


def sign(secret: str, data: bytes) -> str:
    """The ``X-iAdvize-Signature`` value of ``data``: ``sha256=`` and its hex HMAC-SHA256 keyed with ``secret``."""
    return PREFIX + hmac.new(secret.encode("utf-8"), data, hashlib.sha256).hexdigest()


def is_valid(secret: str, header: str | None, data: bytes) -> bool:
    """True when ``header`` is the signature of ``data``; compared in constant time."""
    if not header:
        return False
    return hmac.compare_digest(header.strip().encode("utf-8"), sign(secret, data).encode("utf-8"))
