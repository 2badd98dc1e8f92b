"""Every text a chat user, an admin or the chat model reads, in Chinese, in one place.

Exceptions (utils/core/errors.py) and results carry data; the functions here word them. Nothing
here ever includes an API key, a traceback, a host address meant for admins only, or a raw
upstream body.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..core.coerce import clip_text
from ..core.errors import (
    AllKeysCoolingDownError,
    BadRequestError,
    ConfigSaveError,
    ConnectionLostError,
    DailyCapReached,
    DeadlineExceededError,
    DeliveryError,
    DownloadError,
    GroupNotAllowed,
    InvalidArgumentError,
    InvalidImageError,
    InvalidKeyError,
    MissingPromptError,
    ModelUnavailableError,
    ModerationError,
    NoApiKeyError,
    NoImageError,
    OutOfCreditsError,
    PicGenError,
    RateLimitedError,
    RateLimitHit,
    ReferenceImageError,
    RefusalError,
    UnknownKeyError,
    UnsupportedImageOptionError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from ..core.image_options import ASPECT_RATIOS
from ..core.keys import mask_key, mask_proxy
from ..core.settings import DEFAULT_API_BASE, Settings, SpendPolicy
from ..openrouter.key_pool import RESET_BY_ADMIN, KeyState, KeyStatus
from ..openrouter.usage import KeyReport
from ..spend.ledger import GroupTotals, Summary, Totals, UserTotals
from ..spend.report import SpendReport
from .commands import (
    CMD_API_BASE,
    CMD_DRAW,
    CMD_EDIT,
    CMD_FIGURE,
    CMD_HELP,
    CMD_KEYS,
    CMD_MODEL,
    CMD_SETTINGS,
    CMD_STATS,
)
from .delivery import QQ_PLATFORM
from .jobs import DrawOutcome

if TYPE_CHECKING:  # data types worded here, imported for annotations only
    from ..imaging.outgoing import Outgoing
    from ..openrouter.capabilities import ModelSummary, ResolvedImageOptions
    from ..openrouter.model_catalog import ModelPrice

_MAX_MODEL_TEXT = 200


# --- times and durations: the one formatter ------------------------------------------------------


def clock_time(epoch: float) -> str:
    """A wall-clock moment as people in the chat read it: local HH:MM:SS."""
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def whole_seconds(value: float) -> int:
    """Seconds for a message: rounded up, never 0 ("约 0 秒后" reads like a bug)."""
    return max(1, math.ceil(value))


# --- failures ------------------------------------------------------------------------------------


def _invalid_argument(error: InvalidArgumentError) -> str:
    if error.argument == InvalidArgumentError.ASPECT_RATIO:
        return (
            f"不支持的宽高比“{error.value}”。可用的宽高比有：{'、'.join(error.allowed)}；"
            "不填则使用默认比例。"
        )
    if error.argument == InvalidArgumentError.IMAGE_SIZE:
        return (
            f"不支持的图片尺寸“{error.value}”。可用的尺寸有：{'、'.join(error.allowed)}"
            "（不区分大小写）；不填则使用模型的默认尺寸。"
        )
    if error.argument == InvalidArgumentError.MODEL_ID:
        return "模型 ID 格式不对：应形如 google/gemini-2.5-flash-image，不能包含空格或中文。"
    if error.argument == InvalidArgumentError.API_BASE:
        return (
            "API 地址格式不对：应形如 https://example.com/api 或 https://example.com/api/v1；"
            "填“默认”恢复 OpenRouter 官方地址。"
        )
    return f"参数“{error.value}”无法使用。"


_OPTION_NAMES = {
    InvalidArgumentError.IMAGE_SIZE: "图片尺寸",
    InvalidArgumentError.ASPECT_RATIO: "宽高比",
}


def _unsupported_option(error: UnsupportedImageOptionError) -> str:
    """A valid value the model cannot draw, with nothing near enough: one sentence."""
    name = _OPTION_NAMES.get(error.option, error.option)
    can = f"（它支持：{'、'.join(error.supported)}）" if error.supported else ""
    other = (
        f"，或请管理员换用支持 {error.value} 的模型 {'、'.join(error.models[:2])}"
        if error.models
        else ""
    )
    return f"当前图像模型 {error.model} 不支持{name} {error.value}{can}，请换一个{name}{other}。"


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


def _cooling_down_message(error: AllKeysCoolingDownError) -> str:
    """When to come back, and how many keys are cooling down (besides invalid ones)."""
    if error.cooling >= error.key_count:
        which = f"全部 {error.key_count} 个 API 密钥都" if error.key_count > 1 else "API 密钥正"
        which += "在限流冷却中"
    else:
        which = f"{max(1, error.cooling)} 个 API 密钥正在限流冷却中"
        if error.unusable:
            which += f"（另有 {error.unusable} 个密钥无效或额度用尽）"
    return (
        f"请求太频繁，{which}，请在 {clock_time(error.retry_at)}"
        f"（约 {whole_seconds(error.retry_after)} 秒后）再试。"
    )


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
            "这个指令需要一张图片，但我没有收到图片。"
            "请把图片和指令一起发送，或回复（引用）那张图片再发指令。"
        )
    if error.reason == ReferenceImageError.UNUSABLE:
        return "参考图都无法读取（下载失败、太大或不是有效图片），请重新发送图片后再试。"
    if error.reason == ReferenceImageError.TOO_MANY:
        if error.avatars:
            return (
                f"共有 {error.found} 张参考图（其中 {error.avatars} 个头像），"
                f"只使用了前 {error.limit} 张（图片在前，头像在后）。"
            )
        return f"收到 {error.found} 张图片，只使用了前 {error.limit} 张作为参考图。"
    if error.reason == ReferenceImageError.FORWARD:
        return "合并转发消息里的图片没能读取，已跳过。"
    if error.reason == ReferenceImageError.NO_AVATARS:
        if error.platform == QQ_PLATFORM:
            why = "头像参考图已被管理员关闭"
        else:
            why = "当前平台无法获取头像（只有 QQ 支持）"
        return (
            f"{why}，头像没有用作参考图；需要参考图时请直接发送图片，或回复（引用）带图片的消息。"
        )
    problem = _REFERENCE_PROBLEMS.get(error.reason, "无法读取")
    if error.own_avatar:
        return f"你的头像{problem}，已跳过。"
    if error.avatar_of:
        return f"@{error.avatar_of} 的头像{problem}，已跳过。"
    return f"第 {error.position} 张参考图{problem}，已跳过。"


def user_message(error: BaseException) -> str:
    """The Chinese sentence for a failure. Unknown exceptions get a generic text, never details."""
    if isinstance(error, NoApiKeyError):
        return "图片生成插件还没有配置可用的 OpenRouter API 密钥，请管理员在插件配置中填写。"
    if isinstance(error, MissingPromptError):
        return "请告诉我要画什么：图片描述不能为空。"
    if isinstance(error, InvalidArgumentError):
        return _invalid_argument(error)
    if isinstance(error, UnsupportedImageOptionError):
        return _unsupported_option(error)
    if isinstance(error, UnknownKeyError):
        return unknown_key(error)
    if isinstance(error, ConfigSaveError):
        return "设置已立即生效，但保存到配置文件失败，插件重载后会恢复原设置，请查看日志。"
    if isinstance(error, GroupNotAllowed):
        return "本群未开启画图功能，如需使用请联系机器人管理员。"
    if isinstance(error, RateLimitHit):
        wait = whole_seconds(error.retry_after)
        if error.scope == "group":
            return f"本群画图太频繁了（每分钟最多 {error.limit} 次），请约 {wait} 秒后再试。"
        return f"你画图太频繁了（每人每分钟最多 {error.limit} 次），请约 {wait} 秒后再试。"
    if isinstance(error, DailyCapReached):
        return cap_message(error)
    if isinstance(error, ReferenceImageError):
        return _reference_message(error)
    if isinstance(error, InvalidKeyError):
        return "OpenRouter API 密钥无效或已被撤销，请管理员检查插件配置中的密钥。"
    if isinstance(error, OutOfCreditsError):
        if error.retry_at is not None and error.retry_after is not None:
            return (
                "OpenRouter 账户额度已用完，请管理员充值或更换密钥；充值后可在 "
                f"{clock_time(error.retry_at)}（约 {whole_seconds(error.retry_after)} 秒后）再试。"
            )
        return "OpenRouter 账户额度已用完，请管理员充值或更换密钥。"
    if isinstance(error, AllKeysCoolingDownError):
        return _cooling_down_message(error)
    if isinstance(error, RateLimitedError):
        if error.retry_after:
            return f"请求太频繁，已被限流，请约 {whole_seconds(error.retry_after)} 秒后再试。"
        return "请求太频繁，已被限流，请稍后再试（免费额度每分钟约 20 次、每天 50 次）。"
    if isinstance(error, DeadlineExceededError):
        asked = getattr(error.last_error, "retry_after", None)
        if error.last_error and asked and error.next_wait >= asked:
            return (
                f"{_cause(error.last_error)}，服务要求约 {whole_seconds(asked)} 秒后再试，"
                f"超出了本次 {whole_seconds(error.budget)} 秒的时间上限，请稍后再试。"
            )
        cause = f"，最后一次失败原因：{_cause(error.last_error)}" if error.last_error else ""
        return (
            f"图片生成超时：{whole_seconds(error.budget)} 秒内没有拿到结果{cause}。"
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
        return "图片已经生成，但发送到聊天失败，请稍后再试或联系管理员查看日志。"
    if isinstance(error, UpstreamError):
        return "图像服务返回了错误，请稍后再试。"
    return "图片生成失败，发生了意外错误，请稍后再试。"


# --- a request's progress and outcome -------------------------------------------------------------


_ACTIONS = {"draw": "生成图片", "edit": "修改图片", "figure": "制作手办照片"}


def progress(action: str) -> str:
    return f"🎨 收到，正在{_ACTIONS.get(action, _ACTIONS['draw'])}，请稍候…"


def delivery_fallback_note() -> str:
    """Told to the model when the NapCat push failed and the image went out directly instead.
    The receiver's address stays in the log: the model may repeat this in a group chat."""
    return "（NapCat 文件接收端暂时无法使用，图片已改为直接发送；管理员可在日志中查看原因。）"


