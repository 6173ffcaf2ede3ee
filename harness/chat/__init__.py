"""Chat with a bot as a visitor would, on a local page: the visitor's side as iAdvize shows it, beside an inspector
of every call (its status, latency against its budget, bodies, and the findings of check's rules on it).

:mod:`.session` drives one conversation on the simulated iAdvize platform; :mod:`.app` serves the page (Flask,
every asset in the wheel, no build step, no CDN). ``iadvize-harness chat`` starts both; in a notebook,
``harness.chat(url)`` shows the page in the cell (:mod:`.notebook`).
"""

import sys
import types


class _ChatPackage(types.ModuleType):
    """The package, callable: ``harness.chat(url)`` opens a chat in a notebook (:func:`.notebook.open_chat`)."""

    def __call__(self, url: str | None = None, **options):
        from harness.chat.notebook import open_chat

        return open_chat(url, **options)


sys.modules[__name__].__class__ = _ChatPackage
