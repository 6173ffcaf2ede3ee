"""The ``X-iAdvize-Signature`` check, before any endpoint runs."""

from __future__ import annotations

from flask import Flask, current_app, request

from harness.wire import signature

from .errors import ApiError

# Not called by iAdvize: load balancers and the scenario viewer have no secret to sign with.
UNSIGNED_ENDPOINTS = {"health.healthcheck", "admin.scenario_source"}
PUBLIC_PATHS = {"/healthcheck"}  # public whatever the method: another method gets its 405, not a 401


def register(app: Flask) -> None:
    """Checks ``X-iAdvize-Signature`` before every endpoint iAdvize calls; answers 401 when it is missing or wrong.

    Nothing is checked without ``IADVIZE_SECRET``.
    """

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