def outcome_remarks(outcome: DrawOutcome) -> list[str]:
    """What the user should hear besides the images: skipped references, dropped images, a size
    or ratio the model could not do, originals that were asked for as files."""
    remarks = [user_message(problem) for problem in outcome.references.problems]
    if outcome.result is not None and outcome.result.discarded:
        remarks.append(f"另有 {outcome.result.discarded} 张返回的图片数据损坏，已丢弃。")
    options = options_note(outcome.options)
    if options:
        remarks.append(options)
    if outcome.note:
        remarks.append(outcome.note)
    if outcome.originals_sent is False:
        remarks.append("原图没能作为文件发送（当前平台不支持发送文件或发送失败）。")
    return remarks


def tool_summary(outcome: DrawOutcome) -> str:
    """The text handed back to the chat model, which relays what matters to the user."""
    if outcome.result is None:
        return outcome.message
    if outcome.undelivered:
        return (
            f"{outcome.message}图片已经生成并计费，请不要再次调用画图工具重画，"
            "告诉用户稍后再试或联系管理员。"
        )
    parts = [f"已生成 {len(outcome.result.images)} 张图片并发送给用户。"]
    references = outcome.references
    if references.images:
        avatars = f"（其中 {references.avatars} 个头像）" if references.avatars else ""
        parts.append(f"参考了 {len(references.images)} 张图片{avatars}。")
    if outcome.no_reference_found:
        parts.append("用户的消息和引用消息里没有找到图片，已只按文字描述生成。")
    parts.extend(outcome_remarks(outcome))
    parts.extend(reencoded_notes(outcome.outgoing, outcome.originals_sent))
    if outcome.result.text:
        parts.append(f"模型附言：{outcome.result.text[:_MAX_MODEL_TEXT]}")
    return "".join(parts)


