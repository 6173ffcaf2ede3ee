"""The numbers the iAdvize platform documents, in one place for the bot and the harness alike.

Restated from the external-bot API reference ("Endpoints the connector must serve", "Reply
objects"): how long iAdvize waits for an answer, how long a message may be, the range of a
transfer's timeout, and when a silent chat is closed.
"""

BUDGET_SECONDS = 10.0  # what iAdvize waits for every endpoint...
FIRST_MESSAGES_BUDGET_SECONDS = 2.0  # ...but the greeting's: after it, the greeting is not shown

MAX_MESSAGE_CHARS = 450  # a hard technical limit: a longer message is cut
LONG_MESSAGE_CHARS = 250  # discouraged beyond: split into several messages

TRANSFER_TIMEOUT_RANGE = (5, 60)  # seconds a transfer may wait for a human
TRANSFER_TIMEOUT_ADVISED = 15  # below it, iAdvize has no time to check availability
DEFAULT_TRANSFER_TIMEOUT_SECONDS = 60.0  # a transfer without transferOptions

INACTIVITY_CLOSE_SECONDS = 300.0  # a chat with no new message for five minutes is closed
