"""The chat page's server: the page and its assets (from the wheel), and a small JSON API the page calls to
open a conversation, write as the visitor or as the human, and read what happened."""

from __future__ import annotations

import secrets
import tempfile
from html import escape
from importlib.resources import files
from pathlib import Path

from flask import Blueprint, Flask, current_app, jsonify, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.serving import WSGIRequestHandler, make_server

from harness.chat.session import ChatSession
from harness.client import BotError
from harness.wire.model import FILE_MIME_TYPES

ASSETS = {"chat.js": "text/javascript", "chat.css": "text/css"}
MAX_FILE_BYTES = 10 * 1024 * 1024  # a bound of ours on what the page keeps for the bot to fetch
MAX_FILES = 20  # files kept for the bot to fetch; older ones are forgotten
STATIC = files("harness.chat") / "static"
blueprint = Blueprint("chat", __name__)


def create_app(session: ChatSession, title: str = "") -> Flask:
    """The chat page's app around ``session`` (``title``: what the page says it talks to)."""
    app = Flask(__name__)
    app.extensions["chat"] = {"session": session, "title": title or "your bot", "files": {}}
    app.config["MAX_CONTENT_LENGTH"] = MAX_FILE_BYTES + 1024 * 1024  # a recording or a file, not more
    app.register_blueprint(blueprint)
    app.register_error_handler(HTTPException, _http_problem)  # every answer of the page's API is JSON
    app.register_error_handler(Exception, _unexpected)
    return app


def _http_problem(problem: HTTPException):
    said = {413: f"too large: a file or a recording of up to {MAX_FILE_BYTES // (1024 * 1024)} MB"}
    return _problem(problem.code or 500, said.get(problem.code, problem.description or problem.name))


def _unexpected(problem: Exception):
    current_app.logger.exception("the chat page failed")
    return _problem(500, f"the chat page failed ({type(problem).__name__}): see the terminal it runs in")


def _session() -> ChatSession:
    return current_app.extensions["chat"]["session"]


@blueprint.get("/")
def page():
    """The chat page, its title saying which bot it talks to."""
    html = (STATIC / "chat.html").read_text(encoding="utf-8")
    title = escape(current_app.extensions["chat"]["title"])
    return html.replace("{{title}}", title), 200, {"Content-Type": "text/html; charset=utf-8"}


@blueprint.get("/static/<name>")
def asset(name: str):
    """One of the page's own assets (script, style), from the wheel; nothing else."""
    if name not in ASSETS:
        return _problem(404, f"no asset {name!r}")
    return (STATIC / name).read_text(encoding="utf-8"), 200, {"Content-Type": f"{ASSETS[name]}; charset=utf-8"}


@blueprint.post("/api/new")
def new():
    """A new conversation: the operator set up, the chatbox opened, the greeting asked for."""
    return _step(lambda: _session().new())


@blueprint.post("/api/say")
def say():
    """The visitor writes (a quick reply tapped is its value written)."""
    return _step(lambda: _session().say(_text()))


@blueprint.post("/api/file")
def file():
    """The visitor sends a file (the body, its type as Content-Type, ``?name=`` its name): kept here for the bot
    to fetch, and posted to the bot as iAdvize posts a file, its ``url`` this server's."""
    kind = (request.content_type or "").split(";")[0].strip().lower()
    # its own name only: no folder, nothing a URL would read as a path
    name = (request.args.get("name") or "").replace("\\", "/").rsplit("/", 1)[-1].strip()[:200] or "file"
    if kind not in FILE_MIME_TYPES:  # what a file payload may be
        return _problem(415, f"a visitor can send GIF, PNG and JPEG images and PDF files, not {kind or 'this file'}")
    data = request.get_data()
    if not data:
        return _problem(400, "the file is empty: choose another")
    if len(data) > MAX_FILE_BYTES:
        return _problem(413, f"the file is over {MAX_FILE_BYTES // (1024 * 1024)} MB: choose a smaller one")
    kept = current_app.extensions["chat"]["files"]
    while len(kept) >= MAX_FILES:
        kept.pop(next(iter(kept)))
    token = secrets.token_urlsafe(12)
    kept[token] = (data, kind)
    url = url_for("chat.visitor_file", token=token, name=name, _external=True)
    payload = {"contentType": "file", "fileName": name, "mimeType": kind, "url": url}
    return _step(lambda: _session().send(payload))


@blueprint.get("/files/<token>/<name>")
def visitor_file(token: str, name: str):
    """A file the visitor sent, for the bot to fetch as it would from iAdvize."""
    kept = current_app.extensions["chat"]["files"].get(token)
    if kept is None:
        return _problem(404, "no such file: it was sent in an earlier session, or forgotten")
    data, kind = kept
    return data, 200, {"Content-Type": kind, "Content-Disposition": "attachment", "X-Content-Type-Options": "nosniff"}