def still_working() -> str:
    """Handed to the model when the picture is not ready before AstrBot's tool timeout."""
    return (
        "图片还在生成中，完成后会自动发送到这个聊天，不需要再次调用画图工具。请告诉用户稍等片刻。"
    )


def command_reply(outcome: DrawOutcome, asked_options: bool = False) -> list[str]:
    """The lines a command answers with besides the images (none on plain success); with
    `asked_options` (the command named a size or ratio) first what was drawn."""
    if outcome.result is None or outcome.undelivered:
        return [outcome.message]
    used = [options_used(outcome.options)] if asked_options and outcome.options else []
    return used + outcome_remarks(outcome)


def detached_report(outcome: DrawOutcome) -> list[str]:
    """What a request that outlived its tool call tells the chat itself when it ends."""
    return command_reply(outcome)


# --- image sizes, ratios and the image models ------------------------------------------------------


def options_note(options: ResolvedImageOptions | None) -> str:
    """What changed to fit the model's sizes and ratios ('' when nothing did)."""
    if options is None or not options.adjustments:
        return ""
    parts = []
    for change in options.adjustments:
        if change.option == InvalidArgumentError.IMAGE_SIZE and not change.sent:
            fixed = options.capabilities.fixed_size
            parts.append(f"不能选择尺寸（固定约 {fixed}），没有按 {change.asked} 生成")
        else:
            name = _OPTION_NAMES.get(change.option, change.option)
            parts.append(f"不支持{name} {change.asked}，已改用最接近的 {change.sent}")
    return f"注意：当前图像模型 {options.model} " + "；".join(parts) + "。"


