"""``iadvize-harness``: one command, one sub-command per job."""

from __future__ import annotations

import argparse
import difflib
import importlib.metadata
import os
import sys
import tempfile
from pathlib import Path


def _serve(args) -> int:
    from .serve import serve

    return serve(args.host, args.port, args.db, args.scenarios, args.secret, args.workers, args.threads)


def _demo(args) -> int:
    from .demo import run

    return run(limit=args.limit, report_path=args.report)


def _verify(args) -> int:
    from .verify import run

    return run(args.provider_url, args.secret or os.environ.get("IADVIZE_SECRET"), args.pacts, args.junit,
               args.broker_url, args.publish, verbose=args.verbose)


def _check(args) -> int:
    from .check import Exploration, run

    exploration = Exploration(args.depth, args.max_conversations, args.id_operator, args.language,
                              list(args.escalation or []))
    return run(args.provider_url, args.secret or os.environ.get("IADVIZE_SECRET"), args.scripts, args.json,
               args.junit, args.html, exploration, verbose=args.verbose)


def _sample(args) -> int:
    from .client import BotClient
    from .embedded import BotProcessError, EmbeddedBot
    from .progress import Progress
    from .sample import generate

    progress = Progress()
    try:
        # Recorded from the reference bot; a fixed public URL keeps its editorUrl (and the sample) reproducible.
        with EmbeddedBot(workers=2, env={"REFERENCE_BOT_PUBLIC_URL": "https://bot.example.com"}) as bot:
            path = generate(BotClient(bot.url, id_connector_version="5a3e0f1c-2b4d-4c6e-8f01-a2b3c4d5e6f7"),
                            args.conversations, args.seed, Path(args.out), progress)
    except BotProcessError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        progress.done()
    print(path)
    return 0


def _replay(args) -> int:
    from .client import BotClient, GiveUp, preflight
    from .embedded import BotProcessError, EmbeddedBot
    from .progress import Progress
    from .recording import recording_files
    from .replay import Grouped, replay

    out = Path(args.out)
    if out.exists() and not out.is_dir():  # said plainly, before any bot is started
        print(f"error: cannot write the tables in {out}: it is a file, not a folder", file=sys.stderr)
        return 2
    try:
        recording_files(args.recordings)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    secret = args.secret or os.environ.get("IADVIZE_SECRET")
    progress = Progress()

    def say(text: str) -> None:  # a line of its own: the status line (on a terminal) makes way
        progress.done()
        print(text, file=sys.stderr, flush=True)

    told = Grouped(say)
    give_up = GiveUp()  # the preflight's calls and the replay's: a bot that hangs is given up after two
    embedded = None
    try:
        url = args.provider_url
        if url is None:
            embedded = EmbeddedBot(workers=2)
            url = embedded.start()
        if progress.tty:
            progress(f"replay: is the bot at {url} there?", step="preflight")
        _, stopped = preflight(BotClient(url, secret=secret, give_up=give_up))
        if stopped:  # said once, here, rather than once per conversation; --out is left as it was
            say(f"error: {stopped}")
            return 2
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            say(f"error: cannot write the tables in {out}: {error.strerror or error}")
            return 2
        summary = replay(args.recordings, url, out, secret, args.concurrency, progress, args.limit,
                         on_skipped=told, give_up=give_up)
    except (BotProcessError, FileNotFoundError) as error:
        say(f"error: {error}")
        return 2
    finally:
        progress.done()
        if embedded is not None:
            embedded.close()
    for line in [*told.rest(), *(f"given up: {line}" for line in summary.given_up)]:
        print(line, file=sys.stderr)
    if not summary.conversations:
        print(f"{summary}\nno conversation could be replayed: nothing written, {out} left as it was")
        return 1
    print(f"{summary}\n{out / 'exchanges.parquet'}\n{out / 'conversations.parquet'}")
    return 0


