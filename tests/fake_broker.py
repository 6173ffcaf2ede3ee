"""A local Pact Broker for the tests, speaking the broker's documented HAL API for what `verify` uses.

A real Pact Broker is a Ruby server (with its database) that cannot be installed on this machine from
the package registries, so this fake stands in for it: the index, pacts for verification (with the
consumer version selectors, pending and work-in-progress pacts, the provider's branch and tags it is
sent), each pact and its ``pb:provider`` (where a verifier finds ``pb:branch-version`` and
``pb:version-tag`` to put its version on a branch and tag it), and verification results. It keeps
every request it receives (``requests``), so that tests assert what the broker was told.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PACT = Path(__file__).resolve().parents[1] / "contracts" / "pacts" / "iadvize-platform-external-bot.json"
PROVIDER = "external-bot"


class FakeBroker:
    """``pacts``: the pacts it serves for verification, each ``{"pact": document, "pending": bool, "wip": bool}``
    (default: the committed iAdvize pact, not pending)."""

    def __init__(self, pacts: list[dict] | None = None):
        self.pacts = pacts or [{"pact": json.loads(PACT.read_text(encoding="utf-8")), "pending": False}]
        self.requests: list[tuple[str, str, dict | None]] = []  # (method, path, JSON body) of every request
        broker = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall between headers and body

            def log_message(self, *args):
                pass

            def reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/hal+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw) if raw else None
                broker.requests.append((self.command, self.path, body))
                return body

            def do_GET(self):
                self._body()
                page = broker.page(self.path)
                self.reply(200, page) if page is not None else self.reply(404, {})

            def do_POST(self):
                body = self._body()
                if self.path == f"/pacts/provider/{PROVIDER}/for-verification":
                    return self.reply(200, broker.for_verification(body or {}))
                if self.path.startswith("/pacts/") and self.path.endswith("/verification-results"):
                    return self.reply(201, {})
                return self.reply(404, {})

            def do_PUT(self):
                self._body()
                if self.path.startswith("/pacticipants/"):  # a version's tag or branch
                    return self.reply(201, {})
                return self.reply(404, {})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def page(self, path: str) -> dict | None:
        """The HAL document at ``path``, or None."""
        base = self.url
        if path == "/":
            return {
                "_links": {
                    "pb:provider-pacts-for-verification": {
                        "href": base + "/pacts/provider/{provider}/for-verification",
                        "templated": True,
                    },
                }
            }
        if path == f"/pacts/provider/{PROVIDER}/for-verification":
            return {"_links": {"self": {"href": base + path}}}
        if path == f"/pacticipants/{PROVIDER}":  # where a verifier finds how to give its version a branch and tags
            return {
                "name": PROVIDER,
                "_links": {
                    "pb:branch-version": {
                        "href": base + f"/pacticipants/{PROVIDER}/branches/{{branch}}/versions/{{version}}",
                        "templated": True,
                    },
                    "pb:version-tag": {
                        "href": base + f"/pacticipants/{PROVIDER}/versions/{{version}}/tags/{{tag}}",
                        "templated": True,
                    },
                },
            }
        for number, served in enumerate(self.pacts, 1):
            if path == f"/pacts/{number}":
                results = base + f"/pacts/{number}/verification-results"
                links = {
                    "pb:publish-verification-results": {"href": results},
                    "pb:provider": {"href": base + f"/pacticipants/{PROVIDER}"},
                }
                return {**served["pact"], "_links": links}
        return None

    def for_verification(self, asked: dict) -> dict:
        """The pacts to verify: every one served, pending as configured, work-in-progress ones only when
        ``includeWipPactsSince`` was sent."""
        pacts = []
        for number, served in enumerate(self.pacts, 1):
            if served.get("wip") and not asked.get("includeWipPactsSince"):
                continue
            pending = bool(served.get("pending")) and bool(asked.get("includePendingStatus"))
            pacts.append(
                {
                    "shortDescription": "work in progress" if served.get("wip") else "latest from iadvize-platform",
                    "verificationProperties": {"pending": pending, "wip": bool(served.get("wip")), "notices": []},
                    "_links": {"self": {"href": self.url + f"/pacts/{number}", "name": "iadvize-platform"}},
                }
            )
        return {"_embedded": {"pacts": pacts}}

    def received(self, method: str, path_start: str) -> list[dict | None]:
        """The bodies of the requests with this method whose path starts so."""
        return [body for m, path, body in self.requests if m == method and path.startswith(path_start)]

    @property
    def published(self) -> list[dict]:
        """The verification results published, in order."""
        return [body for m, path, body in self.requests if m == "POST" and path.endswith("/verification-results")]

    def __enter__(self) -> FakeBroker:
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()  # quick shutdown
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