def options_used(options: ResolvedImageOptions) -> str:
    """The size and ratio a picture was drawn with (after fitting them to the model)."""
    caps = options.capabilities
    if options.image_size:
        size = options.image_size
    elif caps.sizes is not None and not caps.sizes:
        size = f"约 {caps.fixed_size}（模型固定）"
    else:
        size = "模型默认"
    ratio = options.aspect_ratio or "由模型决定"
    return f"本次按 尺寸 {size}、宽高比 {ratio} 生成（{options.model}）。"


# What each known model is good at, by family (capabilities.family_of).
_MODEL_BLURBS = {
    "google/gemini-2.5-flash-image": "快、便宜，适合日常画图和改图",
    "google/gemini-3-pro-image": "质量最好、图里的文字最准，适合海报和精细作品；最贵也最慢",
    "google/gemini-3.1-flash-image": "接近 Pro 的质量，更快更便宜，要 4K 时性价比最高",
}
_STRIPS = ("1:4", "4:1", "1:8", "8:1")


def _per_million(value: float) -> str:
    return f"${value * 1_000_000:.3g}/百万 token"


def price_text(price: ModelPrice | None) -> str:
    """What the model list says a model costs ('' when it says nothing)."""
    if price is None or not price.known:
        return ""
    parts = []
    if price.prompt is not None:
        parts.append(f"输入 {_per_million(price.prompt)}")
    if price.completion is not None:
        parts.append(f"输出 {_per_million(price.completion)}")
    if price.image_output is not None:
        parts.append(f"图片输出 {_per_million(price.image_output)}")
    if price.request:
        parts.append(f"每次请求 ${price.request:.3g}")
    return "，".join(parts)


def _model_abilities(summary: ModelSummary) -> str:
    caps = summary.capabilities
    if caps.sizes is None:
        sizes = "尺寸未知"
    elif not caps.sizes:
        sizes = f"尺寸固定约 {caps.fixed_size}"
    else:
        sizes = "尺寸 " + "/".join(caps.sizes)
    if caps.ratios is None:
        ratios = "宽高比未知"
    else:
        ratios = f"{len(caps.ratios)} 种宽高比"
        strips = [r for r in _STRIPS if r in caps.ratios]
        if strips:
            ratios += "（含 " + "、".join(strips) + "）"
    edits = {True: "可改图", False: "只能文生图", None: ""}[summary.edits]
    return "，".join(p for p in (sizes, ratios, edits) if p)


def image_model_list(
    summaries: list[ModelSummary], current: str, from_list: bool, limit: int = 20
) -> str:
    """/画图模型 without an argument: the image models, what they can do, and their price."""
    lines = [
        f"当前图像模型：{current}",
        "可用的图像模型：" if from_list else "已知的图像模型（未能获取模型列表）：",
    ]
    for summary in summaries[:limit]:
        mark = "👉 " if summary.id == current else "· "
        lines.append(mark + summary.id + (f"（{summary.name}）" if summary.name else ""))
        details = [_model_abilities(summary), _MODEL_BLURBS.get(summary.family, "")]
        price = price_text(summary.price)
        details.append(f"价格：{price}" if price else "")
        lines.append("   " + "；".join(d for d in details if d))
    if len(summaries) > limit:
        lines.append(f"……另有 {len(summaries) - limit} 个图像模型未列出。")
    lines.append(
        f"切换：/{CMD_MODEL} <模型ID>。在对话中说“画一张 4K 的……”即可要求 4K（需模型支持）。"
    )
    return "\n".join(lines)


