"""What each sub-command does: call the library, print what it found, return the exit code.

Exit codes everywhere: 0 all good, 1 the bot (or the run) failed what was asked, 2 the command could not
run (bad arguments, a bot that cannot be reached or refuses the signature, a missing extra).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from harness import render
from harness.bots import BotProcessError, bot
from harness.progress import Progress


def error(text: str) -> int:
    """Say what stopped the command, one line on stderr per problem, and return exit code 2."""
    for line in str(text).splitlines() or [""]:
        print(f"error: {line}", file=sys.stderr, flush=True)
    return 2


def _write(path: str | None, write) -> int | None:
    """``write(Path(path))`` when a path is given; on failure the error line and exit code 2, else None."""
    if path:
        try:
            write(Path(path))
        except OSError as problem:
            return error(f"cannot write {path}: {problem.strerror or problem}")
    return None


def serve(args) -> int:
    """``iadvize-harness serve``: the reference bot, or a copy of it (``--bot``), under gunicorn until stopped."""
    import importlib

    from harness.bots import bot_package

    try:
        name, where = bot_package(args.bot)
    except ValueError as problem:
        return error(str(problem))
    if where is not None:  # a copy's folder: imported from beside it, as `python -m NAME.serve` there would
        loaded = sys.modules.get(name)
        if loaded is not None and Path(getattr(loaded, "__file__", "") or "").parent != where / name:
            return error(f"{args.bot}: a copy named {name} would run the {name} already loaded here, not yours: "
                         "rename it (iadvize-harness template --name)")  # fmt: skip
        sys.path.insert(0, str(where))
    try:
        runner = importlib.import_module(f"{name}.serve")
    except Exception as problem:  # the copy's own code: a typo, a dependency missing from this environment
        return error(f"cannot import the bot {name}: {type(problem).__name__}: {problem}")
    if not callable(getattr(runner, "serve", None)):
        return error(f"{name}.serve has no serve(): is {args.bot} a bot made with `iadvize-harness template`?")
    return runner.serve(
        args.host, args.port, args.db, args.scenarios, args.secret, args.workers, args.threads, args.reload
    )


def demo(args) -> int:
    """``iadvize-harness demo``: the whole main job on the embedded reference bot (see :mod:`.demo`)."""
    from harness.cli.demo import run

    return run(limit=args.limit, report_path=args.report)


def _verify_options(args):
    """The broker and provider-version options of ``verify``, or the line saying which do not go together."""
    import json

    from harness.verify import BrokerOptions, ProviderVersion

    if not args.broker_url:
        given = [
            flag
            for flag, value in (
                ("--publish", args.publish is not None),
                ("--consumer-version-selectors", args.consumer_version_selectors),
                ("--enable-pending", args.enable_pending),
                ("--include-wip-pacts-since", args.include_wip_pacts_since),
            )
            if value
        ]
        if given:
            return f"{given[0]} needs --broker-url (or PACT_BROKER_BASE_URL): it is about the broker's pacts"
    selectors: tuple[str, ...] = ()
    if args.consumer_version_selectors:
        try:
            parsed = json.loads(args.consumer_version_selectors)
        except json.JSONDecodeError as problem:
            return f"--consumer-version-selectors is not JSON ({problem.msg} at column {problem.colno})"
        selectors = tuple(json.dumps(s) for s in (parsed if isinstance(parsed, list) else [parsed]))
    version = args.publish or args.provider_version
    if args.exit_first and args.publish is not None:
        return "--exit-first stops before every interaction ran: its results are not published (drop --publish)"
    if args.publish is not None and not version:
        return "--publish needs the version to publish as: --provider-version (or PACT_PROVIDER_VERSION)"
    tags = tuple(t.strip() for t in (args.provider_tags or "").split(",") if t.strip())
    broker = (
        BrokerOptions(args.broker_url, selectors, args.enable_pending, args.include_wip_pacts_since)
        if args.broker_url
        else None
    )
    return broker, ProviderVersion(version, args.provider_branch, tags, args.build_url, args.publish is not None)


def verify(args, out=sys.stdout) -> int:
    """``iadvize-harness verify``: the pacts against the bot; the table, and JUnit or JSON if asked."""
    from harness.verify import DEFAULT_PACTS, PROVIDER, VerifyError, verify
    from harness.verify.report import InteractionResult, render, write_json, write_junit

    options = _verify_options(args)
    if isinstance(options, str):
        return error(options)
    broker, provider = options
    progress = Progress()
    try:
        with bot(args.provider_url, secret=args.secret, package=args.bot) as url:
            which = which_bot(args, url)
            result = verify(
                url,
                args.secret,
                args.pacts,
                progress=progress,
                broker=broker,
                provider=provider,
                only=(args.filter_description, args.filter_state),
                exit_first=args.exit_first,
                healthcheck_url=args.healthcheck_url,
            )
    except (VerifyError, BotProcessError) as problem:
        progress.done()
        return error(str(problem))
    finally:
        progress.done()
    if result.error and not result.outcomes:
        error(result.error)
        found, code = [InteractionResult("verification", [], False, [result.error])], 2
    else:
        print(render(result.outcomes, args.verbose, bot=which), file=out)
        width = shutil.get_terminal_size((120, 24)).columns
        for line in [*result.notes, *result.given_up]:
            print(render.wrap(f"note: {line}", width, "    "), file=out)
        signed = "signed with the given secret" if args.secret else "not signed (no --secret)"
        print(f"pacts: {args.broker_url or args.pacts or DEFAULT_PACTS}; requests {signed}", file=out)
        if result.not_run:
            print(f"stopped at the first failure (--exit-first): {result.not_run} interactions not run", file=out)
        found, code = result.outcomes, 0 if result.passed else 1
    suite = f"{PROVIDER} at {url}"
    return (
        _write(args.junit, lambda path: write_junit(found, path, suite))
        or _write(args.json, lambda path: write_json(found, path, suite))
        or code
    )


def _broker_call(args, call) -> int:
    """Runs ``call`` (of harness.verify.broker_client) once the broker and version are known; 2 otherwise."""
    from harness.verify.broker_client import BrokerClientMissing, unreachable

    if not args.broker_url:
        return error("no Pact Broker: give --broker-url, or set PACT_BROKER_BASE_URL")
    if hasattr(args, "version") and not args.version:
        return error("no version of your bot: give --version, or set PACT_PROVIDER_VERSION")
    if problem := unreachable(args.broker_url):
        return error(problem)
    try:
        return call()
    except BrokerClientMissing as missing:
        return error(str(missing))


def pacts(args) -> int:
    """``iadvize-harness pacts publish``: the iAdvize pacts to the broker, through its client."""
    from harness.verify.broker_client import publish

    return _broker_call(
        args, lambda: publish(args.consumer_version, args.branch, args.tag, args.build_url, args.broker_url)
    )


def can_i_deploy(args) -> int:
    """``iadvize-harness can-i-deploy``: the broker's answer for this version of the bot (0 yes, 1 no)."""
    from harness.verify.broker_client import can_i_deploy as ask

    return _broker_call(
        args,
        lambda: ask(args.version, args.to_environment, args.retry_while_unknown, args.retry_interval, args.broker_url),
    )


