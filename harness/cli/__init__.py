"""``iadvize-harness``: one command, one sub-command per job. Parsing here; the work in :mod:`.commands`."""

from __future__ import annotations

import argparse
import difflib
import importlib.metadata
import os
import re
import sys

from harness.cli import chat, commands
from harness.cli.options import (
    api_options,
    bot_options,
    healthcheck_option,
    number,
    output,
    positive,
    positive_number,
    resolve_secret,
    url,
    webhook_option,
    whole,
)
from harness.extras import MissingExtra, require

# sub-command -> the extra it needs beyond the core install
NEEDS = {"demo": "analysis", "replay": "analysis", "report": "analysis", "load": "load"}


def _version() -> str:
    try:
        return importlib.metadata.version("iadvize-harness")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


OUTCOMES_HELP = (
    "a YAML file of outcome rules: asked_for_human (the words of a visitor asking for a person) and "
    "resolved (bot texts that mean resolved) (default: the harness's)"
)


class _Parser(argparse.ArgumentParser):
    """argparse, its errors said first: the error, the one option concerned with its help, where the rest is
    (``--help``); not the whole usage before the line that matters."""

    def error(self, message: str):
        chosen = re.match(r"argument COMMAND: invalid choice: '([^']*)'", message)
        listed = [a for a in self._actions if isinstance(a, argparse._SubParsersAction)]
        if chosen and listed:  # a mistyped command: the one meant first, if one is close, then them all
            names = list(listed[0].choices)
            close = difflib.get_close_matches(chosen.group(1), names, n=1)
            meant = f" (did you mean {close[0]}?)" if close else ""
            message = f"no command {chosen.group(1)!r}{meant}; the commands: {', '.join(names)}"
        lines = [f"error: {message}"]
        action = self._concerned(message)
        if action is not None:
            formatter = self._get_formatter()
            formatter.add_arguments([action])
            lines.append(formatter.format_help().rstrip())
        lines.append(f"see `{self.prog} --help`")
        self.exit(2, "\n".join(lines) + "\n")

    def _concerned(self, message: str):
        """The option the message is about: named after ``argument``, ``required:``, or ``did you mean``."""
        named = re.match(r"argument (\S+?):", message) or re.search(r"did you mean (\S+?)\?", message)
        named = named or re.search(r"arguments are required: (\S+?)(,|$)", message)
        if named is None:
            return None
        flags = set(named.group(1).split("/"))
        return next(
            (
                a
                for a in self._actions
                if flags & {*a.option_strings, a.metavar, a.dest} and not isinstance(a, argparse._SubParsersAction)
            ),
            None,
        )  # the commands' list is in the message already