# --- big pictures ----------------------------------------------------------------------------------


def _mb(size: int) -> str:
    return f"{size / 1048576:.1f} MB"  # MiB, like the config's MB limits


def reencoded_notes(outgoing: tuple[Outgoing, ...], originals_sent: bool | None) -> list[str]:
    """For the chat model: pictures that went out re-encoded (too big to send as they were)."""
    notes = []
    for item in outgoing:
        sent = item.reencoded
        if sent is None:
            continue
        notes.append(
            f"原图 {_mb(item.original.size)} 太大，已转成 {sent.width}×{sent.height} 的"
            f"高质量 JPEG（{_mb(sent.size)}）发送。"
        )
        if item.over_limit:
            notes.append("压缩到最小仍超过发送上限，可能发送失败。")
    if notes and originals_sent:
        notes.append("原图也已作为文件发送。")
    return notes


# --- admin commands ---------------------------------------------------------------------------


def describe_settings(settings: Settings) -> str:
    """A Chinese summary for admins. Keys appear only masked."""
    keys = "、".join(mask_key(k) for k in settings.api_keys) or "未配置"
    official = "（官方）" if settings.api_base == DEFAULT_API_BASE else ""
    api_base_line = f"API 地址{official}：{settings.api_base}"
    limits = settings.limits

    def per_minute(value: int) -> str:
        return f"每分钟 {value} 次" if value else "不限"

    # A link runs until the next space in most chat clients: every address ends its line.
    lines = [
        "当前画图插件设置：",
        f"模型：{settings.model}",
        api_base_line,
        f"API 密钥（{len(settings.api_keys)} 个）：{keys}",
        f"每个密钥最大尝试次数：{settings.max_retry_attempts}",
        f"中文描述翻译：{'开启' if settings.translate_prompt else '关闭'}"
        f"（超时 {settings.translate_timeout:g} 秒）",
    ]
    if settings.translate_proxy:
        lines.append(f"翻译代理：{mask_proxy(settings.translate_proxy)}")
    lines += [
        f"进度提示：{'开启' if settings.progress_message else '关闭'}",
        "头像参考图（QQ）："
        + (settings.avatar_url_template or "已关闭（avatar_url_template 为空）"),
        f"每人频率限制：{per_minute(limits.user_per_minute)}",
        f"每群频率限制：{per_minute(limits.group_per_minute)}",
        f"群白名单：{'、'.join(sorted(limits.group_allowlist)) or '未设置（所有群可用）'}",
        f"群黑名单：{'、'.join(sorted(limits.group_denylist)) or '未设置'}",
        caps_line(settings.spend),
        f"花费记录保留：{settings.spend.ledger_retention_days} 天",
        f"NapCat 主机：{settings.nap_server_address or 'localhost'}:{settings.nap_server_port}",
        f"默认尺寸：{settings.image_size or '由模型决定'}，默认宽高比：{settings.aspect_ratio or '由模型决定'}",
        f"发送图片上限：{_mb(settings.send_image_max_bytes)}（超过时压缩成 JPEG 发送"
        + ("，并把原图作为文件发送" if settings.send_original_file else "")
        + "）",
    ]
    return "\n".join(lines)


_STATE_TEXT = {
    KeyState.OK: "正常",
    KeyState.UNTESTED: "尚未使用",
    KeyState.COOLING_DOWN: "限流冷却中，{until} 恢复",
    KeyState.OUT_OF_CREDITS: "额度用尽，{until} 再试",
    KeyState.INVALID: "无效（401），修改配置后才会再用",
}


_LAST_FAILURE = {
    "failure": "网络或服务故障，与密钥无关",
    "rate limited": "被限流，冷却已结束",
    "out of credits": "额度用尽，已到重试时间",
}


