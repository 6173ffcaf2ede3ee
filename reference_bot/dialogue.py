"""The bot's brain: one function, ``answer``, from a visitor message to the replies.

This is the piece to replace to plug your own NLU or LLM in place of the scenario
engine. Pass yours as ``create_app({"DIALOGUE": my_answer})`` (or edit this file): it
receives a :class:`Turn` and returns an :class:`Answer`. Everything around it (the echo
rule, retries of the same message, persistence, signatures, transfers to the operator's
distribution rules, proactive delivery) stays the connector's job.

``answer`` runs outside the database transaction: it works on a snapshot of the
conversation, and its result is stored only if the conversation has not changed meanwhile
(its version); otherwise it is asked again from the new state (a few times, then the call
is answered 503 and iAdvize retries it). So it may run more than once for one message: keep
it free of side effects, keep it fast, and put anything that may take seconds in
``Answer.proactive`` (see below) rather than in the HTTP answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import scenario as engine
from .store import Conversation, Operator


@dataclass(frozen=True)
class Turn:
    """What the dialogue is given for one visitor message."""

    operator: Operator  # the bot operator, with its distribution rules
    scenario: engine.Scenario  # the scenario (idBot) the operator is linked to
    conversation: Conversation  # ``state``: where the previous answer left it (None at first); ``variables``
    message: dict  # the visitor's wire message: idMessage, author, payload, createdAt


@dataclass
class Answer:
    """What the dialogue answers: the replies now, the conversation's next state, and replies sent later."""

    replies: list[dict]  # wire replies, answered in the HTTP response, executed in order by iAdvize
    state: str | None  # stored and handed back in the next Turn
    # Text replies too slow for the 10 s budget: sent later as proactive GraphQL messages
    # (inline in the HTTP answer when no iAdvize API credentials are configured).
    proactive: list[dict] = field(default_factory=list)
    # The visitor data the bot holds (email, order number...), by name: stored, answered to iAdvize in
    # ``variables`` and handed back in the next Turn; None keeps the conversation's as they are.
    variables: dict[str, str] | None = None


def answer(turn: Turn) -> Answer:
    """The scenario engine's answer to one visitor message."""
    conversation = turn.conversation
    step = engine.step(turn.scenario, conversation.state, turn.message["payload"], conversation.variables)
    rules = turn.operator.distribution_rules
    return Answer(
        replies=engine.resolve_transfers(step.replies, rules),
        state=step.state,
        proactive=engine.resolve_transfers(step.deferred, rules),
        variables=step.variables,
    )