def record_deployment(args) -> int:
    """``iadvize-harness record-deployment``: this version of the bot deployed to the environment."""
    from harness.verify.broker_client import record_deployment as record

    return _broker_call(args, lambda: record(args.version, args.environment, args.broker_url))


def local_api(args):
    """The local iAdvize API for the bot to call, on ``--iadvize-api-port``; :class:`Stopped` when it cannot be."""
    from harness.conformance.iadvize_api import IAdvizeAPI

    try:
        return IAdvizeAPI(port=args.iadvize_api_port)
    except OSError as problem:
        raise Stopped(
            f"cannot serve iAdvize's API on port {args.iadvize_api_port}: {problem.strerror or problem}"
        ) from problem


def which_bot(args, url: str, api=None) -> str:
    """The bot, in words; a bot of yours is told the API's URL (the embedded one is pointed at it already)."""
    if args.provider_url:
        return f"{url}; iAdvize's API for it to call: {api.url}" if api is not None else url
    if getattr(args, "bot", None):
        return f"the bot {args.bot} at {url}"
    return f"the embedded reference bot at {url}"


def check(args, out=sys.stdout) -> int:
    """``iadvize-harness check``: probe conversations (and scripts) judged by the rules; reports if asked."""
    from harness.cli.options import webhooks_for
    from harness.client import BotClient
    from harness.conformance.probes import Exploration, check
    from harness.conformance.reports import table, write_html, write_json, write_junit
    from harness.conformance.scripts import ScriptError, load_scripts, variants

    try:
        scripts = [v for s in load_scripts(Path(args.scripts)) for v in variants(s)] if args.scripts else []
    except ScriptError as problem:
        return error(str(problem))
    exploration = Exploration(
        args.depth, args.max_conversations, args.id_operator, args.language, list(args.escalation or [])
    )
    progress = Progress()
    try:
        with (
            local_api(args) as api,
            bot(args.provider_url, secret=args.secret, env=api.reference_bot_settings(), package=args.bot) as url,
        ):
            webhooks = webhooks_for(args, url)
            report = check(
                BotClient(url, secret=args.secret),
                args.secret,
                scripts,
                exploration,
                progress,
                api,
                webhooks=webhooks,
                healthcheck_url=args.healthcheck_url,
            )
    except (Stopped, BotProcessError) as problem:
        progress.done()
        return error(str(problem))
    finally:
        progress.done()
    wanted = not report.stopped and (args.scenarios or not args.provider_url)  # the files are known
    if wanted and (failed := _mark_states(report, args.scenarios or _own_scenarios(args))):
        return failed
    if report.stopped:
        error(report.stopped)
    else:
        print(table(report, args.verbose, bot=which_bot(args, url)),
              file=out)  # fmt: skip
        if args.provider_url and (api.calls or args.verbose):  # the embedded bot was pointed at it
            called = f" (the bot called it {render.count(len(api.calls), 'time')})" if api.calls else " (not called)"
            print(f"iAdvize's API for the bot to call: {api.url}{called}", file=out)
    for path, write in ((args.json, write_json), (args.junit, write_junit), (args.html, write_html)):
        if failed := _write(path, lambda to, write=write: write(report, to)):
            return failed
    if args.save_scripts and not report.stopped and (failed := _save_explored(report, args)):
        return failed
    return 2 if report.stopped else 1 if report.errors else 0