def parser() -> argparse.ArgumentParser:
    """The ``iadvize-harness`` argument parser: one sub-command per job, shared options from parents."""
    from harness.conformance.phrasings import LANGUAGES
    from harness.load.ramp import DEFAULT_MAX_STEPS, SIZING_PERCENTILE
    from reference_bot.serve import options as serve_options

    top = _Parser(prog="iadvize-harness", description="Test harness and reference connector for iAdvize external bots.")
    top.add_argument("--version", action="version", version=f"iadvize-harness {_version()}")
    subcommands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = subcommands.add_parser(
        "serve",
        help="run the reference bot, or your copy of it, with gunicorn",
        description="Run the reference bot, or a bot made with `iadvize-harness template` (--bot FOLDER), with "
        "gunicorn: settings, scenarios, database and port checked once, then its URL printed.",
        parents=[serve_options()],
    )
    serve.add_argument(
        "--bot",
        default="reference_bot",
        metavar="FOLDER",
        help="a bot made with `iadvize-harness template` (its folder, e.g. ./mybot), run with this install's "
        "Python (default: the reference bot)",
    )
    serve.set_defaults(run=commands.serve)

    demo = subcommands.add_parser(
        "demo", help="see it all work on the reference bot: driven, verified, checked, replayed, reported on"
    )
    demo.add_argument("--limit", type=positive, help="replay the first N conversations of the sample only")
    demo.add_argument("--report", default="report.html", type=output, help="where to write the HTML report")
    demo.set_defaults(run=commands.demo)

    bot = bot_options()
    api = api_options()  # the commands that play conversations serve the iAdvize API the bot may call
    chat.add_parser(subcommands, [bot, api])
    verify = subcommands.add_parser(
        "verify",
        help="verify a bot against the iAdvize pacts",
        parents=[bot],
        description="Verify a bot (the embedded reference bot when no URL is given) "
        "against what iAdvize needs from it.",
    )
    verify.add_argument("--pacts", help="a folder of pacts, a pact file or a URL (default: the iAdvize pacts, shipped)")
    verify.add_argument("--junit", metavar="FILE", type=output, help="also write the results as JUnit XML")
    verify.add_argument(
        "--json",
        metavar="FILE",
        type=output,
        help="also write the results as JSON: per interaction pass, fail or pending, the reasons, a reproduce command",
    )
    healthcheck_option(verify)
    verify.add_argument("--filter-description", metavar="TEXT", help="only the interactions of this description")
    verify.add_argument("--filter-state", metavar="STATE", help="only the interactions with this provider state")
    verify.add_argument(
        "--exit-first",
        action="store_true",
        help="stop at the first interaction that fails (local pacts, one interaction at a time)",
    )
    broker = verify.add_argument_group(
        "Pact Broker",
        "The Pact verifier CLI's options; PACT_BROKER_TOKEN, or PACT_BROKER_USERNAME and PACT_BROKER_PASSWORD, "
        "authenticate.",
    )
    broker.add_argument(
        "--broker-url",
        type=url,
        metavar="URL",
        default=os.environ.get("PACT_BROKER_BASE_URL") or None,
        help="take the pacts from this Pact Broker (default: PACT_BROKER_BASE_URL)",
    )
    broker.add_argument(
        "--consumer-version-selectors",
        metavar="JSON",
        help='which pacts, as the broker selects them, e.g. \'[{"mainBranch": true}, {"deployedOrReleased": true}]\' '
        "(a JSON object or array, sent to the broker as given)",
    )
    broker.add_argument(
        "--enable-pending", action="store_true", help="new interactions are pending: their failures do not fail the run"
    )
    broker.add_argument(
        "--include-wip-pacts-since",
        metavar="DATE",
        help="also verify work-in-progress pacts since this date (YYYY-MM-DD)",
    )
    broker.add_argument(
        "--provider-version",
        default=os.environ.get("PACT_PROVIDER_VERSION") or None,
        help="the version of your bot the results are for, e.g. its git commit (default: PACT_PROVIDER_VERSION)",
    )
    broker.add_argument(
        "--provider-branch",
        default=os.environ.get("PACT_PROVIDER_BRANCH") or None,
        help="its branch: selects pending and WIP pacts, and is published (default: PACT_PROVIDER_BRANCH)",
    )
    broker.add_argument(
        "--provider-tags", metavar="TAGS", help="its tags, comma-separated (published with the results)"
    )
    broker.add_argument("--build-url", metavar="URL", help="the CI build that verified it (published with the results)")
    broker.add_argument(
        "--publish",
        nargs="?",
        const="",
        metavar="VERSION",
        help="publish the results to the broker, as --provider-version (or as VERSION, when given)",
    )
    verify.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also print a curl command that reproduces each failing interaction",
    )
    verify.set_defaults(run=commands.verify)

    check = subcommands.add_parser(
        "check",
        parents=[bot, api],
        help="drive a bot through probe conversations and judge every exchange",
        description="Run probe conversations (and your scripts) through a simulated "
        "iAdvize platform and report every rule broken.",
    )
    check.add_argument("--scripts", metavar="DIR", help="also run the conversation scripts (*.convo.yaml) there")
    check.add_argument("--json", metavar="FILE", type=output, help="write the findings as JSON")
    check.add_argument(
        "--junit", metavar="FILE", type=output, help="write the findings as JUnit XML (one case per rule)"
    )
    check.add_argument("--html", metavar="FILE", type=output, help="write the findings and transcripts as HTML")
    check.add_argument("--depth", type=int, default=3, help="quick replies followed in a row (default 3)")
    check.add_argument("--max-conversations", type=int, default=12, help="explored conversations at most (default 12)")
    check.add_argument(
        "--id-operator",
        metavar="ID",
        help="the operator to save and converse as, e.g. one your bot already knows "
        "(default: a new ha-NNNNNN per scenario)",
    )
    check.add_argument(
        "--language",
        choices=LANGUAGES,
        help="the operator's language (sent in PUT /bots) and the probes' (default: en, "
        "with escalation tried in English and French)",
    )
    check.add_argument(
        "--escalation", action="append", metavar="TEXT", help="a phrase your bot transfers on, tried first (repeatable)"
    )
    healthcheck_option(check)
    check.add_argument(
        "--scenarios",
        metavar="DIR",
        help="the bot's scenario files (a bot made from the template): which states the probes reached, with "
        "file and line (default for the embedded bot: its own)",
    )
    check.add_argument(
        "--save-scripts",
        metavar="DIR",
        help="write the paths the probes explored as conversation scripts there (what the bot answered, exactly)",
    )
    webhook_option(check)
    check.add_argument(
        "-v", "--verbose", action="store_true", help="also print a curl command that reproduces each finding"
    )
    check.set_defaults(run=commands.check)

    sample = subcommands.add_parser(
        "sample",
        help="record a synthetic sample of conversations with the reference bot",
        description="Record synthetic conversations with the embedded reference bot into sample.jsonl.gz, a "
        "recording replay and report read (the same seed, the same sample).",
    )
    sample.add_argument(
        "--conversations",
        type=positive,
        default=commands.SAMPLE_CONVERSATIONS,
        help=f"how many conversations to record (default {commands.SAMPLE_CONVERSATIONS})",
    )
    sample.add_argument(
        "--seed", type=int, default=7, help="the random seed: the same seed, the same sample (default 7)"
    )
    sample.add_argument("--out", default=".", help="folder of the recording, sample.jsonl.gz (default: here)")
    sample.set_defaults(run=commands.sample)

    replay = subcommands.add_parser(
        "replay", parents=[bot, api], help="replay recorded conversations against a bot, into parquet tables"
    )
    replay.add_argument("recordings", nargs="+", help="recording files (*.jsonl, *.jsonl.gz) or folders of them")
    replay.add_argument("--concurrency", type=positive, default=4, help="conversations replayed at once (default 4)")
    replay.add_argument("--limit", type=positive, help="replay the first N conversations only")
    replay.add_argument("--out", default="results", help="folder of exchanges.parquet and conversations.parquet")
    replay.add_argument("--outcomes", metavar="FILE", help=OUTCOMES_HELP)
    replay.set_defaults(run=commands.replay)

    report = subcommands.add_parser(
        "report", parents=[bot, api], help="the notebooks, executed, as one self-contained HTML page"
    )
    source = report.add_mutually_exclusive_group()
    source.add_argument("--recordings", help="recordings to replay first (default: the shipped sample)")
    source.add_argument("--results", help="a folder written by `replay --out` (no replay then)")
    report.add_argument("--limit", type=positive, help="replay the first N conversations only")
    report.add_argument("--outcomes", metavar="FILE", help=OUTCOMES_HELP)
    report.add_argument(
        "--compare-with",
        metavar="RESULTS_DIR",
        help="a second run's results (`replay --out`): both runs compared (KPIs, latency, outcomes that changed)",
    )
    report.add_argument(
        "--names", metavar="A,B", help="the two runs' names in the comparison (default: this run,other run)"
    )
    report.add_argument(
        "--json",
        metavar="FILE",
        type=output,
        help="also write every figure of the report as JSON (KPIs, outcomes, latency, the analyses)",
    )
    report.add_argument(
        "--out", default="report.html", type=output, help="the HTML file to write (default report.html)"
    )
    report.set_defaults(run=commands.report)

    scripts = subcommands.add_parser(
        "scripts",
        parents=[bot],
        help="conversation scripts: run against a bot (--run), checked without one (--lint), made from recordings",
        description="Run a folder of conversation scripts against a bot: --run DIR (--bot FOLDER, a copy of the "
        "template, or --provider-url URL; by pytest and the harness's plugin, in this install). Check them (and "
        "scenario files) without a bot: --lint DIR. Or write one *.convo.yaml per recorded conversation, "
        "expecting what the bot answered then: --from RECORDINGS --out DIR.",
    )
    scripts.add_argument(
        "--run", dest="run_dir", metavar="DIR", help="run the conversation scripts there (a folder or a file)"
    )
    scripts.add_argument(
        "--from", dest="recordings", nargs="+", metavar="RECORDINGS", help="recording files or folders"
    )
    scripts.add_argument("--out", metavar="DIR", help="the folder to write the scripts in")
    scripts.add_argument(
        "--lint",
        metavar="DIR",
        help="check every *.convo.yaml there (includes, utterances, captures, expectations), without a bot: "
        "every broken step of every file at once, each with its line; exit 1 when there is one",
    )
    scripts.add_argument("--scenarios", metavar="DIR", help="with --lint: also check the scenario files (*.yaml) there")
    scripts.add_argument(
        "--loose",
        action="store_true",
        help="expect a piece of the first text, the quick replies and payload types only "
        "(default: every reply exactly)",
    )
    scripts.add_argument("--limit", type=positive, help="the first N conversations only")
    scripts.add_argument(
        "--conversation", action="append", metavar="ID", help="this recorded conversation only (repeatable)"
    )
    scripts.set_defaults(run=commands.scripts)

    proxy = subcommands.add_parser("proxy", help="a reverse proxy that records every exchange with a bot")
    proxy.add_argument("--upstream", required=True, type=url, help="the bot's base URL")
    proxy.add_argument("--record", required=True, metavar="DIR", help="where the hourly JSONL files go")
    proxy.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    proxy.add_argument("--port", type=int, default=8081, help="the port iAdvize (or you) call (default 8081)")
    proxy.add_argument(
        "--keep-personal-data",
        action="store_true",
        help="record emails, phone and card numbers and the visitor data bots hold as they are (default: replaced "
        "by pseudonyms of the same shape)",
    )
    proxy.add_argument(
        "--retention-days", type=positive, metavar="N", help="delete the folder's recordings older than N days"
    )
    proxy.set_defaults(run=commands.proxy)

    load = subcommands.add_parser(
        "load",
        parents=[bot],
        help="load a bot with iAdvize-shaped traffic (Locust, headless)",
        description="Poll every operator's availability each second, open chats at the "
        "given rate and converse; report each endpoint's throughput, "
        "latency and budget breaks. Exit 1 on any error or broken budget. "
        "With --ramp, step the load up until it breaks and report the last step within budget.",
    )
    load.add_argument("--operators", type=positive, default=5, help="operators created and polled (default 5)")
    load.add_argument(
        "--conversations-per-minute", type=positive_number, default=10, help="new chats per minute (default 10)"
    )
    load.add_argument(
        "--duration", type=positive_number, help="seconds of load (default 60; with --ramp, see --step-duration)"
    )
    load.add_argument(
        "--csv", metavar="PREFIX", type=output, help="also write Locust's CSV statistics (PREFIX_stats.csv...)"
    )
    load.add_argument(
        "--think-time",
        default="5-20",
        metavar="SECONDS",
        help="a visitor's pause between messages, a range such as 5-20 (default)",
    )
    load.add_argument(
        "--messages", type=positive, default=4, help="visitor messages per conversation, at most (default 4)"
    )
    load.add_argument(
        "--expect-workers",
        type=positive,
        default=0,
        metavar="N",
        help="run as a Locust master and wait for N workers (see --worker)",
    )
    load.add_argument("--worker", action="store_true", help="run as a Locust worker of a master (--master-host)")
    load.add_argument("--master-host", default="127.0.0.1", help="the master a worker connects to")
    load.add_argument("--master-port", type=int, default=5557, help="the master's port (default 5557)")
    load.add_argument(
        "--json", metavar="FILE", type=output, help="also write the result as JSON (with --ramp: every step's)"
    )
    sizing = load.add_argument_group(
        "sizing (--ramp)",
        "Step the load up, one load test per step, until a step breaks its budget: an endpoint's "
        f"p{SIZING_PERCENTILE} over its budget (time-outs are over it) or any other failed call. Exit 0 when "
        "a step was within budget (the last one is reported), 1 when the first step already breaks.",
    )
    sizing.add_argument(
        "--ramp",
        action="store_true",
        help="step the load up until it breaks; --operators and --conversations-per-minute are the first step",
    )
    sizing.add_argument(
        "--step-operators",
        type=whole,
        metavar="N",
        help="operators added at each step (default: as many as --operators, e.g. 5, 10, 15...; 0 keeps them)",
    )
    sizing.add_argument(
        "--step-rate",
        type=number,
        metavar="PER_MINUTE",
        help="conversations per minute added at each step (default: as many as --conversations-per-minute; "
        "0 keeps the rate)",
    )
    sizing.add_argument(
        "--step-duration", type=positive_number, metavar="SECONDS", help="seconds of load at each step (default 60)"
    )
    sizing.add_argument(
        "--limit-operators",
        type=positive,
        metavar="N",
        help="the most operators to try: the ramp ends with the step that reaches it (default: no limit)",
    )
    sizing.add_argument(
        "--limit-rate",
        type=positive_number,
        metavar="PER_MINUTE",
        help="the most conversations per minute to try: the ramp ends with the step that reaches it "
        "(default: no limit)",
    )
    sizing.add_argument(
        "--max-steps",
        type=positive,
        metavar="N",
        help=f"the most steps to run, the first included (default {DEFAULT_MAX_STEPS})",
    )
    load.set_defaults(run=commands.load)

    _broker_commands(subcommands)

    schemas = subcommands.add_parser("schemas", help="write the wire model's JSON Schemas and OpenAPI document")
    schemas.add_argument("--out", default="contracts/schemas", help="folder of the JSON Schemas")
    schemas.add_argument("--openapi", default="contracts/openapi.yaml", help="the OpenAPI 3.1 file")
    schemas.set_defaults(run=commands.schemas)

    template = subcommands.add_parser(
        "template",
        help="copy the reference bot out, under your bot's name",
        description="Copy the reference bot into FOLDER as a package of its own name, to start your bot from.",
    )
    template.add_argument("folder", metavar="FOLDER", help="where the package folder is created (e.g. .)")
    template.add_argument("--name", default="mybot", help="your bot's package name (default mybot)")
    template.set_defaults(run=commands.template)
    for listed in subcommands._choices_actions:  # --help says which commands need an extra installed
        if listed.dest in NEEDS:
            listed.help += f" [needs the {NEEDS[listed.dest]} extra]"

    notebooks = subcommands.add_parser(
        "notebooks",
        help="copy the notebooks (and the sample recording they read) out of the install, to open in Jupyter",
    )
    notebooks.add_argument("folder", metavar="DIR", help="where to copy them (created if needed)")
    notebooks.set_defaults(run=commands.notebooks)
    return top