def format_pool_status(rows: list[KeyStatus], model: str = "") -> str:
    """The admin command's answer: one line per key, masked, in Chinese."""
    if not rows:
        return "OpenRouter 密钥池为空：插件配置中还没有可用的 API 密钥。"
    lines = [
        f"OpenRouter 密钥池（{len(rows)} 个密钥" + (f"，模型 {model}" if model else "") + "）："
    ]
    for i, row in enumerate(rows, 1):
        until = clock_time(row.until) if row.until is not None else ""
        state = _STATE_TEXT[row.state].format(until=until)
        if row.state is KeyState.UNTESTED and row.last_error == RESET_BY_ADMIN:
            state = "已重置，下一次请求会先试用"
        elif row.state is KeyState.UNTESTED and row.failures:
            # Tried, never answered yet, nothing against the key itself (or its wait is over).
            last = _LAST_FAILURE.get(row.last_error, "请求失败")
            state = f"可用，尚无成功请求（最近一次失败：{last}）"
        busy = f"，进行中 {row.in_flight}" if row.in_flight else ""
        lines.append(
            f"{i}. {row.masked} | {state} | 成功 {row.successes} / 失败 {row.failures}{busy}"
        )
    lines.append("（成功/失败为本次启动或修改密钥配置以来的请求次数）")
    return "\n".join(lines)


def usage_keys() -> str:
    return (
        f"用法：/{CMD_KEYS} 查看密钥池；/{CMD_KEYS} 重置 清除全部密钥的冷却、额度用尽和无效状态；"
        f"/{CMD_KEYS} 重置 <密钥末尾几位> 只清除一个（如 /{CMD_KEYS} 重置 abcd）。"
    )


def keys_reset(masked: list[str]) -> str:
    if not masked:
        return "没有配置密钥，没有可以重置的状态。"
    return (
        f"已清除 {len(masked)} 个密钥的冷却、额度用尽和无效状态（{'、'.join(masked)}），"
        "下一次请求会先试用它们。"
    )


def unknown_key(error: UnknownKeyError) -> str:
    known = "、".join(error.known) or "无"
    if error.matches:
        return f"有 {len(error.matches)} 个密钥以“{error.tail}”结尾，请多写几位。当前密钥：{known}"
    return f"没有以“{error.tail}”结尾的密钥（至少写 4 位）。当前密钥：{known}"


def admin_only(command: str, sender_id: str) -> str:
    """A non-admin's admin command: one sentence, with the ID an admin would add."""
    return f"{command} 是管理员指令，只有机器人管理员可以使用（你的 ID：{sender_id}）。"


def current_api_base(api_base: str) -> str:
    return f"当前 API 地址：{api_base}\n用法：/{CMD_API_BASE} <地址>，填“默认”恢复官方地址"


def model_switched(model: str) -> str:
    return f"已将图像模型切换为 {model}"


def api_base_switched(api_base: str, official: bool) -> str:
    # The address ends the line: a chat client's link would swallow text written after it.
    return f"已将 API 地址切换为{' OpenRouter 官方地址' if official else ''}：{api_base}"


def setting_saved(done: str) -> str:
    return f"{done}\n已保存到插件配置（网页面板中同步可见）。"


def setting_not_saved(done: str, error: ConfigSaveError) -> str:
    return f"{done}\n{user_message(error)}"


# --- help -------------------------------------------------------------------------------------


def usage_draw() -> str:
    return f"用法：/{CMD_DRAW} <图片描述>，例如 /{CMD_DRAW} 一只在月球上看书的猫"


def usage_edit() -> str:
    return f"用法：/{CMD_EDIT} <修改要求>，并附上图片或回复一条带图片的消息。"


