"""Everything that can go wrong in a request, as one exception hierarchy.

Each exception carries an English `detail` for the log and the data a message needs; the words
users read come from utils/chat/texts/failures.py (`user_message()`), never from here.
"""

from __future__ import annotations

from .charges import Charge


class PicGenError(Exception):
    """Base of every expected failure. `detail` is English and safe to log.

    `charge` is set on a failure that ended an answer the service bills (a refusal, a text-only
    answer, pictures that all failed validation, a stream that was cut): the pipeline records it
    in the spend ledger (utils/core/charges.py). An error with a charge is never retried: the
    try after it could be billed too.
    """

    charge: Charge | None = None

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.__class__.__name__)
        self.detail = detail or self.__class__.__name__


# --- configuration and request ---------------------------------------------------------------


class NoApiKeyError(PicGenError):
    """No real key is configured (empty, or only placeholders)."""


class MissingPromptError(PicGenError):
    """The tool was called without a description."""


class InvalidArgumentError(PicGenError):
    """A value from a tool argument or an admin command that we cannot use.

    `argument` names what was given (one of the constants below), `value` what it was, and
    `allowed` the values that would have worked, when there is a short list of them.
    """

    ASPECT_RATIO = "aspect_ratio"
    IMAGE_SIZE = "image_size"
    MODEL_ID = "model_id"
    API_BASE = "api_base"

    def __init__(
        self, detail: str, argument: str, value: str = "", allowed: tuple[str, ...] = ()
    ) -> None:
        super().__init__(detail)
        self.argument = argument
        self.value = value
        self.allowed = allowed


class UnsupportedImageOptionError(PicGenError):
    """A valid size or ratio the chosen model cannot draw, with nothing near enough to use.

    `option` is InvalidArgumentError.ASPECT_RATIO or .IMAGE_SIZE; `supported` is what the model
    takes; `models` names known models that take `value`.
    """

    def __init__(
        self,
        detail: str,
        model: str,
        option: str,
        value: str,
        supported: tuple[str, ...],
        models: tuple[str, ...] = (),
    ) -> None:
        super().__init__(detail)
        self.model = model
        self.option = option
        self.value = value
        self.supported = supported
        self.models = models


class ReferencesNotAcceptedError(PicGenError):
    """Reference pictures came with a request for a model that reads none (its input
    modalities lack "image"): refused before anything is downloaded or sent. `models` names
    image models that do read pictures."""

    def __init__(self, detail: str, model: str, models: tuple[str, ...] = ()) -> None:
        super().__init__(detail)
        self.model = model
        self.models = models


class ConfigSaveError(PicGenError):
    """An admin's change applies, but writing the plugin's config file failed."""


# --- local policy: who may draw, and how often ---------------------------------------------


class PluginClosedError(PicGenError):
    """The plugin instance was unloaded (a reload or shutdown): it starts nothing new."""


class UnknownKeyError(PicGenError):
    """An admin named a key by its last characters (`tail`) and that matches no configured key,
    or several (`matches`, masked); `known` lists every configured key, masked."""

    def __init__(self, detail: str, tail: str, matches: tuple[str, ...], known: tuple[str, ...]):
        super().__init__(detail)
        self.tail = tail
        self.matches = matches
        self.known = known


class GroupNotAllowed(PicGenError):
    """The group is on the deny list, or an allow list exists and the group is not on it."""


class RateLimitHit(PicGenError):
    """A per-user or per-group requests-per-minute limit of this plugin was reached."""

    def __init__(self, detail: str, scope: str, limit: int, retry_after: float) -> None:
        super().__init__(detail)
        self.scope = scope  # "user" or "group"
        self.limit = limit
        self.retry_after = retry_after


