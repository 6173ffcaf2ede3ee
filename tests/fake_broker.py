"""A Pact Broker reduced to what the verifier uses: find the provider's pacts, take the results.

The real broker is a separate service; the verifier speaks HAL to it. This fake serves
the committed iAdvize pact and records every verification result published to it.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PACT = Path(__file__).resolve().parents[1] / "contracts" / "pacts" / "iadvize-platform-external-bot.json"


class FakeBroker:
    def __init__(self):
        self.published: list[dict] = []
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

            def do_GET(self):
                base = broker.url
                for_verification = base + "/pacts/provider/{provider}/for-verification"
                pages = {
                    "/": {
                        "_links": {"pb:provider-pacts-for-verification": {"href": for_verification, "templated": True}}
                    },
                    "/pacts/provider/external-bot/for-verification": {"_links": {"self": {"href": base + self.path}}},
                    "/pacts/1": {
                        **json.loads(PACT.read_text(encoding="utf-8")),
                        "_links": {"pb:publish-verification-results": {"href": base + "/pacts/1/verification-results"}},
                    },
                }
                self.reply(200, pages[self.path]) if self.path in pages else self.reply(404, {})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if self.path == "/pacts/provider/external-bot/for-verification":
                    return self.reply(
                        200,
                        {
                            "_embedded": {
                                "pacts": [
                                    {
                                        "shortDescription": "latest from iadvize-platform",
                                        "verificationProperties": {"pending": False, "notices": []},
                                        "_links": {
                                            "self": {"href": broker.url + "/pacts/1", "name": "iadvize-platform"}
                                        },
                                    }
                                ]
                            }
                        },
                    )
                if self.path == "/pacts/1/verification-results":
                    broker.published.append(body)
                    return self.reply(201, {})
                return self.reply(404, {})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> FakeBroker:
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()  # quick shutdown
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