def _report(args) -> int:
    import shutil

    from .client import BotClient, GiveUp, preflight
    from .embedded import BotProcessError, EmbeddedBot
    from .progress import Progress
    from .recording import recording_files
    from .replay import Grouped, replay
    from .report import ReportError, build

    progress = Progress()

    def say(text: str) -> None:  # a line of its own: the status line (on a terminal) makes way
        progress.done()
        print(text, file=sys.stderr, flush=True)

    replayed_into = None  # the temporary folder of a replay made here, removed at the end
    try:
        if args.results:
            results = Path(args.results)
            if not (results / "exchanges.parquet").exists():
                say(f"error: {results} holds no exchanges.parquet: give the folder `replay --out` wrote")
                return 2
        else:
            recording_files([args.recordings])  # a missing recording is said before any bot is started
            results = replayed_into = Path(tempfile.mkdtemp(prefix="replay-"))
            told, give_up = Grouped(say), GiveUp()
            secret = getattr(args, "secret", None) or os.environ.get("IADVIZE_SECRET")
            embedded = None if args.provider_url else EmbeddedBot(workers=2)
            try:
                url = args.provider_url or embedded.start()
                _, stopped = preflight(BotClient(url, secret=secret, give_up=give_up))
                if stopped:
                    say(f"error: {stopped}")
                    return 2
                summary = replay([args.recordings], url, results, secret, limit=args.limit, progress=progress,
                                 on_skipped=told, give_up=give_up)
            finally:
                if embedded is not None:
                    embedded.close()
            progress.done()
            for line in [*told.rest(), *(f"given up: {line}" for line in summary.given_up), str(summary)]:
                print(line, file=sys.stderr)
            if not summary.conversations:
                print("error: no conversation could be replayed: nothing to report", file=sys.stderr)
                return 1
        path = build(results, Path(args.out), progress=progress)
    except (ReportError, BotProcessError, FileNotFoundError) as error:
        say(f"error: {error}")
        return 2
    finally:
        progress.done()
        if replayed_into is not None:
            shutil.rmtree(replayed_into, ignore_errors=True)
    print(path)
    return 0


def _proxy(args) -> int:
    from .proxy import RecordingProxy

    try:
        proxy = RecordingProxy(args.upstream, args.record, args.host, args.port)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"recording proxy on {proxy.url} -> {args.upstream}, recordings in {args.record}", flush=True)
    try:
        proxy.serve_forever()
    finally:
        proxy.close()
    return 0


def _load(args) -> int:
    from .embedded import BotProcessError, EmbeddedBot
    from .load import LoadError, run, run_worker
    from .load.plan import think_time
    from .progress import Progress

    secret = args.secret or os.environ.get("IADVIZE_SECRET")
    if args.worker:
        return run_worker(args.master_host, args.master_port, secret)
    try:
        think = think_time(args.think_time)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    embedded = None
    try:
        url = args.provider_url
        if url is None:
            embedded = EmbeddedBot(workers=2, secret=secret)
            url = embedded.start()
        outcome = run(url, args.operators, args.conversations_per_minute, args.duration, secret, args.csv, think,
                      args.messages, args.expect_workers, args.master_port, progress=Progress())
    except (LoadError, BotProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        if embedded is not None:
            embedded.close()
    print(outcome.report())
    return 0 if outcome.passed else 1


def _schemas(args) -> int:
    from . import wire
    from .recording import render_schema
    from .wire import openapi

    for path in wire.write_schemas(Path(args.out)):
        print(path)
    recording = Path(args.out) / "recording.v1.json"  # the recording format, beside the API's bodies
    recording.write_text(render_schema(), encoding="utf-8")
    print(recording)
    Path(args.openapi).write_text(openapi.render(), encoding="utf-8")
    print(args.openapi)
    return 0


def _positive(text: str) -> int:
    value = int(text) if text.strip().isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of 1 or more, got {text!r}")
    return value


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text!r}")
    return value


def _url(text: str) -> str:
    """A bot's base URL: http(s), with a host (requests' own error for ``bot.example.com`` says little)."""
    from .client import url_problem

    if problem := url_problem(text):
        raise argparse.ArgumentTypeError(problem)
    return text


def _output(text: str) -> str:
    """A file the command will write: its folder must exist, said before the run rather than after it."""
    folder = Path(text).expanduser().parent
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text}: the folder {folder} does not exist")
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text}: it is a folder, give a file name")
    if not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text}: no permission to write in {folder}")
    return text


def _bot_options(command: argparse.ArgumentParser) -> None:
    """The options of every command that talks to a bot."""
    command.add_argument("--provider-url", type=_url, metavar="URL",
                         help="the bot's base URL (default: start the embedded reference bot)")
    command.add_argument("--secret", help="the app's secret, to sign every request; prefer the IADVIZE_SECRET "
                                          "environment variable (a command line is visible to other users)")


