"""What the image service bills: the usage an answer reports, and one billed answer as data.

OpenRouter bills an answer whether or not it holds a usable picture: a safety refusal, a
text-only answer and a picture that fails validation cost the same as a good one, and a stream
that was cut is billed in full by providers that cannot abort (Google's among them). The client
hands every such answer on as a `Charge` (on the result, or on the error that ended the run);
the pipeline writes each one to the spend ledger with its `Outcome`.
"""

from __future__ import annotations

from dataclasses import dataclass


class Outcome:
    """How a billed answer ended (the ledger's `outcome` column holds these words)."""

    PICTURE = "picture"  # at least one picture was stored (and, unless marked later, sent)
    REFUSAL = "refusal"  # the model declined (safety finish reason)
    TEXT_ONLY = "text_only"  # the model answered with words and no picture
    INVALID_PICTURE = "invalid_picture"  # every picture of the answer failed validation
    UNDELIVERED = "undelivered"  # made and paid for, but it could not be sent to the chat
    ABORTED = "aborted"  # the answer had started and was cut: by us, the network or a cancel

    ALL = (PICTURE, REFUSAL, TEXT_ONLY, INVALID_PICTURE, UNDELIVERED, ABORTED)
    # Answers that were billed and put no picture into the chat's hands.
    WITHOUT_PICTURE = (REFUSAL, TEXT_ONLY, INVALID_PICTURE, ABORTED)


@dataclass(frozen=True)
class Usage:
    """Tokens and cost of one completion; None where the gateway did not say."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = None  # USD

    @property
    def cost_known(self) -> bool:
        return self.cost is not None


@dataclass(frozen=True)
class Charge:
    """One answer the service bills (or may bill: an aborted one), without its pictures.

    `usage` is what the answer reported (None: nothing, e.g. a stream cut before its last
    chunk); `generation_id` is OpenRouter's id of it, with which its cost can be looked up
    afterwards (GET /api/v1/generation). Holds the masked key only.
    """

    outcome: str  # one of Outcome
    model: str
    key_mask: str
    generation_id: str = ""
    usage: Usage | None = None

    @property
    def cost(self) -> float | None:
        return self.usage.cost if self.usage is not None else None