def _own_scenarios(args) -> str | None:
    """The scenario folder of the bot --bot starts (a copy's own ``scenarios/``); None: the reference bot's."""
    if not getattr(args, "bot", None):
        return None
    from importlib.resources import files

    from harness.bots import bot_package

    name, where = bot_package(args.bot)
    return str(where / name / "scenarios") if where is not None else str(files(name) / "scenarios")


def _mark_states(report, directory: str | None) -> int | None:
    """The states and transitions of the bot's scenario files the probes reached (the embedded bot's own by
    default)."""
    from harness.conformance.coverage import mark_states, mark_transitions
    from reference_bot.config import SCENARIOS_DIR
    from reference_bot.scenario import ScenarioError, load_directory, state_lines, state_messages, transition_lines

    try:
        scenarios = load_directory(Path(directory) if directory else SCENARIOS_DIR)
    except ScenarioError as problem:
        return error(f"--scenarios: {problem}")
    for found in report.coverage:
        scenario = scenarios.get(found.scenario)
        if scenario is None:
            continue
        lines, sent = state_lines(scenario.source), state_messages(scenario)
        states = {name: (scenario.source, lines.get(name, 0), sent.get(name, [])) for name in scenario.states}
        own = [c for c in report.conversations if c.scenario == found.scenario]
        mark_states(found, own, states)
        mark_transitions(found, own, states, transition_lines(scenario))
    return None


def _save_explored(report, args) -> int | None:
    """check --save-scripts: the explored paths as scripts; an exit code when they cannot be written."""
    from harness.conformance.probes import RULES_OF_OPERATOR
    from harness.traffic.to_scripts import save_scripts, script_of_conversation

    explored = [c for c in report.conversations if c.label.startswith("explore: ")]
    scripts = [s for c in explored if (s := script_of_conversation(c, RULES_OF_OPERATOR, args.language or "en"))]
    try:
        paths = save_scripts(scripts, Path(args.save_scripts))
    except OSError as problem:
        return error(f"cannot write the scripts in {args.save_scripts}: {problem.strerror or problem}")
    print(f"{render.count(len(paths), 'script')} of the explored paths written in {args.save_scripts}")
    return None


SAMPLE_CONVERSATIONS = 2000  # as many as the shipped sample holds