@blueprint.get("/favicon.ico")
def favicon():
    """No icon: said at once, rather than a 404 in the browser's console."""
    return "", 204


@blueprint.post("/api/wait")
def wait():
    """The visitor stays silent while the bot's pending wait passes (``{"seconds": S}``, the wait the page saw)."""
    body = request.get_json(silent=True)
    seconds = body.get("seconds") if isinstance(body, dict) else None
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not 0 <= seconds <= 1e9:
        return _problem(400, 'say which wait to let pass: {"seconds": S}, as /api/events gives it')
    return _step(lambda: _session().wait(float(seconds)))


@blueprint.post("/api/recording")
def open_recording():
    """A recording to play again: the file's bytes as the body (``?conversation=ID`` for one of its conversations)."""

    def opened():
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / ("recording.jsonl.gz" if request.data[:2] == b"\x1f\x8b" else "recording.jsonl")
            path.write_bytes(request.get_data())
            _session().open_recording(path, request.args.get("conversation") or None)

    return _step(opened)


@blueprint.post("/api/step")
def step():
    """The next recorded visitor message sent to the bot now."""
    return _step(lambda: _session().step() or _nothing_left())


def _nothing_left():
    raise ValueError("every recorded message was sent: open another recording, or start a new conversation")


@blueprint.get("/api/settings")
def settings():
    """The operator's settings, and the scenarios the bot offers."""
    return jsonify(_session().settings())


@blueprint.post("/api/settings")
def configure():
    """New settings: the scenario, language and distribution rules for the next conversation, a human available
    to each rule or not."""
    body = request.get_json(silent=True) if request.is_json else None
    body = body if isinstance(body, dict) else {}
    return _step(lambda: _session().configure(body.get("scenario"), body.get("language"), body.get("rules")))


@blueprint.post("/api/human")
def human():
    """The human who took the conversation writes."""
    return _step(lambda: _session().human_says(_text()))


@blueprint.get("/api/script")
def script():
    """The conversation as a conversation script, to download."""
    return _download(lambda: _session().script(), "chat.convo.yaml", "application/yaml")


@blueprint.get("/api/recording")
def recording():
    """The conversation as a recording (JSON lines), to download."""
    return _download(lambda: _session().recording(), "chat.jsonl", "application/x-ndjson")


def _download(make, name: str, kind: str):
    try:
        text = make()
    except ValueError as problem:
        return _problem(409, str(problem))
    return (
        text,
        200,
        {"Content-Type": f"{kind}; charset=utf-8", "Content-Disposition": f'attachment; filename="{name}"'},
    )


@blueprint.get("/api/calls/<int:n>/fates")
def fates(n: int):
    """What became of each reply of call ``n``, as of now."""
    try:
        return jsonify(fates=_session().fates(n))
    except ValueError as problem:
        return _problem(404, str(problem))


@blueprint.get("/api/events")
def events():
    """What happened since event ``since`` (and the bot's calls to iAdvize's API since ``apiSince``), whether a
    human has the conversation, what the bot waits for."""
    session = _session()
    handed_over = bool(session.chat is not None and session.chat.handed_over)
    return jsonify(
        events=session.events(_index("since")),
        apiCalls=session.api_calls(_index("apiSince")),
        waiting=session.waiting,
        open=session.chat is not None,
        handedOver=handed_over,
        stepsLeft=session.steps_left,
        scenarioProblem=session.scenario_problem,
    )


def _step(action):
    """Runs one step of the conversation; a step the conversation cannot take, or a bot that did not answer as
    the API says, is one line for the page."""
    try:
        action()
    except ValueError as problem:
        return _problem(409, str(problem))
    except BotError as problem:
        said = "the bot did not answer" if problem.status is None else "the bot's answer cannot be used"
        return _problem(502, f"{said}: {problem}")
    return jsonify(ok=True)


def _index(name: str) -> int:
    """A query's index (0 when absent or not a whole number in ASCII digits)."""
    given = request.args.get(name, "0")
    return int(given) if given.isascii() and given.isdigit() and len(given) < 10 else 0


def _text() -> str:
    body = request.get_json(silent=True)
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise ValueError('give the text to send: {"text": "..."}')
    return text[:5000]


class _Quiet(WSGIRequestHandler):
    """No access line per request: in a notebook they would fill the cell's output."""

    def log_request(self, *args) -> None:
        pass


def serve(app: Flask, port: int = 0):
    """``app`` on 127.0.0.1:``port`` (0: a free one), threaded, quiet; the server, to ``serve_forever``."""
    return make_server("127.0.0.1", port, app, threaded=True, request_handler=_Quiet)


def _problem(status: int, detail: str):
    return jsonify(error=detail), status
