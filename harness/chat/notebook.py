"""``harness.chat(url)`` in a notebook: the chat page served from the kernel, shown in the cell as an IFrame (it
works offline and in JupyterLab and Notebook alike, when the browser runs on the kernel's machine), and the
conversation as a DataFrame afterwards."""

from __future__ import annotations

import atexit
import threading
from contextlib import ExitStack
from html import escape

from harness.bots import bot
from harness.chat.app import create_app, serve
from harness.chat.session import ChatSession
from harness.client import BotClient


class Chat:
    """A chat page with the bot at ``url`` (None: the embedded reference bot, with the local iAdvize API it posts
    through) served from this process on a free loopback port; drawn in a notebook cell as an IFrame. With a
    ``recording`` (and a ``conversation`` of it), that conversation is opened to be played again."""

    def __init__(
        self,
        url: str | None = None,
        secret: str | None = None,
        scenario: str = "",
        language: str = "en",
        human_available: bool = True,
        height: int = 760,
        recording=None,
        conversation: str | None = None,
    ):
        from harness.conformance.iadvize_api import IAdvizeAPI

        self.height = height
        self._stack = ExitStack()
        api = self._stack.enter_context(IAdvizeAPI())
        bot_url = self._stack.enter_context(bot(url, secret=secret, env=api.reference_bot_settings()))
        self.session = ChatSession(BotClient(bot_url, secret=secret), scenario, language, human_available, api=api)
        app = create_app(self.session, url or "the reference bot")
        self.server = serve(app)
        self._stack.callback(self.server.server_close)
        self._stack.callback(self.server.shutdown)
        threading.Thread(target=self.server.serve_forever, args=(0.1,), name="chat", daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        atexit.register(self.close)  # the kernel shutting down stops the bot it started, never left running
        if recording is not None:  # a recorded conversation to play again, one message per click
            self.session.open_recording(recording, conversation)

    def _repr_html_(self) -> str:
        return (
            f'<iframe src="{escape(self.url)}" title="chat with the bot" width="100%" height="{int(self.height)}" '
            f'style="border: 1px solid #ccc"></iframe><p>the chat page: <a href="{escape(self.url)}" '
            f'target="_blank">{escape(self.url)}</a></p>'
        )

    def transcript(self):
        """The conversation so far as a DataFrame: one row per event (what was shown, said, called), in order,
        a call with its status, latency and the rules it broke."""
        import pandas as pd

        rows = [
            {
                "at": e["at"],
                "kind": e["kind"],
                "purpose": e.get("purpose") or "",
                "text": e["text"],
                "status": e.get("status"),
                "latency_ms": e.get("latency_ms"),
                "rules": ", ".join(f["rule"] for f in e.get("findings", [])) or None,
            }
            for e in self.session.events()
        ]
        return pd.DataFrame(rows, columns=["at", "kind", "purpose", "text", "status", "latency_ms", "rules"])

    def close(self) -> None:
        """Stops the page, and the embedded bot and the local iAdvize API when it started them."""
        self._stack.close()

    def __enter__(self) -> Chat:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_chat(url: str | None = None, **options) -> Chat:
    """``harness.chat(url)``: a :class:`Chat` with the bot at ``url`` (the embedded reference bot by default);
    display it (the last expression of a cell) to talk to the bot, then ``.transcript()``."""
    return Chat(url, **options)