def help_text(settings: Settings, prefix: str = "/") -> str:
    """`prefix` is the bot's wake prefix, so the commands shown are the ones that work."""
    p = prefix
    lines = [
        "🎨 Gemini 画图指令",
        f"{p}{CMD_DRAW} <描述> —— 根据文字生成图片",
        f"{p}{CMD_EDIT} <描述> —— 按描述修改图片（指令里附上图片，或回复一条带图片的消息）",
        f"{p}{CMD_FIGURE} [补充描述] —— 把图片里的角色做成手办照片（同样需要附图或回复带图消息）",
        f"QQ 上还可以用头像作参考图：在指令里 @某人 用他的头像，或在描述前写“我的头像”用你自己的"
        f"（如 {p}{CMD_FIGURE} @某人、{p}{CMD_FIGURE} 我）。合并转发消息里的图片也会被用作参考图。",
        f"尺寸和宽高比：在指令里写 1K、2K 或 4K（不区分大小写），和/或宽高比（{'、'.join(ASPECT_RATIOS)}），"
        f"如 {p}{CMD_DRAW} 4K 16:9 海边日落；模型画不了的会换成最接近的并告诉你。",
        f"{p}{CMD_HELP} —— 显示本帮助",
        "管理员指令：",
        f"{p}{CMD_MODEL} [模型ID] —— 切换图像模型并保存；不带参数时列出图像模型、能力和价格",
        f"{p}{CMD_API_BASE} <地址|默认> —— 切换 API 地址并保存",
        f"{p}{CMD_SETTINGS} —— 查看当前设置（密钥已打码）",
        f"{p}{CMD_KEYS} [重置 [密钥末尾几位]] —— 查看密钥池状态（是否正常、冷却到何时、成功与失败次数）；"
        "重置清除冷却、额度用尽和无效状态",
        f"{p}{CMD_STATS} —— 查看今天和近 7 天的图片数与花费（按群、用户、模型）及密钥剩余额度",
    ]
    if not p:
        lines.insert(1, "（在群聊中请先 @机器人 再发送指令）")
    if settings.translate_prompt:
        lines.append(
            "提示：中文描述会自动翻译成英文再发给模型；用引号括起来的文字"
            "（如“生日快乐”）保持原样，会按原文画进图里。"
        )
    limits = settings.limits
    if limits.user_per_minute or limits.group_per_minute:
        parts = []
        if limits.user_per_minute:
            parts.append(f"每人每分钟 {limits.user_per_minute} 次")
        if limits.group_per_minute:
            parts.append(f"每群每分钟 {limits.group_per_minute} 次")
        lines.append("使用频率限制：" + "，".join(parts) + "。")
    if settings.spend.any_cap:
        lines.append(caps_line(settings.spend) + "。")
    return "\n".join(lines)


# --- spend: daily caps ---------------------------------------------------------------------------

_CAP_SUBJECT = {
    DailyCapReached.USER_COUNT: "你今天的画图数量",
    DailyCapReached.GROUP_COUNT: "本群今天的画图数量",
    DailyCapReached.USER_BUDGET: "你今天的画图花费",
    DailyCapReached.GROUP_BUDGET: "本群今天的画图花费",
    DailyCapReached.BOT_BUDGET: "机器人今天的画图总花费",
}
_CAP_RULE = {
    DailyCapReached.USER_COUNT: "每人每天最多 {limit} 张",
    DailyCapReached.GROUP_COUNT: "每群每天最多 {limit} 张",
    DailyCapReached.USER_BUDGET: "每人每天 {limit}",
    DailyCapReached.GROUP_BUDGET: "每群每天 {limit}",
    DailyCapReached.BOT_BUDGET: "每天共 {limit}",
}
_COUNT_CAPS = (DailyCapReached.USER_COUNT, DailyCapReached.GROUP_COUNT)
# The dashboard page's error line when an endpoint fails (its own labels live in the page).
DASHBOARD_LEDGER_UNAVAILABLE = "花费记录暂时无法读取（插件可能正在重载），请稍后刷新。"
DASHBOARD_FAILED = "读取统计时出错，请查看 AstrBot 日志。"
STATS_UNAVAILABLE = (
    "花费记录暂时无法读取（插件可能正在重载或数据目录不可写），请查看 AstrBot 日志。"
)


def usd(amount: float) -> str:
    """Dollars with enough digits for a single picture's cost (a few cents)."""
    if amount >= 100:
        return f"${amount:,.2f}"
    if amount >= 1 or amount == 0:
        return f"${amount:.2f}"
    digits = f"{amount:.4f}".rstrip("0")
    return "$" + (digits if len(digits.split(".")[1]) >= 2 else f"{amount:.2f}")


def _day_clock(epoch: float) -> str:
    """A moment with its day, local: MM-DD HH:MM."""
    return time.strftime("%m-%d %H:%M", time.localtime(epoch))


def cap_message(error: DailyCapReached) -> str:
    """The refusal: which cap, its limit, and when it resets (the next local midnight)."""
    limit = f"{error.limit:g}" if error.cap in _COUNT_CAPS else usd(error.limit)
    subject = _CAP_SUBJECT.get(error.cap, "今天的画图用量")
    rule = _CAP_RULE.get(error.cap, "上限 {limit}").format(limit=limit)
    return f"{subject}已达上限（{rule}），将在 {_day_clock(error.resets_at)} 重置，请明天再来。"


# --- /画图统计 and the dashboard page --------------------------------------------------------------


