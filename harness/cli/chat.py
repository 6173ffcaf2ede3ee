"""``iadvize-harness chat``: talk to a bot as a visitor would, on a local page, beside an inspector of every
call judged by check's rules (the embedded reference bot by default, with the local iAdvize API it posts its
slow answers through)."""

from __future__ import annotations

import signal
import socket
import webbrowser

from harness.bots import BotProcessError, bot
from harness.chat.app import create_app, serve
from harness.chat.session import ChatSession
from harness.cli.commands import Stopped, error, local_api, which_bot
from harness.cli.options import webhook_option, webhooks_for
from harness.client import BotClient


def add_parser(subcommands, parents: list) -> None:
    """The ``chat`` command and its options."""
    chat = subcommands.add_parser(
        "chat",
        parents=parents,
        help="chat with a bot on a local page, each call inspected and judged",
        description="Serve a local page where you talk to the bot as a visitor (and as the human after a "
        "transfer), beside an inspector of every call judged by check's rules.",
    )
    chat.add_argument(
        "--scenario",
        default="",
        help="the operator's idBot (default: order-assistant if the bot offers it, else its first)",
    )
    chat.add_argument("--language", default="en", help="the operator's language (default en)")
    chat.add_argument("--port", type=int, default=8765, help="where the page is served (default 8765; 0: a free one)")
    chat.add_argument("--open", action="store_true", help="open the page in the default browser")
    chat.add_argument(
        "--nobody-available",
        action="store_true",
        help="transfers find no human (they fail after their timeout); by default a human takes them, played by you",
    )
    chat.add_argument("--recording", metavar="FILE", help="a recording whose conversation to play again, step by step")
    chat.add_argument("--conversation", metavar="ID", help="which conversation of --recording (default: its first)")
    webhook_option(chat)
    chat.set_defaults(run=run)


def _port_taken(port: int) -> str | None:
    """Why the page cannot listen on ``port`` (as its server will: address reuse on), or None."""
    if not port:
        return None
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as problem:
            return problem.strerror or str(problem)
    return None


def _interrupted(*_) -> None:
    raise KeyboardInterrupt


def run(args) -> int:
    """Serves the chat page until interrupted."""
    if problem := _port_taken(args.port):  # said before the bot is started, not after
        return error(f"cannot serve the chat page on port {args.port}: {problem} (--port 0 takes a free one)")
    try:
        with (
            local_api(args) as api,
            bot(args.provider_url, secret=args.secret, env=api.reference_bot_settings(), package=args.bot) as url,
        ):
            session = ChatSession(BotClient(url, secret=args.secret), args.scenario, args.language,
                                  human_available=not args.nobody_available, api=api,
                                  webhooks=webhooks_for(args, url))  # fmt: skip
            try:
                app = create_app(session, args.provider_url or "the reference bot")
                server = serve(app, args.port)
            except OSError as problem:
                return error(f"cannot serve the chat page on port {args.port}: {problem.strerror or problem}")
            if args.recording:
                session.open_recording(args.recording, args.conversation)
            page = f"http://127.0.0.1:{server.server_port}"
            print(f"open {page} to chat with {which_bot(args, url, api)} (Ctrl-C stops)", flush=True)
            if args.open:
                webbrowser.open(page)
            signal.signal(signal.SIGTERM, _interrupted)  # stopped by kill as by Ctrl-C: the embedded bot with it
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                pass
            finally:
                server.server_close()
    except (BotProcessError, Stopped, ValueError, OSError) as problem:  # ValueError: no such conversation
        return error(str(problem))
    return 0