def sample(args) -> int:
    """``iadvize-harness sample``: a synthetic recording made with the embedded reference bot."""
    from harness.client import BotClient
    from harness.conformance.iadvize_api import IAdvizeAPI
    from harness.traffic.sample import generate

    where = Path(args.out) / "sample.jsonl.gz"
    fewer = "--conversations N for fewer, " if args.conversations == SAMPLE_CONVERSATIONS else ""
    print(f"recording {render.count(args.conversations, 'conversation')} with the embedded reference bot into "
          f"{where} (seed {args.seed}; {fewer}Ctrl-C stops)", flush=True)  # fmt: skip
    progress = Progress()
    try:
        # Recorded from the reference bot, its slow answers posted through the local iAdvize API as they would
        # be in production; a fixed public URL keeps its editorUrl (and the sample) reproducible.
        with (
            IAdvizeAPI() as api,
            bot(env={"REFERENCE_BOT_PUBLIC_URL": "https://bot.example.com", **api.reference_bot_settings()}) as url,
        ):
            path = generate(
                BotClient(url, id_connector_version="5a3e0f1c-2b4d-4c6e-8f01-a2b3c4d5e6f7"),
                args.conversations,
                args.seed,
                Path(args.out),
                progress,
                api,
            )
    except BotProcessError as problem:
        progress.done()
        return error(str(problem))
    finally:
        progress.done()
    print(f"{render.count(args.conversations, 'conversation')} recorded in {path}")
    return 0


class Stopped(Exception):
    """The replay could not start; the message is the line to print."""


def _replay_into(args, recordings: list, out: Path, progress: Progress, say, concurrency: int = 4, stream=None):
    """Replay ``recordings`` against the bot of ``args`` into ``out``; the summary, or :class:`Stopped`.

    Which bot is said first, on ``stream`` (stdout by default), once it answered the preflight.
    """
    from harness.analysis.outcomes import DEFAULT_RULES, OutcomeRulesError, load_rules
    from harness.client import BotClient, GiveUp, preflight
    from harness.traffic.replay import Grouped, replay

    try:  # said before any bot is started
        rules = load_rules(args.outcomes) if args.outcomes else DEFAULT_RULES
    except OutcomeRulesError as problem:
        raise Stopped(str(problem)) from None
    told = Grouped(say)
    give_up = GiveUp()  # the preflight's calls and the replay's: a bot that hangs is given up after two
    with local_api(args) as api, bot(args.provider_url, env=api.reference_bot_settings(), package=args.bot) as url:
        if progress.tty:
            progress(f"replay: is the bot at {url} there?", step="preflight")
        _, stopped = preflight(BotClient(url, secret=args.secret, give_up=give_up))
        if stopped:  # said once, here, rather than once per conversation; out is left as it was
            raise Stopped(stopped)
        which = which_bot(args, url, api)
        print(f"Replaying against {which}", file=stream or sys.stdout, flush=True)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as problem:
            raise Stopped(f"cannot write the tables in {out}: {problem.strerror or problem}") from problem
        summary = replay(
            recordings,
            url,
            out,
            args.secret,
            concurrency,
            progress,
            args.limit,
            on_skipped=told,
            give_up=give_up,
            api=api,
            outcome_rules=rules,
        )
    progress.done()
    for line in [*told.rest(), *(f"given up: {line}" for line in summary.given_up)]:
        print(line, file=sys.stderr)
    return summary


def _say(progress: Progress):
    def say(text: str) -> None:  # a line of its own: the status line (on a terminal) makes way
        progress.done()
        print(text, file=sys.stderr, flush=True)

    return say


def replay(args) -> int:
    """``iadvize-harness replay``: recordings re-sent to the bot, into two parquet tables."""
    from harness.traffic.recordings import recording_files

    out = Path(args.out)
    if out.exists() and not out.is_dir():  # said plainly, before any bot is started
        return error(f"cannot write the tables in {out}: it is a file, not a folder")
    try:
        recording_files(args.recordings)
    except FileNotFoundError as problem:
        return error(str(problem))
    progress = Progress()
    try:
        summary = _replay_into(args, args.recordings, out, progress, _say(progress), args.concurrency)
    except (Stopped, BotProcessError, FileNotFoundError) as problem:
        progress.done()
        return error(str(problem))
    finally:
        progress.done()
    if not summary.conversations:
        print(f"{summary}\nno conversation could be replayed: nothing written, {out} left as it was")
        return 1
    print(f"{summary}\n{out / 'exchanges.parquet'}\n{out / 'conversations.parquet'}")
    return 0