def _broker_commands(subcommands) -> None:
    """``pacts publish``, ``can-i-deploy`` and ``record-deployment``: the Pact Broker's own client, for a
    provider's pipeline (PACT_BROKER_TOKEN, or PACT_BROKER_USERNAME and _PASSWORD, authenticate)."""
    broker = argparse.ArgumentParser(add_help=False)
    broker.add_argument(
        "--broker-url",
        type=url,
        metavar="URL",
        default=os.environ.get("PACT_BROKER_BASE_URL") or None,
        help="the Pact Broker (default: PACT_BROKER_BASE_URL)",
    )
    pacts = subcommands.add_parser(
        "pacts",
        parents=[broker],
        help="publish the iAdvize pacts to a Pact Broker (through the broker's own client)",
        description="Publish the iAdvize pacts (iAdvize, the consumer, and your bot, the provider) to your Pact "
        "Broker, as the consumer version and branch given, with the broker's own client (pact-python-cli).",
    )
    pacts.add_argument("action", choices=["publish"], help="what to do with the pacts")
    pacts.add_argument("--consumer-version", required=True, help="the version to publish the pacts as, e.g. 2026.12")
    pacts.add_argument("--branch", help="the consumer branch they are published on (e.g. main)")
    pacts.add_argument("--tag", action="append", default=[], help="a tag of that version (repeatable)")
    pacts.add_argument("--build-url", metavar="URL", help="the CI build that published them")
    pacts.set_defaults(run=commands.pacts)
    deploy = subcommands.add_parser(
        "can-i-deploy",
        parents=[broker],
        help="may this version of your bot be deployed? (the broker's can-i-deploy)",
        description="Ask the Pact Broker whether this version of your bot (the provider external-bot) has "
        "successful verification results with the iAdvize versions in the environment: exit 0 yes, 1 no.",
    )
    deploy.add_argument(
        "--version",
        default=os.environ.get("PACT_PROVIDER_VERSION") or None,
        help="your bot's version (default: PACT_PROVIDER_VERSION)",
    )
    deploy.add_argument("--to-environment", required=True, metavar="ENVIRONMENT", help="e.g. production")
    deploy.add_argument(
        "--retry-while-unknown", type=whole, default=0, metavar="TIMES", help="ask again while results are missing"
    )
    deploy.add_argument("--retry-interval", type=positive_number, default=10, metavar="SECONDS", help="(default 10)")
    deploy.set_defaults(run=commands.can_i_deploy)
    record = subcommands.add_parser(
        "record-deployment",
        parents=[broker],
        help="tell the broker this version of your bot is deployed",
        description="Record in the Pact Broker that this version of your bot is now deployed to the environment.",
    )
    record.add_argument(
        "--version",
        default=os.environ.get("PACT_PROVIDER_VERSION") or None,
        help="your bot's version (default: PACT_PROVIDER_VERSION)",
    )
    record.add_argument("--environment", required=True, help="e.g. production")
    record.set_defaults(run=commands.record_deployment)