def spend_text(totals: Totals) -> str:
    """The spend of a total; '未知' where nothing was reported, a note where some was missing."""
    if totals.generations and totals.unknown == totals.generations:
        return "花费未知"
    text = usd(totals.cost)
    if totals.unknown:
        text += f"（另有 {totals.unknown} 次未报告花费）"
    return text


def _amount_line(totals: Totals) -> str:
    return f"{totals.pictures} 张，{spend_text(totals)}"


def _group_name(row: GroupTotals, show_platform: bool) -> str:
    name = f"群 {row.group_id}" if row.group_id else "私聊"
    return f"{name}（{row.platform}）" if show_platform else name


def _user_name(row: UserTotals, show_platform: bool) -> str:
    return f"{row.user_id}（{row.platform}）" if show_platform else row.user_id


def _summary_lines(title: str, summary: Summary) -> list[str]:
    totals = summary.totals
    lines = [
        f"【{title}】{totals.pictures} 张图（{totals.generations} 次生成），{spend_text(totals)}"
    ]
    if not totals.generations:
        return lines
    platforms = {r.platform for r in summary.groups} | {r.platform for r in summary.users}
    several = len(platforms) > 1
    lines.append("按群：")
    lines += [f"  · {_group_name(r, several)}：{_amount_line(r.totals)}" for r in summary.groups]
    lines.append("用户排行：")
    lines += [
        f"  {i}. {_user_name(r, several)}：{_amount_line(r.totals)}"
        for i, r in enumerate(summary.users, 1)
    ]
    lines.append("按模型：")
    lines += [f"  · {r.model}：{_amount_line(r.totals)}" for r in summary.models]
    return lines


def key_line(report: KeyReport) -> str:
    info = report.info
    if info is None:
        return f"  · {report.masked}：额度未知（服务未提供或查询失败）"
    name = report.masked + (f"（{info.shown_label}）" if info.shown_label else "")
    if info.limit is None:
        quota = "未设额度上限"
    elif info.limit_remaining is None:
        quota = f"额度 {usd(info.limit)}，剩余未知"
    else:
        quota = f"剩余 {usd(info.limit_remaining)} / 额度 {usd(info.limit)}"
    used = []
    if info.usage_daily is not None:
        used.append(f"今日已用 {usd(info.usage_daily)}")
    if info.usage is not None:
        used.append(f"累计已用 {usd(info.usage)}")
    if info.is_free_tier:
        used.append("免费账户")
    return f"  · {name}：{quota}" + ("，" + "，".join(used) if used else "")


def caps_line(policy: SpendPolicy) -> str:
    caps = []
    if policy.user_daily_limit:
        caps.append(f"每人每天 {policy.user_daily_limit} 张")
    if policy.group_daily_limit:
        caps.append(f"每群每天 {policy.group_daily_limit} 张")
    if policy.user_daily_budget_usd:
        caps.append(f"每人每天 {usd(policy.user_daily_budget_usd)}")
    if policy.group_daily_budget_usd:
        caps.append(f"每群每天 {usd(policy.group_daily_budget_usd)}")
    if policy.daily_budget_usd:
        caps.append(f"全部每天 {usd(policy.daily_budget_usd)}")
    if not caps:
        return "每日上限：未设置"
    who = "（管理员同样受限）" if policy.caps_apply_to_admins else "（管理员不受限）"
    return "每日上限：" + "，".join(caps) + who


def format_report(
    report: SpendReport, keys: Sequence[KeyReport] | None, policy: SpendPolicy
) -> str:
    """The `/画图统计` answer: today, the last days, each key's remaining limit, the caps."""
    lines = [f"📊 画图统计（{_day_clock(report.at)}）"]
    lines += _summary_lines("今天", report.today)
    lines.append("")
    lines += _summary_lines(f"近 {len(report.days)} 天", report.week)
    if report.week.totals.generations:
        lines.append("每天：")
        lines += [
            f"  {d.day[5:]}：{d.totals.pictures} 张，{spend_text(d.totals)}" for d in report.days
        ]
    lines.append("")
    if keys is None:
        lines.append("密钥额度：未查询")
    elif not keys:
        lines.append("密钥额度：没有配置密钥")
    else:
        lines.append("密钥额度：")
        lines += [key_line(k) for k in keys]
    lines.append(caps_line(policy))
    return "\n".join(lines)
