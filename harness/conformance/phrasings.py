"""What the probe visitors of ``check`` say, in the languages an iAdvize operator may speak.

A bot escalates on its own words ("human", "agent", a French "conseiller"...), so the
escalation probe tries several phrasings per language until one transfers. iAdvize's home
market is French-speaking: without a language given, English and French are both tried.
"""

from __future__ import annotations

import re

LANGUAGES = ("en", "fr", "de", "es", "it", "nl", "pt")
DEFAULT_LANGUAGES = ("en", "fr")

GREETINGS = {"en": "Hi", "fr": "Bonjour", "de": "Hallo", "es": "Hola", "it": "Ciao", "nl": "Hallo", "pt": "Olá"}

# Most explicit first: a sentence, then the bare words connectors match on.
ESCALATIONS = {
    "en": [
        "I would like to talk to a human, please",
        "Can I speak to an agent?",
        "human",
        "agent",
        "I want to talk to a person",
        "customer service",
    ],
    "fr": [
        "Je voudrais parler à un conseiller",
        "Je veux parler à un humain",
        "conseiller",
        "humain",
        "service client",
        "un agent s'il vous plaît",
    ],
    "de": ["Ich möchte mit einem Mitarbeiter sprechen", "Mitarbeiter", "Mensch", "Kundenservice"],
    "es": ["Quiero hablar con un agente", "Quiero hablar con una persona", "agente", "atención al cliente"],
    "it": ["Vorrei parlare con un operatore", "Vorrei parlare con una persona", "operatore", "assistenza clienti"],
    "nl": ["Ik wil met een medewerker spreken", "Ik wil een mens spreken", "medewerker", "klantenservice"],
    "pt": ["Quero falar com um atendente", "Quero falar com uma pessoa", "atendente", "atendimento ao cliente"],
}

# Words that make a quick reply look like a way to a human, in every language above.
_HUMAN = re.compile(
    r"\b(human|humain|person|persona|pessoa|agent|agente|advisor|adviser|conseill\w*|operat\w*|"
    r"colleague|someone|support|service client|customer service|mitarbeiter|mensch|medewerker|"
    r"mens|atendente|atendimento|kundenservice|klantenservice|assistenza)\b",
    re.IGNORECASE,
)


def greeting(language: str | None) -> str:
    """The probe visitor's first message in ``language`` (English when none is given, or one without a greeting)."""
    return GREETINGS.get(language or "en", GREETINGS["en"])


def escalations(language: str | None = None) -> list[str]:
    """The phrasings to try, in order: the operator's language, then English (or, with no language
    given, English then French)."""
    languages = DEFAULT_LANGUAGES if language is None else (language, *(("en",) if language != "en" else ()))
    # a language without phrasings of its own (the CLI offers only known ones) falls back to English
    return list(dict.fromkeys(text for lang in languages for text in ESCALATIONS.get(lang, ())))


def looks_like_escalation(text: str) -> bool:
    """A quick reply such as "Talk to a human" or "Parler à un conseiller"."""
    return bool(_HUMAN.search(text))


# What a bot asks for before a transfer (prequalification), and what the probe visitor answers.
VISITOR_DATA = (
    (re.compile(r"\be-?mail|\bcourriel|\bcorreo\b", re.IGNORECASE), "visitor@example.com"),
    (
        re.compile(
            r"\bphone\b|t[ée]l[ée]phone|\btelefon|\btelefono|\bmobile\b|\bportable\b|\bcell\b|\bcall (you|back)?|"
            r"\bnumber (can|should|may) (we|i) (call|ring|reach)|\b(appeler|rappeler|joindre)\b|\banrufen\b|\bllamar",
            re.IGNORECASE,
        ),
        "+33 6 12 34 56 78",
    ),
    (re.compile(r"\border\b|\bcommande\b|\bbestell|\bpedido\b|\bordine\b|\bbestelling", re.IGNORECASE), "123456"),
    (
        re.compile(r"\b(your|votre|vos|ton|tes) (full )?(name|nom)\b|\bcomment vous appelez", re.IGNORECASE),
        "Ada Martin",
    ),
)


def visitor_data_for(question: str) -> str | None:
    """What the probe visitor answers when the bot asks for an email, a phone or an order number."""
    return next((answer for asked, answer in VISITOR_DATA if asked.search(question)), None)


# Words of a holding message: the bot asks the visitor to wait while it works on the answer, which is
# then due through iAdvize's API (the simulated platform waits for it; rule holding-without-answer).
_HOLDING = re.compile(
    r"(\bone moment\b|\bjust a (moment|second|sec)\b|\blet me (check|look|see|find)\b|\bi'?m (checking|looking)\b|"
    r"\bplease wait\b|\bun (instant|moment)\b|\bje (vérifie|regarde|cherche)\b|\bpatientez\b|\beinen moment\b|"
    r"\bun momento\b|\bun attimo\b|\beven geduld\b|\bum momento\b|(\.\.\.|…)\s*$)",
    re.IGNORECASE,
)


def looks_like_holding(text: str) -> bool:
    """A message such as "One moment please, I'm looking that up." or "Je vérifie…"."""
    return bool(_HOLDING.search(text))


# Words that tell the visitor a person is coming: the bot says it is transferring them (rule
# transfer-announced-not-done when no transfer follows), in every language above.
_TRANSFER_ANNOUNCED = re.compile(
    r"(\btransferring you\b|\btransfer you\b|\bconnecting you\b|\bput(ting)? you (through|in touch)\b|"
    r"\b(an? (agent|advisor|adviser|colleague)|someone) will be with you\b|"
    r"\bje vous (mets|passe) en (relation|contact)\b|\bje vous transf[eè]re\b|\bun conseiller va\b|"
    r"\bich verbinde sie\b|\bich leite (sie|ihre anfrage) weiter\b|"
    r"\b(te|le) (paso|transfiero|comunico) con\b|\bun agente (te|le) atender[aá]\b|"
    r"\b(ti|la) (passo|trasferisco|metto in contatto)\b|\bun operatore (ti|la) risponder[aà]\b|"
    r"\bik (verbind|zet|stuur) (je|u) door\b|"
    r"\bvou (te |o |a |lhe )?(transferir|encaminhar)\b|\b(te|o|a) transfiro\b)",
    re.IGNORECASE,
)


def looks_like_transfer_announcement(text: str) -> bool:
    """A message such as "I'm transferring you to an advisor" or "Je vous mets en relation"."""
    return bool(_TRANSFER_ANNOUNCED.search(text[:2000]))
