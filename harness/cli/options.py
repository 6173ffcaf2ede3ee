"""Options shared by several commands, declared once (argparse parent parsers), and their value types."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

SECRET_VARIABLE = "IADVIZE_SECRET"


def positive(text: str) -> int:
    """A whole number of 1 or more."""
    value = int(text) if text.strip().isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of 1 or more, got {text!r}")
    return value


def whole(text: str) -> int:
    """A whole number of 0 or more."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number of 0 or more, got {text!r}")
    return int(text)


def number(text: str) -> float:
    """A finite number of 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of 0 or more, got {text!r}")
    return value


def positive_number(text: str) -> float:
    """A finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text!r}")
    return value


def url(text: str) -> str:
    """A bot's base URL: http(s), with a host (requests' own error for ``bot.example.com`` says little)."""
    from harness.client import url_problem

    if problem := url_problem(text):
        raise argparse.ArgumentTypeError(problem)
    return text


def path_or_url(text: str) -> str:
    """A path under the bot's URL (``/health``) or an http(s) URL of its own."""
    if text.startswith("/"):
        return text
    if text.startswith(("http://", "https://")):
        return url(text)
    raise argparse.ArgumentTypeError(f"must be a path such as /health, or an http(s) URL, got {text!r}")


def output(text: str) -> str:
    """A file the command will write: its folder must exist, said before the run rather than after it."""
    folder = Path(text).expanduser().parent
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text}: the folder {folder} does not exist")
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text}: it is a folder, give a file name")
    if not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text}: no permission to write in {folder}")
    return text


def secret_option(parser: argparse.ArgumentParser) -> None:
    """``--secret``; when absent, :func:`resolve_secret` takes ``IADVIZE_SECRET`` instead."""
    parser.add_argument(
        "--secret",
        help=f"the app's secret, to sign every request; prefer the {SECRET_VARIABLE} "
        "environment variable (a command line is visible to other users)",
    )


def healthcheck_option(parser: argparse.ArgumentParser) -> None:
    """``--healthcheck-url``, for the commands that call the health check as the developer platform does."""
    parser.add_argument(
        "--healthcheck-url",
        type=path_or_url,
        metavar="URL",
        help="the health check URL set in your app's settings, or a path under the bot's URL (default: "
        "/healthcheck, else /health, /healthz or /status)",
    )


def webhook_option(parser: argparse.ArgumentParser) -> None:
    """``--webhook-url``, for the commands that run conversations on the simulated platform."""
    parser.add_argument(
        "--webhook-url",
        type=url,
        metavar="URL",
        help="deliver iAdvize's conversation webhooks (v2.conversation.pushed and .closed, signed) there "
        "(default: none; the embedded bot's /webhooks)",
    )


def webhooks_for(args: argparse.Namespace, bot_url: str):
    """Where the conversation webhooks go: ``--webhook-url``, else the embedded bot's ``/webhooks``; a bot of
    yours gets none unless told (its webhook address is its own)."""
    from harness.conformance.webhooks import Webhooks

    hook = args.webhook_url or (None if args.provider_url else f"{bot_url}/webhooks")
    return Webhooks(hook, args.secret) if hook else None


def bot_options() -> argparse.ArgumentParser:
    """The options of every command that talks to a bot: which bot, and the secret to sign with."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--provider-url", type=url, metavar="URL", help="the bot's base URL (default: start the embedded reference bot)"
    )
    options.add_argument(
        "--bot",
        metavar="FOLDER",
        help="without --provider-url: the bot to start, a copy made with `iadvize-harness template` (its folder, "
        "e.g. ./mybot; default: the reference bot)",
    )
    secret_option(options)
    return options


def api_options() -> argparse.ArgumentParser:
    """The options of every command that serves the local iAdvize API for the bot to call."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--iadvize-api-port",
        type=int,
        default=0,
        metavar="PORT",
        help="the port of the local iAdvize API the bot may call (OAuth, GraphQL); point your bot at "
        "http://127.0.0.1:PORT (default: a free port, printed)",
    )
    return options


def resolve_secret(args: argparse.Namespace) -> None:
    """The one place the secret's environment variable is read: ``--secret`` wins over it."""
    if hasattr(args, "secret"):
        args.secret = args.secret or os.environ.get(SECRET_VARIABLE) or None
