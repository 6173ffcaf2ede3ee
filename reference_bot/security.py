"""The ``X-iAdvize-Signature`` check, before any endpoint runs."""

from __future__ import annotations

from flask import Flask, current_app, request

from harness.wire import signature

from .errors import ApiError

# Not called by iAdvize: load balancers and the scenario viewer have no secret to sign with.
UNSIGNED_ENDPOINTS = {"health.healthcheck", "admin.scenario_source"}
PUBLIC_PATHS = {"/healthcheck"}
# The addresses iAdvize calls webhooks and plugins from (its documentation; REFERENCE_BOT_ALLOWED_IPS=iadvize).
IADVIZE_ADDRESSES = ("35.158.241.155", "35.158.90.142", "35.156.32.28")


def allowed_addresses(setting: str | None) -> frozenset[str] | None:
    """The addresses of ``REFERENCE_BOT_ALLOWED_IPS`` (``iadvize`` standing for iAdvize's own); None: any."""
    if not setting:
        return None
    names = {part.strip() for part in setting.split(",") if part.strip()}
    return frozenset((names - {"iadvize"}) | (set(IADVIZE_ADDRESSES) if "iadvize" in names else set()))


def caller_address(peer: str | None = None, forwarded: str | None = None) -> str:
    """Who called: the peer, or the client a reverse proxy on this machine (loopback) forwards for
    (``X-Forwarded-For``); both are the current request's unless given."""
    peer = (request.remote_addr if peer is None else peer) or ""
    forwarded = request.headers.get("X-Forwarded-For", "") if forwarded is None else forwarded
    if forwarded and peer in ("127.0.0.1", "::1"):
        return forwarded.split(",")[-1].strip()
    return peer  # public whatever the method: another method gets its 405, not a 401


def register(app: Flask) -> None:
    """Checks ``X-iAdvize-Signature`` before every endpoint iAdvize calls; answers 401 when it is missing or wrong.

    Nothing is checked without ``IADVIZE_SECRET``.
    """

    allowed = allowed_addresses(app.config.get("ALLOWED_IPS"))

    @app.before_request
    def check_address():
        if allowed is None or request.path in PUBLIC_PATHS:
            return
        if (address := caller_address()) not in allowed:
            raise ApiError(403, "address not allowed", f"calls from {address} are refused: REFERENCE_BOT_ALLOWED_IPS")

    @app.before_request
    def check_signature():
        secret = current_app.config.get("IADVIZE_SECRET")
        if not secret or request.endpoint in UNSIGNED_ENDPOINTS or request.path in PUBLIC_PATHS:
            return
        header = request.headers.get(signature.HEADER)
        data = signature.signed_part(request.method, request.query_string, request.get_data(cache=True))
        if not signature.is_valid(secret, header, data):
            what = "missing" if not header else "does not match"
            raise ApiError(
                401,
                "invalid signature",
                f"{signature.HEADER} {what}: it must be sha256=<HMAC-SHA256 of the "
                f"{'query string' if request.method == 'GET' else 'body'} with the app's secret>",
            )
