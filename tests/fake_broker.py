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
from urllib.parse import parse_qs, urlsplit

PACT = Path(__file__).resolve().parents[1] / "contracts" / "pacts" / "iadvize-platform-external-bot.json"
PROVIDER = "external-bot"
ENVIRONMENTS = ("staging", "production")  # the deployment environments this broker knows


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
                self.reply(*broker.post(self.path, self._body() or {}))

            def do_PUT(self):
                self._body()
                # a version's tag or branch
                self.reply(201, {}) if self.path.startswith("/pacticipants/") else self.reply(404, {})

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
                    "pb:publish-contracts": {"href": base + "/contracts/publish"},
                }
            }
        if path == f"/pacts/provider/{PROVIDER}/for-verification":
            return {"_links": {"self": {"href": base + path}}}
        if path.startswith(f"/pacticipants/{PROVIDER}/versions/") and path.count("/") == 4:
            version = path.rsplit("/", 1)[1]
            deploy = base + f"/pacticipants/{PROVIDER}/versions/{version}/deployed-versions/environment/"
            return {
                "number": version,
                "_links": {
                    "pb:record-deployment": [
                        {"name": env, "title": f"Record deployment to {env}", "href": deploy + env}
                        for env in ENVIRONMENTS
                    ]
                },
            }
        if path.startswith("/matrix?"):
            return self.matrix(parse_qs(urlsplit(path).query))
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

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        """The status and HAL document answering a POST to ``path``."""
        if path == f"/pacts/provider/{PROVIDER}/for-verification":
            return 200, self.for_verification(body)
        if path.startswith("/pacts/") and path.endswith("/verification-results"):
            return 201, {}
        if path == "/contracts/publish":
            return 200, self.published_contracts(body)
        if "/deployed-versions/environment/" in path:
            environment = path.rsplit("/", 1)[1]
            return 201, {"currentlyDeployed": True, "_embedded": {"environment": {"name": environment}}}
        return 404, {}

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

    def published_contracts(self, body: dict) -> dict:
        """The broker's answer to contracts published (``POST /contracts/publish``), in the documented shape:
        the pacticipant and its version embedded, links to them and to the pacts, notices."""
        base, name, version = self.url, body.get("pacticipantName"), body.get("pacticipantVersionNumber")

        def link(path: str, title: str) -> dict:
            return {"href": base + path, "name": name, "title": title}

        contracts = body.get("contracts", [])
        return {
            "_embedded": {
                "pacticipant": {"name": name, "_links": {"self": {"href": f"{base}/pacticipants/{name}"}}},
                "version": {
                    "number": version,
                    "_links": {"self": link(f"/pacticipants/{name}/versions/{version}", "Version")},
                },
            },
            "_links": {
                "pb:pacticipant": link(f"/pacticipants/{name}", "Pacticipant"),
                "pb:pacticipant-version": link(f"/pacticipants/{name}/versions/{version}", "Version"),
                "pb:pacticipant-version-tags": [{"name": tag} for tag in body.get("tags", [])],
                "pb:contracts": [link(f"/pacts/{n}", "Pact") for n, _ in enumerate(contracts, 1)],
            },
            "logs": [],
            "notices": [
                {
                    "type": "success",
                    "text": f"Created {c.get('consumerName')} version {version} with a pact for "
                    f"{c.get('providerName')}",
                }
                for c in contracts
            ],
        }

    def matrix(self, query: dict[str, list[str]]) -> dict:
        """can-i-deploy's answer for the version asked: deployable when its verification results published here
        all succeeded (and some were)."""
        version = (query.get("q[][version]") or [""])[0]
        results = [
            body
            for m, path, body in self.requests
            if m == "POST" and path.endswith("/verification-results") and body["providerApplicationVersion"] == version
        ]
        deployable = bool(results) and all(r["success"] for r in results)
        reason = (
            "All required verification results are published and successful"
            if deployable
            else f"There is no successful verification result for {PROVIDER} {version}"
        )
        rows = [
            {
                "consumer": {"name": "iadvize-platform", "version": {"number": "1.0.0"}},
                "provider": {"name": PROVIDER, "version": {"number": version}},
                "verificationResult": {"success": r["success"], "verifiedAt": "2026-12-01T10:00:00+00:00"},
            }
            for r in results
        ]
        success = sum(r["success"] for r in results)
        summary = {"deployable": deployable, "reason": reason, "success": success, "failed": len(results) - success}
        return {"summary": {**summary, "unknown": 0 if results else 1}, "matrix": rows}

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
