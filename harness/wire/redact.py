"""Personal data taken out of recordings before they are written: emails, phone numbers, card numbers (any run of
eight digits or more) and the values a bot says it holds of the visitor (its answer's ``variables``).

Each value becomes a pseudonym of the same shape (an email another email, a phone number another phone number,
six digits six other digits), the same for the same value throughout a conversation and different in another:
a redacted recording still replays (the bot is given an email where the visitor gave one) and still analyses
(a conversation's summary for the human names the same pseudonym as the visitor's message). The pseudonyms come
from an HMAC keyed by a random key of the process: nothing in a recording leads back to the value.

Both writers of recordings (the reference bot's recorder and the harness's proxy) redact through
:class:`Redactor`; ``--keep-personal-data`` (``REFERENCE_BOT_RECORDINGS_KEEP_PERSONAL_DATA``) opts out.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections import OrderedDict

import phonenumbers

# Linear-time patterns (no nested quantifiers over the same characters): a recording is foreign text.
EMAIL = re.compile(r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")
# Eight digits or more, whatever separates them: two phone numbers run together ("06 12 34 56 78 06 98 76 54
# 32"), a number of a country the phone library does not guess, an IBAN's digits. Six-digit order numbers stay.
DIGITS = re.compile(r"\+?\d(?:[ .()/-]{0,2}\d){7,}")
# A longer text is not scanned but left out of the recording, its length said instead: the scan costs time in
# the bot's request (a flood of long messages must not slow its answers), and iAdvize messages are short.
SCANNED_CHARS = 4_000
PHONE_REGIONS = ("FR", "US", "GB", "DE")  # numbers written without +: read as these countries' (with +: any)


class Redactor:
    """Pseudonyms for the personal data of recorded lines, stable within a conversation.

    What is personal is found in what visitors wrote (emails, phone and card numbers) and in what the bot says
    it holds of them (its answer's ``variables``); once found, a value is replaced wherever it appears in that
    conversation's later lines too (the bot's summary for the human, say). The bot's own texts are otherwise
    left as they are: its support address is not a visitor's.
    """

    CONVERSATIONS = 10_000  # the conversations whose values are remembered (the least recent forgotten)

    def __init__(self, key: bytes | None = None):
        self.key = key or secrets.token_bytes(32)
        self.seen: OrderedDict[str, set[str]] = OrderedDict()  # conversation -> its personal values
        self.said: dict[str, set[str]] = {}  # conversation -> the bot's texts in its answers

    def line(self, line: dict) -> dict:
        """``line`` (a recording line) with every personal value in its request and response replaced."""
        conversation = str(line.get("conversation") or "")
        known = self.seen.setdefault(conversation, set())
        self.seen.move_to_end(conversation)
        while len(self.seen) > self.CONVERSATIONS:
            forgotten, _ = self.seen.popitem(last=False)
            self.said.pop(forgotten, None)
        for text in _texts(line.get("request"), "visitor"):
            known |= set(found_in(text[:SCANNED_CHARS]))
        known |= set(_variables(line.get("response")))
        # the bot's own words, as it answered them: iAdvize echoes them back as operator messages
        said = self.said.setdefault(conversation, set())
        said |= set(_reply_texts(line.get("response"))[:50])
        # a human's messages (operator messages that are no echo of the bot's) are searched too, for this line
        # only: an echo keeps the bot's own words (its support address) as its answer has them, so a recording
        # still tells the bot's messages from a human's
        human = [text for text in _texts(line.get("request"), "operator") if text not in said]
        heard = {value for text in human for value in found_in(text[:SCANNED_CHARS])}
        values = sorted(known, key=len, reverse=True)  # the longest first: a value inside another
        return {  # the path is iAdvize's ids and query: nothing of the visitor's, and replay matches on it
            **line,
            "request": self._value(line.get("request"), conversation, sorted(known | heard, key=len, reverse=True)),
            "response": self._value(line.get("response"), conversation, values),
        }

    def _value(self, value, conversation: str, values: list[str]):
        if isinstance(value, str):
            return self._text(value, conversation, values)
        if isinstance(value, list):
            return [self._value(v, conversation, values) for v in value]
        if isinstance(value, dict):
            return {k: v if _structural(k) else self._value(v, conversation, values) for k, v in value.items()}
        return value

    def _text(self, text: str, conversation: str, values: list[str]) -> str:
        if len(text) > SCANNED_CHARS:
            return f"[{len(text)} characters, not recorded: too long to look for personal data in]"
        for value in values:
            if value in text:
                text = text.replace(value, self.pseudonym(value, conversation))
        return text

    def pseudonym(self, value: str, conversation: str) -> str:
        """A stand-in for ``value`` of the same shape (digits for digits, letters for letters, the rest kept),
        derived from it and the conversation by an HMAC: the same within a conversation, nothing to go back."""
        stream = hmac.new(self.key, f"{conversation}\0{value}".encode(), hashlib.sha256).digest()
        while len(stream) < len(value):
            stream += hashlib.sha256(stream).digest()
        out = []
        for char, byte in zip(value, stream, strict=False):
            if char.isdigit():
                out.append(str(byte % 10))
            elif char.isalpha():
                letter = chr(ord("a") + byte % 26)
                out.append(letter.upper() if char.isupper() else letter)
            else:
                out.append(char)
        return "".join(out)


def found_in(text: str) -> list[str]:
    """The emails, phone numbers, card numbers and runs of eight digits or more written in ``text``."""
    found = [m.group() for m in EMAIL.finditer(text)]
    found += [m.group().strip() for m in DIGITS.finditer(text)]
    return found + _phones(text)


def _reply_texts(response) -> list[str]:
    """The texts of a bot's answer (its ``replies``' text messages)."""
    replies = response.get("replies") if isinstance(response, dict) else None
    texts = []
    for reply in replies if isinstance(replies, list) else []:
        payload = reply.get("payload") if isinstance(reply, dict) else None
        if isinstance(payload, dict) and isinstance(payload.get("value"), str):
            texts.append(payload["value"])
    return texts


def _texts(request, role: str) -> list[str]:
    """What ``role`` (visitor, operator) wrote in a call: its message's text when that role is its author, and
    that role's messages of a conversation's ``history``."""
    if not isinstance(request, dict):
        return []
    messages = [request.get("message"), *(request.get("history") or [])]
    texts = []
    for message in messages:
        if isinstance(message, dict) and (message.get("author") or {}).get("role") == role:
            payload = message.get("payload") or {}
            texts += [v for v in payload.values() if isinstance(v, str)] if isinstance(payload, dict) else []
    return texts


# Fields of the protocol that hold no visitor's words: ids (a UUID's digit groups can pass for a card or a
# phone number), timestamps and enumerations. Left as they are, so a redacted recording replays.
STRUCTURAL = {"distributionRule", "createdAt", "updatedAt", "contentType", "type", "role", "unit", "mimeType", "key"}


def _structural(key: str) -> bool:
    return key in STRUCTURAL or key.startswith("id") or key.endswith("Id")


def _phones(text: str) -> list[str]:
    """The phone numbers written in ``text``, as written."""
    if not any(c.isdigit() for c in text):
        return []
    found = set()
    for region in PHONE_REGIONS:
        found |= {m.raw_string for m in phonenumbers.PhoneNumberMatcher(text, region)}
    return list(found)


def _variables(response) -> list[str]:
    """The values a bot's answer says it holds of the visitor (``variables: [{key, value}]``)."""
    given = response.get("variables") if isinstance(response, dict) else None
    if not isinstance(given, list):
        return []
    values = [v.get("value") for v in given if isinstance(v, dict)]
    return [v for v in values if isinstance(v, str) and len(v) > 2]  # "no", "ok": not worth hiding everywhere