def _report_problem(args) -> str | None:
    """What is wrong with ``report``'s options, said before anything runs (None: nothing)."""
    if args.compare_with and not (Path(args.compare_with) / "conversations.parquet").exists():
        return f"--compare-with {args.compare_with} holds no conversations.parquet: give a folder `replay --out` wrote"
    names = [n.strip() for n in args.names.split(",")] if args.names else []
    if args.names and (len(names) != 2 or not all(names)):
        return f"--names {args.names!r}: give two names separated by a comma, e.g. --names v1,v2"
    if args.names and (names[0] == names[1] or "change" in names):
        return f"--names {args.names!r}: give two different names, neither of them 'change' (a column of its own)"
    if args.outcomes and args.results:
        return (
            f"--outcomes applies to a replay: the outcomes in {args.results} were decided when it was replayed; "
            "replay with `replay --outcomes FILE`, or give --recordings"
        )
    if args.names and not args.compare_with:
        return "--names names the two runs of a comparison: give the second run with --compare-with RESULTS_DIR"
    return None


def report(args) -> int:
    """``iadvize-harness report``: the notebooks executed on replay results, as one HTML page."""
    from harness import resources
    from harness.analysis.report import ReportError, build
    from harness.traffic.recordings import recording_files

    if problem := _report_problem(args):
        return error(problem)
    progress = Progress()
    replayed_into = None  # the temporary folder of a replay made here, removed at the end
    try:
        if args.results:
            results = Path(args.results)
            if not (results / "exchanges.parquet").exists():
                return error(f"{results} holds no exchanges.parquet: give the folder `replay --out` wrote")
        else:
            recordings = args.recordings or str(resources.sample())
            recording_files([recordings])  # a missing recording is said before any bot is started
            results = replayed_into = Path(tempfile.mkdtemp(prefix="replay-"))
            summary = _replay_into(args, [recordings], results, progress, _say(progress), stream=sys.stderr)
            print(summary, file=sys.stderr)
            if not summary.conversations:
                print("error: no conversation could be replayed: nothing to report", file=sys.stderr)
                return 1
        page = build(results, Path(args.out), args.compare_with, progress=progress, names=args.names or "")
        if args.json:  # the same figures, from the same functions, for a CI or a test to read
            from harness.analysis import figures, metrics

            baseline = metrics.load(args.compare_with) if args.compare_with else None
            figures.write(*metrics.load(results), args.json, baseline, args.names or "")
    except (Stopped, ReportError, BotProcessError, FileNotFoundError) as problem:
        progress.done()
        return error(str(problem))
    finally:
        progress.done()
        if replayed_into is not None:
            shutil.rmtree(replayed_into, ignore_errors=True)
    print(f"report written to {page} (open it in a browser)" + (f"; its figures in {args.json}" if args.json else ""))
    return 0


def scripts(args) -> int:
    """``iadvize-harness scripts --from RECORDINGS --out DIR``: one conversation script per recorded
    conversation; ``scripts --lint DIR``: every problem of the scripts there (and of ``--scenarios``);
    ``scripts --run DIR``: the scripts run against a bot."""
    given = (("--run", args.run_dir), ("--lint", args.lint), ("--from", args.recordings))
    modes = [flag for flag, value in given if value]
    if len(modes) > 1:
        return error(f"{modes[0]} and {modes[1]} do not go together: --run runs scripts, --lint checks them, "
                     "--from writes them")  # fmt: skip
    if args.run_dir:
        return run_scripts(args)
    if args.bot or args.provider_url:
        return error("--bot and --provider-url say which bot --run runs the scripts against: scripts --run DIR")
    if args.lint:
        if args.out:
            return error("--lint checks scripts; --out is where --from writes them: give one or the other")
        return lint(Path(args.lint), Path(args.scenarios) if args.scenarios else None)
    if args.scenarios:
        return error("--scenarios goes with --lint: scripts --lint DIR --scenarios DIR")
    if not args.recordings or not args.out:
        return error("give --run DIR to run scripts, --lint DIR to check them, or --from RECORDINGS --out DIR to "
                     "write them")  # fmt: skip
    return scripts_from_recordings(args)