def _version() -> str:
    try:
        return importlib.metadata.version("iadvize-harness")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def parser() -> argparse.ArgumentParser:
    from .phrasings import LANGUAGES
    from .serve import default_workers

    main = argparse.ArgumentParser(prog="iadvize-harness",
                                   description="Test harness and reference connector for iAdvize external bots.")
    main.add_argument("--version", action="version", version=f"iadvize-harness {_version()}")
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the reference bot with gunicorn")
    serve.add_argument("--host", default="127.0.0.1",
                       help="the address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    serve.add_argument("--port", type=int, default=5000, help="0 picks a free port (default 5000)")
    serve.add_argument("--db", metavar="FILE", help="the SQLite file of operators and conversations "
                                                    "(default: instance/reference-bot.sqlite3)")
    serve.add_argument("--scenarios", help="directory of scenario YAML files (default: the shipped ones)")
    serve.add_argument("--secret", help="iAdvize app secret; prefer the IADVIZE_SECRET environment variable")
    serve.add_argument("--workers", type=int, default=default_workers(),
                       help=f"gunicorn worker processes (default {default_workers()}: 2 per core plus one, at most 9)")
    serve.add_argument("--threads", type=int, default=4, help="threads per worker")
    serve.set_defaults(run=_serve)

    demo = commands.add_parser("demo", help="the main job: the reference bot driven, verified, checked, "
                                            "replayed and reported on")
    demo.add_argument("--limit", type=_positive, help="replay the first N conversations of the sample only")
    demo.add_argument("--report", default="report.html", type=_output, help="where to write the HTML report")
    demo.set_defaults(run=_demo)

    verify = commands.add_parser("verify", help="verify a bot against the iAdvize pacts",
                                 description="Verify a bot (the embedded reference bot when no URL is given) "
                                             "against what iAdvize needs from it.")
    _bot_options(verify)
    verify.add_argument("--pacts", help="a folder of pacts, a pact file or a URL (default: contracts/pacts)")
    verify.add_argument("--junit", metavar="FILE", type=_output, help="also write the results as JUnit XML")
    verify.add_argument("--broker-url", help="take the pacts from this Pact Broker")
    verify.add_argument("--publish", metavar="VERSION", help="publish the results to the broker as this version")
    verify.add_argument("-v", "--verbose", action="store_true",
                        help="also print a curl command that reproduces each failing interaction")
    verify.set_defaults(run=_verify)

    check = commands.add_parser("check", help="drive a bot through probe conversations and judge every exchange",
                                description="Run probe conversations (and your scripts) through a simulated "
                                            "iAdvize platform and report every rule broken.")
    _bot_options(check)
    check.add_argument("--scripts", metavar="DIR", help="also run the conversation scripts (*.convo.yaml) there")
    check.add_argument("--json", metavar="FILE", type=_output, help="write the findings as JSON")
    check.add_argument("--junit", metavar="FILE", type=_output,
                       help="write the findings as JUnit XML (one case per rule)")
    check.add_argument("--html", metavar="FILE", type=_output, help="write the findings and transcripts as HTML")
    check.add_argument("--depth", type=int, default=3, help="quick replies followed in a row (default 3)")
    check.add_argument("--max-conversations", type=int, default=12,
                       help="explored conversations at most (default 12)")
    check.add_argument("--id-operator", metavar="ID",
                       help="the operator to save and converse as, e.g. one your bot already knows "
                            "(default: a new ha-NNNNNN per scenario)")
    check.add_argument("--language", choices=LANGUAGES,
                       help="the operator's language (sent in PUT /bots) and the probes' (default: en, "
                            "with escalation tried in English and French)")
    check.add_argument("--escalation", action="append", metavar="TEXT",
                       help="a phrase your bot transfers on, tried first (repeatable)")
    check.add_argument("-v", "--verbose", action="store_true",
                       help="also print a curl command that reproduces each finding")
    check.set_defaults(run=_check)

    sample = commands.add_parser("sample", help="record a synthetic sample of conversations with the reference bot")
    sample.add_argument("--conversations", type=_positive, default=2000,
                        help="how many conversations to record (default 2000)")
    sample.add_argument("--seed", type=int, default=7,
                        help="the random seed: the same seed, the same sample (default 7)")
    sample.add_argument("--out", default="notebooks/data", help="folder of the recording (sample.jsonl.gz)")
    sample.set_defaults(run=_sample)

    replay = commands.add_parser("replay", help="replay recorded conversations against a bot, into parquet tables")
    replay.add_argument("recordings", nargs="+", help="recording files (*.jsonl, *.jsonl.gz) or folders of them")
    _bot_options(replay)
    replay.add_argument("--concurrency", type=_positive, default=4, help="conversations replayed at once (default 4)")
    replay.add_argument("--limit", type=_positive, help="replay the first N conversations only")
    replay.add_argument("--out", default="results", help="folder of exchanges.parquet and conversations.parquet")
    replay.set_defaults(run=_replay)

    report = commands.add_parser("report", help="the notebooks, executed, as one self-contained HTML page")
    source = report.add_mutually_exclusive_group()
    source.add_argument("--recordings", default="notebooks/data/sample.jsonl.gz",
                        help="recordings to replay first (default: the committed sample)")
    source.add_argument("--results", help="a folder written by `replay --out` (no replay then)")
    _bot_options(report)
    report.add_argument("--limit", type=_positive, help="replay the first N conversations only")
    report.add_argument("--out", default="report.html", type=_output,
                        help="the HTML file to write (default report.html)")
    report.set_defaults(run=_report)

    proxy = commands.add_parser("proxy", help="a reverse proxy that records every exchange with a bot")
    proxy.add_argument("--upstream", required=True, type=_url, help="the bot's base URL")
    proxy.add_argument("--record", required=True, metavar="DIR", help="where the hourly JSONL files go")
    proxy.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    proxy.add_argument("--port", type=int, default=8081, help="the port iAdvize (or you) call (default 8081)")
    proxy.set_defaults(run=_proxy)

    load = commands.add_parser("load", help="load a bot with iAdvize-shaped traffic (Locust, headless)",
                               description="Poll every operator's availability each second, open chats at the "
                                           "given rate and converse; report each endpoint's throughput, "
                                           "latency and budget breaks. Exit 1 on any error or broken budget.")
    _bot_options(load)
    load.add_argument("--operators", type=_positive, default=5, help="operators created and polled (default 5)")
    load.add_argument("--conversations-per-minute", type=_positive_number, default=10,
                      help="new chats per minute (default 10)")
    load.add_argument("--duration", type=_positive_number, default=60, help="seconds of load (default 60)")
    load.add_argument("--csv", metavar="PREFIX", type=_output,
                      help="also write Locust's CSV statistics (PREFIX_stats.csv...)")
    load.add_argument("--think-time", default="5-20", metavar="SECONDS",
                      help="a visitor's pause between messages, a range such as 5-20 (default)")
    load.add_argument("--messages", type=_positive, default=4,
                      help="visitor messages per conversation, at most (default 4)")
    load.add_argument("--expect-workers", type=_positive, default=0, metavar="N",
                      help="run as a Locust master and wait for N workers (see --worker)")
    load.add_argument("--worker", action="store_true", help="run as a Locust worker of a master (--master-host)")
    load.add_argument("--master-host", default="127.0.0.1", help="the master a worker connects to")
    load.add_argument("--master-port", type=int, default=5557, help="the master's port (default 5557)")
    load.set_defaults(run=_load)

    schemas = commands.add_parser("schemas", help="write the wire model's JSON Schemas and OpenAPI document")
    schemas.add_argument("--out", default="contracts/schemas", help="folder of the JSON Schemas")
    schemas.add_argument("--openapi", default="contracts/openapi.yaml", help="the OpenAPI 3.1 file")
    schemas.set_defaults(run=_schemas)
    return main


def main(argv: list[str] | None = None) -> int:
    main_parser = parser()
    args, unknown = main_parser.parse_known_args(argv)
    if unknown:  # said by the sub-command, with its usage and the flag probably meant
        sub = _subparsers(main_parser)[args.command]
        flags = [flag for action in sub._actions for flag in action.option_strings]
        close = difflib.get_close_matches(unknown[0].split("=")[0], flags, n=1)
        sub.error(f"unrecognized arguments: {' '.join(unknown)}" + (f" (did you mean {close[0]}?)" if close else ""))
    if getattr(args, "publish", None) and not getattr(args, "broker_url", None):
        main_parser.error("--publish needs --broker-url: results are published to the broker the pacts came from")
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return 130


def _subparsers(main_parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in main_parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


if __name__ == "__main__":
    sys.exit(main())