class DailyCapReached(PicGenError):
    """Today's recorded pictures or spend reached a daily cap of this plugin's config.

    `cap` is one of the constants below (each is the cap's config key); `limit` is pictures for
    the count caps and USD for the budgets; `used` is what today has recorded (plus, for counts,
    the requests in flight); `resets_at` is the next local midnight as epoch seconds.
    """

    USER_COUNT = "user_daily_limit"
    GROUP_COUNT = "group_daily_limit"
    USER_BUDGET = "user_daily_budget_usd"
    GROUP_BUDGET = "group_daily_budget_usd"
    BOT_BUDGET = "daily_budget_usd"

    def __init__(
        self,
        detail: str,
        cap: str,
        limit: float,
        used: float,
        resets_at: float,
        estimate: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.cap = cap
        self.limit = limit
        self.used = used
        self.resets_at = resets_at
        # Set when the cap is not reached yet but this request's estimated cost (USD) would
        # pass it.
        self.estimate = estimate


class LedgerError(PicGenError):
    """The spend ledger could not be read or written (closed, disk full, damaged file)."""


class LedgerUnavailableError(LedgerError):
    """A money cap is set and the ledger cannot be read or written: today's spend cannot be
    proven under the cap, so the request is refused before anything is sent (fail closed)."""


class ReferenceImageError(PicGenError):
    """A reference image could not be used, or an edit request carried none.

    `reason` is one of the constants below. Per-image problems (`position` > 0, 1-based) do not stop
    the request: the image is skipped and the user is told. MISSING and UNUSABLE stop it, and so
    does NO_AVATARS when a command needs a picture and an avatar was to be the only one.
    """

    MISSING = "missing"  # a command that works on a picture (edit, figure) came without one
    UNUSABLE = "unusable"  # images came, none could be read
    TOO_MANY = "too_many"  # more images than the configured limit; the first ones are used
    TIMEOUT = "timeout"
    TOO_LARGE = "too_large"
    DOWNLOAD = "download"
    INVALID = "invalid"
    SOURCE = "source"
    # A merged-forward message whose pictures could not be fetched (the others still count).
    FORWARD = "forward"
    # Avatars were wanted where the platform gives none (or the admin switched them off).
    NO_AVATARS = "no_avatars"

    def __init__(
        self,
        detail: str,
        reason: str,
        *,
        position: int = 0,
        found: int = 0,
        limit: int = 0,
        avatars: int = 0,
        avatar_of: str = "",
        own_avatar: bool = False,
        platform: str = "",
    ) -> None:
        super().__init__(detail)
        self.reason = reason
        self.position = position
        self.found = found  # TOO_MANY / UNUSABLE: candidates found, avatars included
        self.limit = limit
        self.avatars = avatars  # TOO_MANY: how many of `found` are avatars
        # A per-image problem of an avatar: whose (a display name), or the requester's own.
        self.avatar_of = avatar_of
        self.own_avatar = own_avatar
        self.platform = platform  # NO_AVATARS: the platform that has none


# --- upstream (OpenRouter or a compatible gateway) ---------------------------------------------


class UpstreamError(PicGenError):
    """The image service answered with an error or could not be reached.

    `retry_after` holds the seconds the server asked us to wait (Retry-After), when it said so.
    """

    def __init__(
        self, detail: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.retry_after = retry_after


class InvalidKeyError(UpstreamError):
    """401: the key is wrong or revoked."""


class OutOfCreditsError(UpstreamError):
    """402: the account behind the key has no credits left.

    Raised by the key pool when every usable key is out of credits, `retry_at` (wall-clock
    epoch seconds) is when it asks the service about them again (`retry_after` seconds from
    now); an answer of the service itself carries neither.
    """

    def __init__(
        self,
        detail: str,
        status: int | None = 402,
        retry_after: float | None = None,
        retry_at: float | None = None,
    ) -> None:
        super().__init__(detail, status, retry_after)
        self.retry_at = retry_at


class RateLimitedError(UpstreamError):
    """429: too many requests; `retry_after` seconds when the server said so."""

    def __init__(self, detail: str, status: int | None = 429, retry_after: float | None = None):
        super().__init__(detail, status, retry_after)


class ModerationError(UpstreamError):
    """403: the prompt or an input image was flagged by moderation."""

    def __init__(self, detail: str, reasons: tuple[str, ...] = (), status: int | None = 403):
        super().__init__(detail, status)
        self.reasons = reasons


class ModelUnavailableError(UpstreamError):
    """404: the model id is unknown or retired. `suggestions` lists image-capable ids."""

    def __init__(self, detail: str, model: str, suggestions: tuple[str, ...] = ()):
        super().__init__(detail, 404)
        self.model = model
        self.suggestions = suggestions


class ModalitiesUnsupportedError(UpstreamError):
    """404 "No endpoints found that support the requested output modalities": the model exists
    but no provider of it outputs what was asked (text beside the image, say). Not retired."""

    def __init__(self, detail: str, model: str):
        super().__init__(detail, 404)
        self.model = model


class BadRequestError(UpstreamError):
    """400: the service rejected the request itself; retrying will not help."""


class UpstreamUnavailableError(UpstreamError):
    """5xx, 408, HTML or garbled answers, dropped connections: usually temporary."""


class UpstreamTimeoutError(UpstreamError):
    """No complete answer in time."""


class NoAnswerError(UpstreamTimeoutError):
    """A streamed request got no answer at all, not even headers, within the first-byte
    deadline (`waited` seconds). OpenRouter answers a stream with headers at once, so this is a
    dead path (a black-holed relay or proxy), not a slow model; it is not tried again, since a
    relay that is working after all would bill a second try too."""

    def __init__(self, detail: str, waited: float) -> None:
        super().__init__(detail)
        self.waited = waited


class UnreachableError(UpstreamUnavailableError):
    """A connection-level fault before any answer: refused, reset or closed before the headers,
    no route, the connect timed out. Nothing was answered, so nothing was billed; it is tried
    again on the same key, never key after key (every key takes the same path)."""


class ConnectionLostError(UpstreamUnavailableError):
    """An answer that had started stopped coming: the stream went silent past the idle limit
    (no keep-alive either) or was cut. Its request is over. When the answer was a 200 (it may
    be billed: providers that cannot abort bill a cut stream in full) it carries a `charge` and
    is not tried again."""


class AllKeysCoolingDownError(UpstreamError):
    """Every usable key is cooling down after 429 (or 402); none frees up soon enough to wait.

    `retry_after` is the seconds until the first key is usable again, `retry_at` the same moment
    as wall-clock epoch seconds (shown to the user as HH:MM:SS). `key_count` counts every key,
    `cooling` those rate-limited (all of them unless said), `unusable` those invalid or out of
    credits.
    """

    def __init__(
        self,
        detail: str,
        retry_after: float,
        retry_at: float,
        key_count: int,
        *,
        cooling: int | None = None,
        unusable: int = 0,
    ) -> None:
        super().__init__(detail, 429, retry_after)
        self.retry_at = retry_at
        self.key_count = key_count
        self.cooling = key_count if cooling is None else cooling
        self.unusable = unusable


# --- the run as a whole ---------------------------------------------------------------------------


class DeadlineExceededError(PicGenError):
    """The run's time budget cannot hold another try; `last_error` is what failed before."""

    def __init__(
        self,
        detail: str,
        budget: float,
        last_error: PicGenError | None = None,
        next_wait: float = 0.0,
    ) -> None:
        super().__init__(detail)
        self.budget = budget
        self.last_error = last_error
        self.next_wait = next_wait  # the wait that did not fit


# --- the answer ---------------------------------------------------------------------------------


class RefusalError(PicGenError):
    """The model declined to draw (safety filter)."""


class NoImageError(PicGenError):
    """The answer held no image; `model_text` is what the model said instead."""

    def __init__(self, detail: str, model_text: str = "") -> None:
        super().__init__(detail)
        self.model_text = model_text


class InvalidImageError(PicGenError):
    """The answer held data that is not a valid raster image; nothing was saved."""


class DownloadError(PicGenError):
    """An image URL could not be fetched within the size cap and the time limit.

    `reason`: "timeout", "too_large", "http" (non-200 answer) or "network".
    """

    def __init__(self, detail: str, reason: str) -> None:
        super().__init__(detail)
        self.reason = reason


# --- delivery -------------------------------------------------------------------------------------


class DeliveryError(PicGenError):
    """The image exists but could not be handed to the chat platform."""

    def __init__(self, detail: str, target: str = "") -> None:
        super().__init__(detail)
        self.target = target