def scripts_from_recordings(args) -> int:
    """``scripts --from RECORDINGS --out DIR``: one conversation script per recorded conversation."""
    from harness.traffic.recordings import recording_files
    from harness.traffic.to_scripts import write_scripts

    for given in args.recordings:  # a replay's results hold no payloads to send again: the recordings do
        if (Path(given) / "exchanges.parquet").exists():
            return error(f"{given} holds replay results: give the recordings they were replayed from")
    try:
        recording_files(args.recordings)
        written = write_scripts(
            args.recordings, Path(args.out), args.loose, args.limit, set(args.conversation or []) or None
        )
    except (FileNotFoundError, OSError) as problem:
        return error(str(problem))
    for line in written.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    if not written.paths:
        return error("no recorded conversation to make a script of")
    print(f"{render.count(len(written.paths), 'script')} written in {args.out}")
    print(f"run them: iadvize-harness check --provider-url URL --scripts {args.out}   (or: pytest {args.out})")
    return 0


class _SecretSaidAs:
    """A plugin telling the harness's pytest plugin which option gives the secret here (its lines name it)."""

    def __init__(self, flag: str):
        self.flag = flag

    def pytest_configure(self, config):
        config.iadvize_secret_flag = self.flag


def run_scripts(args) -> int:
    """``scripts --run DIR``: the conversation scripts there run by pytest and the harness's plugin, in this
    install (pipx's too), against ``--provider-url``, else the bot ``--bot`` names (default: the reference bot).
    pytest's own exit codes: 0 passed, 1 a script failed; 2 when it could not run (none collected included)."""
    import pytest

    from harness.bots import bot_package

    folder = Path(args.run_dir)
    if not folder.exists():
        return error(f"{folder}: no such file or folder of conversation scripts (*.convo.yaml)")
    if folder.is_dir() and next(folder.rglob("*.convo.yaml"), None) is None:
        return error(f"no conversation script (*.convo.yaml) in {folder}")
    # the harness is imported already (this command is part of it): pytest's warning that it cannot rewrite
    # its asserts says nothing to a user
    # and the project's own pytest options (a --cov of plugins this install lacks) are not this run's
    options = ["-p", "no:cacheprovider", "-o", "addopts=", "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    options.append(str(folder))
    if args.provider_url:
        options += ["--iadvize-url", args.provider_url]
    else:
        try:
            bot_package(args.bot or "reference_bot")
        except ValueError as problem:
            return error(str(problem))
        options += ["--iadvize-bot", args.bot or "reference_bot"]
    if args.secret:
        options += ["--iadvize-secret", args.secret]
    ran = int(pytest.main(options, plugins=[_SecretSaidAs("--secret")]))
    if ran == pytest.ExitCode.NO_TESTS_COLLECTED:
        return error(f"no conversation script (*.convo.yaml) in {folder}")
    return ran if ran in (0, 1) else 2


def _scenario_problems(folder: Path, paths: list[Path]) -> list[str]:
    """Every problem of every scenario file, then the quick-reply transitions no menu of their state offers;
    when each file is fine alone, what only the folder can get wrong (an idBot used twice)."""
    from reference_bot.scenario import ScenarioError, load_directory, load_file, problems_of, unoffered_quick_replies

    found, broken = [], False
    for path in paths:
        try:
            found += [str(p) for p in unoffered_quick_replies(load_file(path))]
        except ScenarioError as problem:
            found, broken = found + [str(p) for p in problems_of(problem)], True
    if not broken:
        try:
            load_directory(folder)
        except ScenarioError as problem:
            found += [str(p) for p in problems_of(problem)]
    return found


def lint(directory: Path, scenarios: Path | None) -> int:
    """Every problem of the scripts under ``directory`` and the scenario files in ``scenarios``, one per line
    on stdout, then a count; 0 when there is none, 1 otherwise (2: nothing to check)."""
    from harness.conformance.scripts import ScriptError, ScriptErrors, load_scripts, variants

    if not directory.exists():
        return error(f"--lint {directory}: no such folder or file")
    problems, runs, files = [], 0, len(list(directory.glob("**/*.convo.yaml"))) if directory.is_dir() else 1
    try:
        runs = sum(len(variants(script)) for script in load_scripts(directory))
    except ScriptErrors as broken:
        problems += [str(e) for e in broken.errors]
    except ScriptError as problem:
        return error(str(problem))
    checked = f"{render.count(files, 'script')} ({render.count(runs, 'run')})" if not problems else ""
    if scenarios is not None:
        paths = sorted([*scenarios.glob("*.yaml"), *scenarios.glob("*.yml")]) if scenarios.is_dir() else []
        if not paths:
            return error(f"--scenarios {scenarios}: no *.yaml scenario file there")
        problems += _scenario_problems(scenarios, paths)
        checked += f"{', ' if checked else ''}{render.count(len(paths), 'scenario file')}"
    for problem in problems:
        print(problem)
    if problems:
        print(f"{render.count(len(problems), 'problem')} found")
        return 1
    print(f"no problem: {checked}")
    return 0


def proxy(args) -> int:
    """``iadvize-harness proxy``: a reverse proxy in front of a bot that records every exchange."""
    from harness.traffic.proxy import RecordingProxy

    try:
        server = RecordingProxy(
            args.upstream, args.record, args.host, args.port, args.keep_personal_data, args.retention_days
        )
    except (ValueError, OSError) as problem:
        return error(str(problem))
    kept = (
        "personal data KEPT as visitors wrote it (--keep-personal-data)"
        if args.keep_personal_data
        else "personal data replaced by pseudonyms"
    )
    print(f"recording proxy on {server.url} -> {args.upstream}, recordings in {args.record}: {kept}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.close()
    return 0


def load(args) -> int:
    """``iadvize-harness load``: Locust, headless, with iAdvize-shaped traffic; exit 1 on a broken budget.

    With ``--ramp``: one load test per step, stepped up until a step breaks its budget (:func:`_ramp`).
    """
    from harness.load import LoadError, run, run_worker
    from harness.load.plan import think_time

    if problem := _load_options_problem(args):
        return error(problem)
    if args.worker:
        return run_worker(args.master_host, args.master_port, args.secret)
    try:
        think = think_time(args.think_time)
    except ValueError as problem:
        return error(str(problem))
    if args.ramp:
        return _ramp(args, think)
    try:
        with bot(args.provider_url, secret=args.secret, package=args.bot) as url:
            outcome = run(
                url,
                args.operators,
                args.conversations_per_minute,
                args.duration or DEFAULT_LOAD_SECONDS,
                args.secret,
                args.csv,
                think,
                args.messages,
                args.expect_workers,
                args.master_port,
                say=lambda line: print(line, flush=True),
                progress=Progress(),
            )
    except (LoadError, BotProcessError) as problem:
        return error(str(problem))
    if failed := _report(args, outcome):
        return failed
    return 0 if outcome.passed else 1


def _report(args, outcome) -> int | None:
    """The report of a load test or a ramp on stdout, and its JSON when asked; the exit code if that failed."""
    print(outcome.report())
    return _write(args.json, lambda to: _write_json(outcome.as_dict(), to))


DEFAULT_LOAD_SECONDS = 60  # a load test's, or each step's of a ramp
RAMP_ONLY = {
    "step_operators": "--step-operators",
    "step_rate": "--step-rate",
    "step_duration": "--step-duration",
    "limit_operators": "--limit-operators",
    "limit_rate": "--limit-rate",
    "max_steps": "--max-steps",
}


def _load_options_problem(args) -> str | None:
    """The options of ``load`` that do not go together, said in one line (None when they do)."""
    if not args.ramp:
        given = [flag for dest, flag in RAMP_ONLY.items() if getattr(args, dest) is not None]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            return f"{' and '.join(given)} only {verb} with --ramp: add --ramp to step the load up"
        return None
    if args.worker or args.expect_workers:
        return (
            "--ramp runs every step from this machine: it does not take --worker or --expect-workers "
            "(workers leave when their master's run ends)"
        )
    if args.duration is not None:
        return "--duration is the length of one load test: with --ramp, give each step's as --step-duration"
    return _steps(args).problem()


def _steps(args):
    from harness.load.ramp import DEFAULT_MAX_STEPS, Ramp

    return Ramp(
        args.operators,
        args.conversations_per_minute,
        args.operators if args.step_operators is None else args.step_operators,
        args.conversations_per_minute if args.step_rate is None else args.step_rate,
        args.limit_operators,
        args.limit_rate,
        args.max_steps or DEFAULT_MAX_STEPS,
    )


def _ramp(args, think: tuple[float, float]) -> int:
    """``load --ramp``: the steps' table and the last step within budget.

    Exit 0 when a step was within budget, 1 when none was, 2 when a step could not run (after its table).
    """
    from harness.load import LoadError
    from harness.load.ramp import ramp

    try:
        with bot(args.provider_url, secret=args.secret, package=args.bot) as url:
            outcome = ramp(
                url,
                _steps(args),
                args.step_duration or DEFAULT_LOAD_SECONDS,
                args.secret,
                args.csv,
                think,
                args.messages,
                say=lambda line: print(line, file=sys.stderr, flush=True),
                progress=Progress(),
            )
    except (LoadError, BotProcessError) as problem:
        return error(str(problem))
    if failed := _report(args, outcome):
        return failed
    if outcome.error:
        return error(outcome.error)
    return 0 if outcome.last_within_budget else 1


def _write_json(document: dict, path: Path) -> None:
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def schemas(args) -> int:
    """``iadvize-harness schemas``: the JSON Schemas and the OpenAPI document, written from the wire model."""
    from harness import wire
    from harness.traffic.recordings import render_schema
    from harness.wire import openapi

    for path in wire.write_schemas(Path(args.out)):
        print(path)
    recording = Path(args.out) / "recording.v1.json"  # the recording format, beside the API's bodies
    recording.write_text(render_schema(), encoding="utf-8")
    print(recording)
    Path(args.openapi).write_text(openapi.render(), encoding="utf-8")
    print(args.openapi)
    return 0


def notebooks(args) -> int:
    """``iadvize-harness notebooks DIR``: the shipped notebooks and the sample recording they read, copied out
    of the install (pip's, pipx's) to open in Jupyter; nothing already there is overwritten."""
    import shutil

    from harness import resources

    folder = Path(args.folder)
    shipped = sorted(resources.notebooks().glob("*.ipynb"))
    copies = [(path, folder / path.name) for path in shipped]
    copies.append((resources.sample(), folder / "data" / resources.sample().name))
    there = [str(target) for _, target in copies if target.exists()]
    if there:
        return error(f"{there[0]} exists: give an empty or new folder (nothing is overwritten)")
    try:
        (folder / "data").mkdir(parents=True, exist_ok=True)
        for source, target in copies:
            shutil.copyfile(source, target)
    except OSError as problem:
        return error(f"cannot write in {folder}: {problem.strerror or problem}")
    print(f"copied {render.count(len(shipped), 'notebook')} and the sample recording they read into {folder}")
    print("open them in Jupyter, on a kernel with the analysis extra (pip install 'iadvize-harness[analysis]')")
    return 0


def template(args) -> int:
    """``iadvize-harness template``: the reference bot copied out under the bot's own package name, and the
    next steps, as commands of this install (they work from pipx as from the bot's own venv)."""
    import shlex

    from harness.template import TemplateError, copy_template, write_pytest_settings

    try:
        package = copy_template(Path(args.folder), args.name)
        settings = write_pytest_settings(package)
    except (TemplateError, OSError) as problem:
        return error(str(problem))
    name, where = package.name, package.parent
    steps = [] if where.resolve() == Path.cwd().resolve() else [(f"cd {shlex.quote(str(where))}", "")]
    steps += [
        (f"iadvize-harness serve --bot {name} --port 8080", "the bot, on http://127.0.0.1:8080"),
        ("iadvize-harness check --provider-url http://127.0.0.1:8080", "in another terminal"),
        (f"iadvize-harness scripts --run {name}/scripts --bot {name}", "its conversation scripts, against itself"),
    ]
    width = max(len(command) for command, _ in steps)
    print(f"copied the reference bot into {package} (the package {name}); next:")
    for command, why in steps:
        print(f"  {command:<{width}}  # {why}" if why else f"  {command}")
    pytest_line = (
        f"`pytest` ({settings.name} names the bot)" if settings else f"`pytest --iadvize-bot {name} {name}/scripts`"
    )
    print(
        f"in the bot's own venv, with the harness installed there too, `python -m {name}.serve` and {pytest_line} "
        "do the same"
    )
    print(f"{name}/README.md tells the layout, the scenarios, the configuration and how to deploy it")
    return 0
