"""Everything that can go wrong in a generation, and the one place that words it for users.

Each exception carries an English `detail` for the log. `user_message()` turns any of them into
the short Chinese text a chat user (or the chat model relaying it) sees; it never includes keys,
tracebacks or raw upstream bodies.
"""

from __future__ import annotations

import math
import time

from .coerce import clip_text


class PicGenError(Exception):
    """Base of every expected failure. `detail` is English and safe to log."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.__class__.__name__)
        self.detail = detail or self.__class__.__name__


# --- configuration and request ---------------------------------------------------------------


class NoApiKeyError(PicGenError):
    """No real key is configured (empty, or only placeholders)."""


class MissingPromptError(PicGenError):
    """The tool was called without a description."""


class InvalidArgumentError(PicGenError):
    """An argument has a value we cannot use (shown to the user as `hint`)."""

    def __init__(self, detail: str, hint: str) -> None:
        super().__init__(detail)
        self.hint = hint


class ConfigSaveError(PicGenError):
    """An admin's change applies, but writing the plugin's config file failed."""


# --- local policy: who may draw, and how often ---------------------------------------------


class GroupNotAllowed(PicGenError):
    """The group is on the deny list, or an allow list exists and the group is not on it."""


class RateLimitHit(PicGenError):
    """A per-user or per-group requests-per-minute limit of this plugin was reached."""

    def __init__(self, detail: str, scope: str, limit: int, retry_after: float) -> None:
        super().__init__(detail)
        self.scope = scope  # "user" or "group"
        self.limit = limit
        self.retry_after = retry_after


class ReferenceImageError(PicGenError):
    """A reference image could not be used, or an edit request carried none.

    `reason` is one of the constants below. Per-image problems (`position` > 0, 1-based) do not stop
    the request: the image is skipped and the user is told. MISSING and UNUSABLE stop it.
    """

    MISSING = "missing"  # the request is clearly an edit but no image came with it
    UNUSABLE = "unusable"  # images came, none could be read
    TOO_MANY = "too_many"  # more images than the configured limit; the first ones are used
    TIMEOUT = "timeout"
    TOO_LARGE = "too_large"
    DOWNLOAD = "download"
    INVALID = "invalid"
    SOURCE = "source"

    def __init__(
        self, detail: str, reason: str, *, position: int = 0, found: int = 0, limit: int = 0
    ) -> None:
        super().__init__(detail)
        self.reason = reason
        self.position = position
        self.found = found
        self.limit = limit


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
    """402: the account behind the key has no credits left."""


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


class BadRequestError(UpstreamError):
    """400: the service rejected the request itself; retrying will not help."""


class UpstreamUnavailableError(UpstreamError):
    """5xx, 408, HTML or garbled answers, dropped connections: usually temporary."""


class UpstreamTimeoutError(UpstreamError):
    """No complete answer in time."""


class ConnectionLostError(UpstreamUnavailableError):
    """An answer that had started stopped coming: the stream went silent past the idle limit
    (no keep-alive either) or was cut. Its request is over; another try may be sent."""


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


_MAX_MODEL_TEXT = 200


def _clock_time(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def _seconds(value: float) -> int:
    return max(1, math.ceil(value))


def _cause(error: PicGenError) -> str:
    """A few words on why the last try failed, for the timeout message."""
    status = getattr(error, "status", None)
    code = f"（HTTP {status}）" if isinstance(status, int) and status != 200 else ""
    if isinstance(error, UpstreamTimeoutError):
        return "图像服务响应超时" + code
    if isinstance(error, ConnectionLostError):
        return "与图像服务的连接中断"
    if isinstance(error, (RateLimitedError, AllKeysCoolingDownError)):
        return "请求被限流"
    if isinstance(error, UpstreamUnavailableError):
        return "图像服务暂时不可用" + code
    if isinstance(error, UpstreamError):
        return "图像服务返回错误" + code
    return "请求失败"


_REFERENCE_PROBLEMS = {
    ReferenceImageError.TIMEOUT: "下载超时",
    ReferenceImageError.TOO_LARGE: "文件太大",
    ReferenceImageError.DOWNLOAD: "下载失败",
    ReferenceImageError.INVALID: "不是有效的图片",
    ReferenceImageError.SOURCE: "来源无法识别",
}


def _reference_message(error: ReferenceImageError) -> str:
    if error.reason == ReferenceImageError.MISSING:
        return (
            "看起来你想修改一张图片，但我没有收到图片。"
            "请把图片和修改要求一起发送，或回复（引用）那张图片再说要求。"
        )
    if error.reason == ReferenceImageError.UNUSABLE:
        return "参考图都无法读取（下载失败、太大或不是有效图片），请重新发送图片后再试。"
    if error.reason == ReferenceImageError.TOO_MANY:
        return f"收到 {error.found} 张图片，只使用了前 {error.limit} 张作为参考图。"
    problem = _REFERENCE_PROBLEMS.get(error.reason, "无法读取")
    return f"第 {error.position} 张参考图{problem}，已跳过。"


def user_message(error: BaseException) -> str:
    """The Chinese sentence for a failure. Unknown exceptions get a generic text, never details."""
    if isinstance(error, NoApiKeyError):
        return "图片生成插件还没有配置可用的 OpenRouter API 密钥，请管理员在插件配置中填写。"
    if isinstance(error, MissingPromptError):
        return "请告诉我要画什么：图片描述不能为空。"
    if isinstance(error, InvalidArgumentError):
        return error.hint
    if isinstance(error, ConfigSaveError):
        return "设置已立即生效，但保存到配置文件失败，插件重载后会恢复原设置，请查看日志。"
    if isinstance(error, GroupNotAllowed):
        return "本群未开启画图功能，如需使用请联系机器人管理员。"
    if isinstance(error, RateLimitHit):
        wait = max(1, math.ceil(error.retry_after))
        if error.scope == "group":
            return f"本群画图太频繁了（每分钟最多 {error.limit} 次），请约 {wait} 秒后再试。"
        return f"你画图太频繁了（每人每分钟最多 {error.limit} 次），请约 {wait} 秒后再试。"
    if isinstance(error, ReferenceImageError):
        return _reference_message(error)
    if isinstance(error, InvalidKeyError):
        return "OpenRouter API 密钥无效或已被撤销，请管理员检查插件配置中的密钥。"
    if isinstance(error, OutOfCreditsError):
        return "OpenRouter 账户额度已用完，请管理员充值或更换密钥。"
    if isinstance(error, AllKeysCoolingDownError):
        if error.cooling >= error.key_count:
            which = f"全部 {error.key_count} 个 API 密钥都" if error.key_count > 1 else "API 密钥正"
            which += "在限流冷却中"
        else:
            which = f"{max(1, error.cooling)} 个 API 密钥正在限流冷却中"
            if error.unusable:
                which += f"（另有 {error.unusable} 个密钥无效或额度用尽）"
        return (
            f"请求太频繁，{which}，请在 {_clock_time(error.retry_at)}"
            f"（约 {_seconds(error.retry_after)} 秒后）再试。"
        )
    if isinstance(error, RateLimitedError):
        if error.retry_after:
            return f"请求太频繁，已被限流，请约 {_seconds(error.retry_after)} 秒后再试。"
        return "请求太频繁，已被限流，请稍后再试（免费额度每分钟约 20 次、每天 50 次）。"
    if isinstance(error, DeadlineExceededError):
        asked = getattr(error.last_error, "retry_after", None)
        if error.last_error and asked and error.next_wait >= asked:
            return (
                f"{_cause(error.last_error)}，服务要求约 {_seconds(asked)} 秒后再试，"
                f"超出了本次 {round(error.budget)} 秒的时间上限，请稍后再试。"
            )
        cause = f"，最后一次失败原因：{_cause(error.last_error)}" if error.last_error else ""
        return (
            f"图片生成超时：{round(error.budget)} 秒内没有拿到结果{cause}。"
            "剩余时间不够再试一次，请稍后再试。"
        )
    if isinstance(error, ModerationError):
        reasons = "、".join(clip_text(r, 60) for r in error.reasons[:5])
        return (
            "请求被内容审核拦截"
            + (f"（原因：{reasons}）" if reasons else "")
            + "，请换个描述试试。"
        )
    if isinstance(error, ModelUnavailableError):
        text = f"模型 {error.model} 不存在或已下线，请管理员在插件配置中更换模型。"
        if error.suggestions:
            text += "可用的图像模型有：" + "、".join(error.suggestions[:5]) + "。"
        return text
    if isinstance(error, BadRequestError):
        return "图像服务拒绝了这次请求（请求格式或参数不被接受），请换个描述或图片再试。"
    if isinstance(error, UpstreamTimeoutError):
        return "图像服务响应超时，请稍后再试。"
    if isinstance(error, ConnectionLostError):
        return "与图像服务的连接中断了，图片没有收到，请稍后再试。"
    if isinstance(error, UpstreamUnavailableError):
        code = f"（HTTP {error.status}）" if error.status and error.status != 200 else ""
        return f"图像服务暂时不可用{code}，请稍后再试。"
    if isinstance(error, RefusalError):
        return "模型出于安全策略拒绝生成这张图片，请换个说法试试。"
    if isinstance(error, NoImageError):
        if error.model_text:
            return f"模型没有返回图片，它的回复是：{clip_text(error.model_text, _MAX_MODEL_TEXT)}"
        return "模型没有返回图片，请换个描述再试。"
    if isinstance(error, InvalidImageError):
        return "模型返回的图片数据已损坏或格式不受支持，请重试。"
    if isinstance(error, DownloadError):
        return "模型返回的图片链接无法下载（超时、过大或链接失效），请重试。"
    if isinstance(error, DeliveryError):
        where = f"（{error.target}）" if error.target else ""
        return f"图片已生成，但发送失败：无法传到 NapCat 所在主机{where}，请管理员检查文件接收端。"
    if isinstance(error, UpstreamError):
        return "图像服务返回了错误，请稍后再试。"
    return "图片生成失败，发生了意外错误，请稍后再试。"


def delivery_fallback_note(error: DeliveryError) -> str:
    """Told to the model when the push failed and the image went out directly instead."""
    where = f" {error.target}" if error.target else ""
    return f"（NapCat 文件接收端{where}无法使用，图片已改为直接发送；请管理员检查接收端。）"
