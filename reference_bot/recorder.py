"""The bot recording what it serves, in the harness's recording format (one JSON line per call).

Switched on by ``REFERENCE_BOT_RECORDINGS`` (a folder). Each worker writes its own files
(its pid in the name, readable by their owner only), a new one every hour; ``iadvize-harness
replay`` reads them. Personal data is replaced by pseudonyms unless
``REFERENCE_BOT_RECORDINGS_KEEP_PERSONAL_DATA`` is set; ``REFERENCE_BOT_RECORDINGS_RETENTION_DAYS``
deletes older recordings. Calls refused (bad signature, address, size) are not recorded. A
failure to record is logged and never changes the answer.
"""

from __future__ import annotations

import logging
import os
import time

from flask import Flask, g, request

from harness.wire.record_format import VERSION, RecordingWriter, utc_iso
from harness.wire.redact import Redactor

log = logging.getLogger(__name__)

REFUSED = (401, 403, 413)  # a bad signature, an address not allowed, a body too large: not recorded
# Flask endpoint -> the spec's name for it
ENDPOINTS = {
    "admin.external_bots": "external-bots",
    "admin.save_operator": "bot.save",
    "admin.read_operator": "bot.read",
    "admin.availability_strategies": "availability-strategies",
    "conversations.first_messages": "first-messages",
    "conversations.start_conversation": "conversations",
    "conversations.receive_message": "messages",
}


def register(app: Flask) -> None:
    """Records every iAdvize call the bot answers in ``RECORDINGS_DIR``, when that is set.

    One JSON line per call (request, status, response, latency) in the harness's recording
    format, for ``iadvize-harness replay``. Without ``RECORDINGS_DIR``, does nothing.
    """
    directory = app.config.get("RECORDINGS_DIR")
    if not directory:
        return
    redactor = None if app.config.get("RECORDINGS_KEEP_PERSONAL_DATA") else Redactor()
    writer = RecordingWriter(
        directory,
        prefix=f"reference-bot-{os.getpid()}",
        redactor=redactor,
        retention_days=app.config.get("RECORDINGS_RETENTION_DAYS"),
    )

    @app.after_request
    def record(response):
        endpoint = ENDPOINTS.get(request.endpoint or "")
        if endpoint is None or response.status_code in REFUSED:
            return response  # a call refused (forged, from elsewhere) is no conversation: its body is not kept
        try:
            elapsed = time.perf_counter() - g.get("started", time.perf_counter())
            args = request.view_args or {}
            body = request.get_json(silent=True) if request.is_json else None
            writer.write(
                {
                    "v": VERSION,
                    "conversation": args.get("id_conversation") or g.get("id_conversation"),
                    "operator": args.get("id_operator") or g.get("id_operator") or request.args.get("idOperator"),
                    "seq": time.time_ns() // 1000,  # microseconds: orders a conversation's calls across workers
                    "endpoint": endpoint,
                    "method": request.method,
                    "path": request.full_path.rstrip("?"),
                    "request": body,
                    "status": response.status_code,
                    "response": response.get_json(silent=True) if response.is_json else response.get_data(as_text=True),
                    "sent_at": utc_iso(time.time() - elapsed),
                    "latency_ms": round(elapsed * 1000, 3),
                    "error": None,
                }
            )
        except Exception:  # recording is a side job: the visitor's answer matters more
            log.exception("recording a call failed")
        return response
