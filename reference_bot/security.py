"""The ``X-iAdvize-Signature`` check, before any endpoint runs."""

from __future__ import annotations

from flask import Flask, current_app, request

from harness.wire import signature

from .errors import ApiError, request_body

# Not called by iAdvize: load balancers have no secret to sign with. The scenario viewer (editorUrl) is signed
# like the rest unless REFERENCE_BOT_PUBLIC_SCENARIOS opens it: a scenario's source is the bot's logic.
UNSIGNED_ENDPOINTS = {"health.healthcheck"}
PUBLIC_PATHS = {"/healthcheck"}
# The addresses iAdvize calls webhooks and plugins from (its documentation; REFERENCE_BOT_ALLOWED_IPS=iadvize).
IADVIZE_ADDRESSES = ("35.158.241.155", "35.158.90.142", "35.156.32.28")


def allowed_addresses(setting: str | None) -> frozenset[str] | None:
    """The addresses of ``REFERENCE_BOT_ALLOWED_IPS`` (``iadvize`` standing for iAdvize's own); None: any."""
    if not setting:
        return None
    names = {part.strip() for part in setting.split(",") if part.strip()}
    return frozenset((names - {"iadvize"}) | (set(IADVIZE_ADDRESSES) if "iadvize" in names else set()))


def trusted_proxies(setting: str | None) -> frozenset[str]:
    """The addresses of ``REFERENCE_BOT_TRUSTED_PROXIES``: the reverse proxies whose ``X-Forwarded-For`` counts."""
    return frozenset(part.strip() for part in (setting or "").split(",") if part.strip())


def caller_address(peer: str, forwarded: str, proxies: frozenset[str]) -> str:
    """Who called: the peer, unless it is one of the trusted ``proxies``; then the ``X-Forwarded-For``
    chain is read from its end, each trusted proxy in it skipped: the first other address is the caller.
    A client's own header comes first in the chain, so it can claim nothing a trusted proxy did not add."""
    address = peer or ""
    if address not in proxies:
        return address  # not a proxy of ours: its header is whatever the client wrote
    for hop in reversed([hop.strip() for hop in forwarded.split(",") if hop.strip()]):
        address = hop
        if hop not in proxies:
            break
    return address


def register(app: Flask) -> None:
    """Checks ``X-iAdvize-Signature`` before every endpoint iAdvize calls; answers 401 when it is missing or wrong.

    Nothing is checked without ``IADVIZE_SECRET``.
    """

    allowed = allowed_addresses(app.config.get("ALLOWED_IPS"))
    proxies = trusted_proxies(app.config.get("TRUSTED_PROXIES"))

    @app.before_request
    def check_address():
        if allowed is None or request.path in PUBLIC_PATHS:
            return
        forwarded = request.headers.get("X-Forwarded-For", "")
        if (address := caller_address(request.remote_addr, forwarded, proxies)) not in allowed:
            raise ApiError(403, "address not allowed", f"calls from {address} are refused: REFERENCE_BOT_ALLOWED_IPS")

    public = set(UNSIGNED_ENDPOINTS) | ({"admin.scenario_source"} if app.config.get("PUBLIC_SCENARIOS") else set())

    @app.before_request
    def check_signature():
        secret = current_app.config.get("IADVIZE_SECRET")
        if not secret or request.endpoint in public or request.path in PUBLIC_PATHS:
            return
        header = request.headers.get(signature.HEADER)
        body = request_body()
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        if limit is not None and request.content_length is None and len(body) >= limit:
            # a chunked body says no length: read up to the limit, it is too large, not forged
            too_large = f"the body is larger than the {limit} bytes this bot accepts"
            raise ApiError(413, "request entity too large", too_large)
        data = signature.signed_part(request.method, request.query_string, body)
        if not signature.is_valid(secret, header, data):
            what = "missing" if not header else "does not match"
            raise ApiError(
                401,
                "invalid signature",
                f"{signature.HEADER} {what}: it must be sha256=<HMAC-SHA256 of the "
                f"{'query string' if request.method in ('GET', 'HEAD') else 'body'} with the app's secret>",
            )