def main(argv: list[str] | None = None) -> int:
    """Run the command of ``argv`` (default: the process's arguments) and return its exit code."""
    main_parser = parser()
    given = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in given if not a.startswith("-")), None)
    if command in NEEDS and not {"-h", "--help"} & set(given):  # the missing extra first, before any usage error
        try:
            require(NEEDS[command], command)
        except MissingExtra as problem:
            return commands.error(str(problem))
    args, unknown = main_parser.parse_known_args(given)
    if unknown:  # said by the sub-command, with the flag probably meant
        sub = _subparsers(main_parser)[args.command]
        flags = [flag for action in sub._actions for flag in action.option_strings]
        close = difflib.get_close_matches(unknown[0].split("=")[0], flags, n=1)
        named = [u.split("=")[0] for u in unknown if u.startswith("-")] or unknown[:1]  # not their values: a secret
        sub.error(f"unrecognized arguments: {' '.join(named)}" + (f" (did you mean {close[0]}?)" if close else ""))
    resolve_secret(args)
    if getattr(args, "bot", None) and getattr(args, "provider_url", None):
        return commands.error("--bot starts a bot, --provider-url names one running: give one or the other")
    if getattr(args, "bot", None) and args.command != "serve":
        from harness.bots import bot_package

        try:
            bot_package(args.bot)
        except ValueError as problem:
            return commands.error(str(problem))
    try:
        if args.command in NEEDS:
            require(NEEDS[args.command], args.command)
        return args.run(args)
    except MissingExtra as problem:
        return commands.error(str(problem))
    except KeyboardInterrupt:
        return 130


def _subparsers(main_parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in main_parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


if __name__ == "__main__":
    sys.exit(main())
