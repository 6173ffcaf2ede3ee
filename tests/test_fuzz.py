"""Property-based fuzzing of the reference bot over HTTP (gunicorn on loopback), with hypothesis.

Valid requests (any unicode, long values, every payload type, every date form) must get
answers that fit the wire model; broken ones (wrong types, missing and extra fields, deep
nesting, huge arrays, invalid UTF-8, wrong content types, empty bodies) a 4xx whose JSON
names the problem; nothing ever gets a 5xx. ``make test`` runs a small derandomised sample
(hypothesis profile ``ci``); ``make fuzz`` runs the ``fuzz`` profile, over 10,000 cases, and
prints the count (both profiles and the count are in tests/conftest.py).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from urllib.parse import quote, urlencode

import pytest
import requests
from hypothesis import assume, given
from hypothesis import strategies as st

from harness import wire
from harness.bots import EmbeddedBot

CASES: Counter[str] = Counter()  # generated cases, requests sent and 5xx seen: the terminal summary prints them
CONNECTOR = "5a3e0f1c-2b4d-4c6e-8f01-a2b3c4d5e6f7"
OPERATOR = "ha-424242"
MAX_BODY_BYTES = 1024 * 1024  # the reference bot's default REFERENCE_BOT_MAX_BODY_BYTES
RULE = {"id": "8d7c1f52-3f7e-4a53-9d1e-0c2b9a6e4f10", "label": "Customer service"}


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bot():
    # the session closes before the bot stops: gunicorn lingers 2 s over a connection kept alive
    with EmbeddedBot(workers=2) as running, requests.Session() as session:
        scenarios = [s["idBot"] for s in session.get(f"{running.url}/external-bots", timeout=10).json()]
        session.put(
            f"{running.url}/bots/{OPERATOR}",
            json={"distributionRules": [RULE], "external": {"idBot": scenarios[0]}},
            timeout=10,
        )
        running.session, running.scenarios = session, scenarios
        yield running


def send(
    bot,
    method: str,
    path: str,
    body: bytes | None = None,
    content_type: str | None = "application/json",
    query: dict | None = None,
) -> requests.Response:
    params = {"idConnectorVersion": CONNECTOR, "idWebsite": "ha-123", **(query or {})}
    headers = {"Content-Type": content_type} if content_type and body is not None else {}
    if body is not None and len(body) > MAX_BODY_BYTES:
        # The bot answers without reading a body over its limit and gunicorn then drops the
        # connection (it cannot say so in the answer): a caller must not reuse it.
        headers["Connection"] = "close"
    response = bot.session.request(
        method, f"{bot.url}{path}?{urlencode(params)}", data=body, headers=headers, timeout=10
    )
    CASES["requests"] += 1
    if response.status_code >= 500:
        CASES["5xx"] += 1
    return response


def check_answer(response: requests.Response, body_name: str | None) -> object:
    """Never a 5xx; a 2xx fits ``body_name``; a 4xx is a JSON error that names the problem."""
    assert response.status_code < 500, response.text[:500]
    assert response.headers["Content-Type"].startswith("application/json")
    document = response.json()
    if response.status_code < 300:
        if body_name:
            assert wire.problems(body_name, document) == [], document
    else:
        assert wire.problems("error.response", document) == [], document
        assert document["detail"].strip(), document
    return document


def encode(document) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


# --- what iAdvize may send ---------------------------------------------------------------------------

unicode_text = st.text(st.characters(codec="utf-8"), max_size=300)  # any character UTF-8 can carry
long_text = st.text(st.characters(codec="utf-8"), min_size=1000, max_size=6000)
some_text = st.one_of(unicode_text, long_text)
# "." and ".." are path segments every HTTP client folds away before sending: no id can be one
ids = st.text(st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=60).filter(
    lambda text: text not in (".", "..")
)
dates = st.builds(  # every form seen on the wire: fraction or not, Z, offsets, none, a Java zone suffix
    lambda day, clock, zone: f"{day}T{clock}{zone}",
    st.dates().map(lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d}").filter(lambda d: len(d) == 10),
    st.sampled_from(["13:53", "13:53:57", "00:00:00", "23:59:59.9", "13:53:57.961", "13:53:57.123456789"]),
    st.sampled_from(["", "Z", "+02:00", "-0530", "+01", "Z[Etc/UTC]", "[Europe/Paris]"]),
)
actions = st.lists(
    st.fixed_dictionaries({"type": st.just("LINK"), "name": unicode_text, "url": unicode_text}), min_size=1, max_size=3
)
card = st.fixed_dictionaries(
    {"contentType": st.just("card/content"), "actions": actions}, optional={"title": unicode_text, "text": some_text}
)
offer = st.fixed_dictionaries(
    {"contentType": st.just("product-offer"), "name": unicode_text, "price": unicode_text, "actions": actions}
)
payloads = st.one_of(
    st.fixed_dictionaries({"contentType": st.just("text"), "value": some_text.filter(str.strip)}),
    st.fixed_dictionaries(
        {
            "contentType": st.just("file"),
            "fileName": unicode_text,
            "url": unicode_text,
            "mimeType": st.sampled_from(["image/png", "application/pdf", "video/mp4", "x/y"]),
        }
    ),
    card,
    st.fixed_dictionaries({"contentType": st.just("bundle/card"), "cards": st.lists(card, max_size=3)}),
    offer,
    st.fixed_dictionaries({"contentType": st.just("bundle/product-offer"), "offers": st.lists(offer, max_size=3)}),
    st.fixed_dictionaries({"contentType": ids}),  # a content type nobody listed: to be taken, not refused
)
messages = st.fixed_dictionaries(
    {
        "idMessage": ids,
        "author": st.fixed_dictionaries({"role": st.sampled_from(["visitor", "operator"])}),
        "payload": payloads,
        "createdAt": dates,
    }
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | unicode_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(unicode_text, inner, max_size=4),
    max_leaves=12,
)


# --- valid requests -----------------------------------------------------------------------------------


@given(id_conversation=ids, history=st.lists(messages, max_size=3), first=messages)
def test_valid_conversations_get_answers_that_fit_the_api(bot, id_conversation, history, first):
    CASES["cases"] += 1
    path = f"/conversations/{quote(id_conversation, safe='')}/messages"
    started = send(
        bot,
        "POST",
        "/conversations",
        encode({"idOperator": OPERATOR, "idConversation": id_conversation, "history": history}),
    )
    assert started.status_code == 200, started.text
    check_answer(started, "conversation.response")
    answer = send(bot, "POST", path, encode({"idOperator": OPERATOR, "message": first}))
    assert answer.status_code == 200, answer.text
    document = check_answer(answer, "message.response")
    if first["author"]["role"] == "operator":
        assert document["replies"] == []  # the echo rule, whatever the payload


@given(
    id_operator=ids,
    name=unicode_text,
    language=st.from_regex(r"\A[a-zA-Z]{2}\Z"),
    rules=st.lists(st.fixed_dictionaries({"id": ids, "label": unicode_text}), max_size=4),
    data=st.data(),
)
def test_valid_operators_are_saved_read_back_and_polled(bot, id_operator, name, language, rules, data):
    CASES["cases"] += 1
    scenario = data.draw(st.sampled_from(bot.scenarios))
    path = f"/bots/{quote(id_operator, safe='')}"
    settings_ = {
        "name": name,
        "pseudo": name,
        "language": language,
        "distributionRules": rules,
        "external": {"idBot": scenario},
    }
    saved = check_answer(send(bot, "PUT", path, encode(settings_)), "bot.response")
    assert saved["idOperator"] == id_operator and saved["external"]["idBot"] == scenario
    read = check_answer(send(bot, "GET", path), "bot.response")
    assert read["distributionRules"] == rules  # state: what was saved is what is read
    check_answer(
        send(bot, "GET", "/availability-strategies", query={"idOperator": id_operator}),
        "availability-strategies.response",
    )
    greeting = send(bot, "GET", f"{path}/conversation-first-messages")
    assert greeting.status_code == 200
    check_answer(greeting, "first-messages.response")


@given(said=st.lists(st.tuples(some_text.filter(str.strip), st.booleans()), min_size=1, max_size=6))
def test_a_conversation_stays_consistent_whatever_is_said_and_resent(bot, said):
    """Each message answered once: a resent idMessage gets the very same replies; echoes get none."""
    CASES["cases"] += 1
    id_conversation = str(uuid.uuid4())
    path = f"/conversations/{id_conversation}/messages"
    check_answer(
        send(bot, "POST", "/conversations", encode({"idOperator": OPERATOR, "idConversation": id_conversation})),
        "conversation.response",
    )
    answered: dict[str, list] = {}
    for number, (text, resend_previous) in enumerate(said):
        id_message = f"m-{number - 1}" if resend_previous and number else f"m-{number}"
        message = {
            "idMessage": id_message,
            "author": {"role": "visitor"},
            "payload": {"contentType": "text", "value": text},
            "createdAt": "2026-11-24T10:00:00.000Z",
        }
        replies = check_answer(
            send(bot, "POST", path, encode({"idOperator": OPERATOR, "message": message})), "message.response"
        )["replies"]
        if id_message in answered:
            assert replies == answered[id_message]
        answered.setdefault(id_message, replies)
        for reply in replies:
            if reply["type"] == "message":
                echo = {
                    **message,
                    "idMessage": str(uuid.uuid4()),
                    "author": {"role": "operator"},
                    "payload": reply["payload"],
                }
                echoed = send(bot, "POST", path, encode({"idOperator": OPERATOR, "message": echo}))
                assert check_answer(echoed, "message.response")["replies"] == []


# --- broken requests ----------------------------------------------------------------------------------


def valid_message_body() -> dict:
    return {
        "idOperator": OPERATOR,
        "message": {
            "idMessage": str(uuid.uuid4()),
            "author": {"role": "visitor"},
            "payload": {"contentType": "text", "value": "Hi"},
            "createdAt": "2026-11-24T10:00:00.000Z",
        },
    }


def paths_in(document, prefix=()):
    yield prefix
    if isinstance(document, dict):
        for key, value in document.items():
            yield from paths_in(value, (*prefix, key))


def broken(document: dict, path: tuple, how: str, value):
    """``document`` with the field at ``path`` removed, retyped or given a sibling it should not have."""
    copy = json.loads(json.dumps(document))
    if not path:
        return value if how == "retype" else copy
    parent = copy
    for key in path[:-1]:
        parent = parent[key]
    if how == "remove":
        del parent[path[-1]]
    elif how == "retype":
        parent[path[-1]] = value
    else:
        parent[f"unexpected-{path[-1]}"] = value
    return copy


@given(data=st.data(), how=st.sampled_from(["remove", "retype", "extra"]), value=json_values)
def test_broken_bodies_get_a_4xx_naming_the_problem(bot, data, how, value):
    CASES["cases"] += 1
    endpoint = data.draw(st.sampled_from(["messages", "conversations", "bot.save"]))
    if endpoint == "messages":
        document, method, path = valid_message_body(), "POST", f"/conversations/{uuid.uuid4()}/messages"
    elif endpoint == "conversations":
        document, method, path = (
            {"idOperator": OPERATOR, "idConversation": str(uuid.uuid4()), "history": []},
            "POST",
            "/conversations",
        )
    else:
        document, method, path = {"external": {"idBot": bot.scenarios[0]}}, "PUT", f"/bots/ha-{uuid.uuid4().hex}"
    where = data.draw(st.sampled_from(list(paths_in(document))))
    sent = broken(document, where, how, value)
    response = send(bot, method, path, encode(sent))
    check_answer(
        response,
        {"messages": "message.response", "conversations": "conversation.response", "bot.save": "bot.response"}[
            endpoint
        ],
    )
    # the wire model says whether the change broke the body: then a 400 must say so, else it is served
    problems = wire.problems(
        {"messages": "message.request", "conversations": "conversation.request", "bot.save": "bot.request"}[endpoint],
        sent,
    )
    if problems:
        assert response.status_code == 400, (problems, response.text)
    else:
        # ...or refused for what it names, when the change named an operator or scenario the bot lacks
        assert response.status_code < 300 or response.json()["error"] in ("unknown operator", "unknown scenario"), (
            response.text
        )


@given(
    body=st.one_of(
        st.binary(max_size=300),  # mostly invalid UTF-8 and invalid JSON
        st.builds(lambda depth: b"[" * depth + b"]" * depth, st.integers(500, 50_000)),  # deep nesting
        st.builds(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth, st.integers(500, 20_000)),
        st.builds(
            lambda n: encode({"idOperator": OPERATOR, "idConversation": "c", "history": [{}] * n}),
            st.integers(10_000, 300_000),
        ),  # a huge array
        st.sampled_from([b"", b"null", b"[]", b'"text"', b"1e999", b"{}", b'{"idOperator": "\\ud800"}']),
    ),
    content_type=st.sampled_from(
        [
            "application/json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/json; charset=latin-1",
            None,
        ]
    ),
    endpoint=st.sampled_from(["/conversations", "/conversations/c-1/messages", f"/bots/{OPERATOR}"]),
)
def test_garbage_bodies_and_content_types_get_a_4xx_naming_the_problem(bot, body, content_type, endpoint):
    CASES["cases"] += 1
    method = "PUT" if endpoint.startswith("/bots/") else "POST"
    response = send(bot, method, endpoint, body, content_type)
    assert 400 <= response.status_code < 500, response.text[:300]
    check_answer(response, None)


@given(
    operator=st.one_of(ids, st.just("")),
    method=st.sampled_from(["GET", "DELETE", "PATCH"]),
    endpoint=st.sampled_from(
        [
            "/availability-strategies",
            "/bots/{}/conversation-first-messages",
            "/bots/{}",
            "/external-bots",
            "/conversations/{}/messages",
            "/{}",
        ]
    ),
)
def test_unknown_operators_paths_and_methods_get_a_json_4xx(bot, operator, method, endpoint):
    CASES["cases"] += 1
    assume(operator or "{}" not in endpoint)  # an empty path segment is another route, drawn on its own
    path = endpoint.format(quote(operator, safe=""))
    response = send(bot, method, path, query={"idOperator": operator} if "availability" in endpoint else None)
    body_name = {"/external-bots": "external-bots.response"}.get(endpoint)
    check_answer(response, body_name)


# --- raw bytes: what no HTTP client library would send -----------------------------------------------

NASTY = [b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\x00", b"\x1b[31m", b"\xff", b"\xc3\x28", b"%00", b"%ED%A0%80", b"%2F",
         b"\x7f", b"\xe2\x80\xae", b"\xef\xbf\xbe", b"\r", b"\t", b" ", b"a", b"\xf4\x90\x80\x80"]  # fmt: skip
raw_bytes = st.one_of(
    st.lists(st.sampled_from(NASTY), min_size=1, max_size=8).map(b"".join), st.binary(min_size=1, max_size=40)
)


def send_raw(bot, method: bytes, path: bytes, body: bytes | None = None) -> tuple[int, bytes, bytes]:
    """One request written byte for byte on a socket of its own (no client library cleans it): status, head,
    body of the answer."""
    import socket

    host, port = bot.url.removeprefix("http://").split(":")
    head = method + b" " + path + b" HTTP/1.1\r\nHost: bot\r\nConnection: close\r\n"
    if body is not None:
        head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(head + b"\r\n" + (body or b""))
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    CASES["requests"] += 1
    status_line, _, rest = answer.partition(b"\r\n")
    headers, _, payload = rest.partition(b"\r\n\r\n")
    status = int(status_line.split()[1])
    CASES["5xx"] += status >= 500
    return status, headers, payload


@given(raw=raw_bytes, text=raw_bytes)
def test_raw_bytes_in_ids_and_texts_get_a_json_answer_never_a_5xx(bot, raw, text):
    """Invalid UTF-8, raw surrogates, NUL and control characters in the ids of every path and in the texts of
    every body: each answered in JSON (a 4xx naming the problem, or a 2xx), never a 5xx nor an HTML page."""
    CASES["cases"] += 1
    query = b"?idConnectorVersion=" + CONNECTOR.encode()
    message = b'{"idOperator": "' + OPERATOR.encode() + b'", "message": {"idMessage": "' + raw + b'", "author": ' \
              b'{"role": "visitor"}, "payload": {"contentType": "text", "value": "' + text + b'"}, "createdAt": ' \
              b'"2026-01-05T10:00:00.000Z"}}'  # fmt: skip
    for method, path, body in (
        (b"GET", b"/bots/" + raw + b"/conversation-first-messages" + query, None),
        (b"GET", b"/bots/" + raw + query, None),
        (b"PUT", b"/bots/" + raw + query, b'{"distributionRules": [], "external": {"idBot": "' + text + b'"}}'),
        (b"GET", b"/availability-strategies" + query + b"&idOperator=" + raw, None),
        (b"POST", b"/conversations" + query, b'{"idOperator": "' + raw + b'", "idConversation": "' + text + b'"}'),
        (b"POST", b"/conversations/" + raw + b"/messages" + query, message),
    ):
        status, headers, payload = send_raw(bot, method, path, body)
        assert status < 500, (method, path, payload[:300])
        assert b"content-type: application/json" in headers.lower(), (method, path, headers, payload[:300])
        document = json.loads(payload)
        if status >= 400:
            assert wire.problems("error.response", document) == [], document
