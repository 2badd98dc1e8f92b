"""Every failure (utils/core/errors.py) as one short sentence for the chat.

Exceptions carry data; `user_message()` words them. Unknown exceptions get a generic sentence,
never details.
"""

from __future__ import annotations

from ...core.coerce import clip_text
from ...core.errors import (
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
    LedgerUnavailableError,
    MissingPromptError,
    ModalitiesUnsupportedError,
    ModelUnavailableError,
    ModerationError,
    NoAnswerError,
    NoApiKeyError,
    NoImageError,
    OutOfCreditsError,
    PicGenError,
    PluginClosedError,
    RateLimitedError,
    RateLimitHit,
    ReferenceImageError,
    ReferencesNotAcceptedError,
    RefusalError,
    UnknownKeyError,
    UnreachableError,
    UnsupportedImageOptionError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from ..delivery import QQ_PLATFORM
from .language import Lang, Words, listing, say
from .spend import cap_message
from .units import capitalized, clock_time, count, whole_seconds

MAX_MODEL_TEXT = 200

OPTION_NAMES = {
    InvalidArgumentError.IMAGE_SIZE: Words("图片尺寸", "image size"),
    InvalidArgumentError.ASPECT_RATIO: Words("宽高比", "aspect ratio"),
}


def option_name(lang: Lang, option: str) -> str:
    words = OPTION_NAMES.get(option)
    return words(lang) if words else option


def _invalid_argument(lang: Lang, error: InvalidArgumentError) -> str:
    value = error.value
    if error.argument == InvalidArgumentError.ASPECT_RATIO:
        allowed = listing(lang, error.allowed)
        return say(
            lang,
            zh=f"不支持的宽高比“{value}”。可用的宽高比有：{allowed}；不填则使用默认比例。",
            en=f'Aspect ratio "{value}" is not supported. Available: {allowed}; '
            "leave it out for the default.",
        )
    if error.argument == InvalidArgumentError.IMAGE_SIZE:
        allowed = listing(lang, error.allowed)
        return say(
            lang,
            zh=f"不支持的图片尺寸“{value}”。可用的尺寸有：{allowed}"
            "（不区分大小写）；不填则使用模型的默认尺寸。",
            en=f'Image size "{value}" is not supported. Available: {allowed} (any case); '
            "leave it out for the model's default.",
        )
    if error.argument == InvalidArgumentError.MODEL_ID:
        return say(
            lang,
            zh="模型 ID 格式不对：应形如 google/gemini-2.5-flash-image，不能包含空格或中文。",
            en="That model ID doesn't look right: it should look like "
            "google/gemini-2.5-flash-image, with no spaces or Chinese characters.",
        )
    if error.argument == InvalidArgumentError.API_BASE:
        return say(
            lang,
            zh="API 地址格式不对：应形如 https://example.com/api 或 https://example.com/api/v1；"
            "填“默认”恢复 OpenRouter 官方地址。",
            en="That API address doesn't look right: it should look like "
            "https://example.com/api or https://example.com/api/v1; "
            'use "default" to go back to OpenRouter.',
        )
    return say(lang, zh=f"参数“{value}”无法使用。", en=f'The value "{value}" cannot be used.')


def _unsupported_option(lang: Lang, error: UnsupportedImageOptionError) -> str:
    """A valid value the model cannot draw, with nothing near enough: one sentence."""
    name = option_name(lang, error.option)
    supported = listing(lang, error.supported)
    models = listing(lang, error.models[:2])
    model, value = error.model, error.value
    can = say(lang, zh=f"（它支持：{supported}）", en=f" (it supports: {supported})")
    other = say(
        lang,
        zh=f"，或请管理员换用支持 {value} 的模型 {models}",
        en=f", or ask an admin to switch to a model that supports {value}: {models}",
    )
    can = can if error.supported else ""
    other = other if error.models else ""
    return say(
        lang,
        zh=f"当前图像模型 {model} 不支持{name} {value}{can}，请换一个{name}{other}。",
        en=f"The current image model {model} can't do {name} {value}{can}; please pick "
        f"another {name}{other}.",
    )


def _cause(lang: Lang, error: PicGenError) -> str:
    """A few words on why the last try failed, for the timeout message."""
    status = getattr(error, "status", None)
    code = ""
    if isinstance(status, int) and status != 200:
        code = say(lang, zh=f"（HTTP {status}）", en=f" (HTTP {status})")
    if isinstance(error, NoAnswerError):
        return say(lang, zh="图像服务没有应答", en="the image service did not answer")
    if isinstance(error, UpstreamTimeoutError):
        return say(lang, zh="图像服务响应超时", en="the image service timed out") + code
    if isinstance(error, UnreachableError):
        return say(lang, zh="连不上图像服务", en="the image service could not be reached")
    if isinstance(error, ConnectionLostError):
        return say(lang, zh="与图像服务的连接中断", en="the connection to the image service broke")
    if isinstance(error, (RateLimitedError, AllKeysCoolingDownError)):
        return say(lang, zh="请求被限流", en="the requests were rate-limited")
    if isinstance(error, UpstreamUnavailableError):
        return say(lang, zh="图像服务暂时不可用", en="the image service was unavailable") + code
    if isinstance(error, UpstreamError):
        return say(lang, zh="图像服务返回错误", en="the image service returned an error") + code
    return say(lang, zh="请求失败", en="the request failed")


def _cooling_down_message(lang: Lang, error: AllKeysCoolingDownError) -> str:
    """When to come back, and how many keys are cooling down (besides invalid ones)."""
    at, wait = clock_time(error.retry_at), whole_seconds(error.retry_after or 0.0)
    keys, cooling, unusable = error.key_count, max(1, error.cooling), error.unusable
    if error.cooling >= keys and keys > 1:
        which = say(
            lang,
            zh=f"全部 {keys} 个 API 密钥都在限流冷却中",
            en=f"all {keys} API keys are cooling down after rate limits",
        )
    elif error.cooling >= keys:
        which = say(
            lang, zh="API 密钥正在限流冷却中", en="the API key is cooling down after a rate limit"
        )
    else:
        which = say(
            lang,
            zh=f"{cooling} 个 API 密钥正在限流冷却中",
            en=f"{count(cooling, 'API key')} {'is' if cooling == 1 else 'are'} cooling down "
            "after rate limits",
        )
        if unusable:
            which += say(
                lang,
                zh=f"（另有 {unusable} 个密钥无效或额度用尽）",
                en=f" ({unusable} more {'is' if unusable == 1 else 'are'} invalid or out of "
                "credits)",
            )
    return say(
        lang,
        zh=f"请求太频繁，{which}，请在 {at}（约 {wait} 秒后）再试。",
        en=f"Too many requests: {which}. Please try again at {at} (in about {wait} s).",
    )


_REFERENCE_PROBLEMS = {
    ReferenceImageError.TIMEOUT: Words("下载超时", "timed out"),
    ReferenceImageError.TOO_LARGE: Words("文件太大", "was too large"),
    ReferenceImageError.DOWNLOAD: Words("下载失败", "could not be downloaded"),
    ReferenceImageError.INVALID: Words("不是有效的图片", "is not a valid picture"),
    ReferenceImageError.SOURCE: Words("来源无法识别", "came from an unknown source"),
}
_UNREADABLE = Words("无法读取", "could not be read")


def _reference_message(lang: Lang, error: ReferenceImageError) -> str:
    if error.reason == ReferenceImageError.MISSING:
        return say(
            lang,
            zh="这个指令需要一张图片，但我没有收到图片，这个对话里也没有我刚画过（仍在保留时间内）的图。"
            "请把图片和指令一起发送，或回复（引用）那张图片再发指令。",
            en="This command needs a picture, but I didn't get one. Nor is there a picture I "
            "made in this conversation recently (within the retention time). Send the picture "
            "with the command, or reply to (quote) the picture with the command.",
        )
    if error.reason == ReferenceImageError.UNUSABLE:
        return say(
            lang,
            zh="参考图都无法读取（下载失败、太大或不是有效图片），请重新发送图片后再试。",
            en="None of the reference pictures could be read (download failed, too large or "
            "not a picture); please send the picture again.",
        )
    if error.reason == ReferenceImageError.TOO_MANY:
        found, limit, avatars = error.found, error.limit, error.avatars
        if avatars:
            return say(
                lang,
                zh=f"共有 {found} 张参考图（其中 {avatars} 个头像），"
                f"只使用了前 {limit} 张（图片在前，头像在后）。",
                en=f"There are {found} reference pictures ({avatars} of them avatars); only "
                f"the first {limit} were used (pictures first, then avatars).",
            )
        return say(
            lang,
            zh=f"收到 {found} 张图片，只使用了前 {limit} 张作为参考图。",
            en=f"Got {found} pictures; only the first {limit} were used as references.",
        )
    if error.reason == ReferenceImageError.FORWARD:
        return say(
            lang,
            zh="合并转发消息里的图片没能读取，已跳过。",
            en="The pictures in the forwarded messages could not be read and were skipped.",
        )
    if error.reason == ReferenceImageError.NO_AVATARS:
        if error.platform == QQ_PLATFORM:
            why = Words("头像参考图已被管理员关闭", "an admin has switched avatar references off")
        else:
            why = Words(
                "当前平台无法获取头像（只有 QQ 支持）",
                "this platform gives no avatars (only QQ does)",
            )
        return say(
            lang,
            zh=f"{why.zh}，头像没有用作参考图；需要参考图时请直接发送图片，或回复（引用）带图片的消息。",
            en=f"No avatar was used as a reference: {why.en}. To use a reference, send the "
            "picture itself or reply to a message that has one.",
        )
    problem = _REFERENCE_PROBLEMS.get(error.reason, _UNREADABLE)
    if error.own_avatar:
        return say(
            lang, zh=f"你的头像{problem.zh}，已跳过。", en=f"Your avatar {problem.en}; skipped."
        )
    if error.avatar_of:
        name = error.avatar_of
        return say(
            lang,
            zh=f"@{name} 的头像{problem.zh}，已跳过。",
            en=f"@{name}'s avatar {problem.en}; skipped.",
        )
    position = error.position
    return say(
        lang,
        zh=f"第 {position} 张参考图{problem.zh}，已跳过。",
        en=f"Reference picture {position} {problem.en}; skipped.",
    )


def _deadline_message(lang: Lang, error: DeadlineExceededError) -> str:
    budget = whole_seconds(error.budget)
    last = error.last_error
    asked = getattr(last, "retry_after", None)
    if last and asked and error.next_wait >= asked:
        cause, wait = _cause(lang, last), whole_seconds(asked)
        return say(
            lang,
            zh=f"{cause}，服务要求约 {wait} 秒后再试，超出了本次 {budget} 秒的时间上限，请稍后再试。",
            en=f"{capitalized(cause)}, and the service asked to wait about {wait} s, more than "
            f"this request's {budget} s limit allows; please try again later.",
        )
    cause = _cause(lang, last) if last else ""
    return say(
        lang,
        zh=f"图片生成超时：{budget} 秒内没有拿到结果"
        + (f"，最后一次失败原因：{cause}" if cause else "")
        + "。剩余时间不够再试一次，请稍后再试。",
        en=f"Making the picture timed out: no result within {budget} s"
        + (f" (last failure: {cause})" if cause else "")
        + ". There is not enough time left for another try; please try again later.",
    )


def _rate_limit_hit(lang: Lang, error: RateLimitHit) -> str:
    wait, limit = whole_seconds(error.retry_after), error.limit
    if error.scope == "group":
        return say(
            lang,
            zh=f"本群画图太频繁了（每分钟最多 {limit} 次），请约 {wait} 秒后再试。",
            en=f"This group is drawing too often (at most {limit} per minute); please try "
            f"again in about {wait} s.",
        )
    return say(
        lang,
        zh=f"你画图太频繁了（每人每分钟最多 {limit} 次），请约 {wait} 秒后再试。",
        en=f"You're drawing too often (at most {limit} per person per minute); please try "
        f"again in about {wait} s.",
    )


def _rate_limited(lang: Lang, error: RateLimitedError) -> str:
    if error.retry_after:
        wait = whole_seconds(error.retry_after)
        return say(
            lang,
            zh=f"请求太频繁，已被限流，请约 {wait} 秒后再试。",
            en=f"Too many requests: the image service is rate-limiting us. Please try again in "
            f"about {wait} s.",
        )
    return say(
        lang,
        zh="请求太频繁，已被限流，请稍后再试（免费额度每分钟约 20 次、每天 50 次）。",
        en="Too many requests: the image service is rate-limiting us. Please try again later "
        "(the free tier allows about 20 a minute and 50 a day).",
    )


def _moderation(lang: Lang, error: ModerationError) -> str:
    reasons = listing(lang, (clip_text(r, 60) for r in error.reasons[:5]))
    return say(
        lang,
        zh="请求被内容审核拦截"
        + (f"（原因：{reasons}）" if reasons else "")
        + "，请换个描述试试。",
        en="Content moderation blocked the request"
        + (f" (reason: {reasons})" if reasons else "")
        + "; please try a different description.",
    )


def _model_unavailable(lang: Lang, error: ModelUnavailableError) -> str:
    model = error.model
    text = say(
        lang,
        zh=f"模型 {model} 不存在或已下线，请管理员在插件配置中更换模型。",
        en=f"Model {model} does not exist or has been retired; an admin needs to pick another "
        "model in the plugin settings.",
    )
    if error.suggestions:
        models = listing(lang, error.suggestions[:5])
        text += say(
            lang, zh=f"可用的图像模型有：{models}。", en=f" Image models available: {models}."
        )
    return text


def _references_not_accepted(lang: Lang, error: ReferencesNotAcceptedError) -> str:
    """Pictures came for a model that reads none: one sentence, nothing was sent."""
    model, models = error.model, listing(lang, error.models[:2])
    other = say(
        lang,
        zh=f"，或请管理员换用能改图的模型 {models}",
        en=f", or ask an admin to switch to a model that edits pictures: {models}",
    )
    other = other if error.models else ""
    return say(
        lang,
        zh=f"当前图像模型 {model} 只能根据文字生成图片、不能使用参考图，"
        f"请不带图片（或不 @ 别人）再试{other}。",
        en=f"The current image model {model} draws from text only and can't use reference "
        f"pictures; please try again without pictures (or @-mentions){other}.",
    )


def _modalities_unsupported(lang: Lang, error: ModalitiesUnsupportedError) -> str:
    """OpenRouter's 404 about output modalities: the model exists, it is not retired."""
    model = error.model
    return say(
        lang,
        zh=f"模型 {model} 仍然可用，但 OpenRouter 目前没有能按这种方式（所请求的输出类型）"
        "出图的服务商，请稍后再试，或请管理员换用其他图像模型。",
        en=f"Model {model} still exists, but OpenRouter has no provider right now that makes "
        "pictures the way it was asked (the requested output types); please try again later, "
        "or ask an admin to switch to another image model.",
    )


def _no_image(lang: Lang, error: NoImageError) -> str:
    if error.model_text:
        said = clip_text(error.model_text, MAX_MODEL_TEXT)
        return say(
            lang,
            zh=f"模型没有返回图片，它的回复是：{said}",
            en=f"The model returned no picture. Its reply: {said}",
        )
    return say(
        lang,
        zh="模型没有返回图片，请换个描述再试。",
        en="The model returned no picture; please try a different description.",
    )


def _upstream_unavailable(lang: Lang, error: UpstreamUnavailableError) -> str:
    status = error.status
    if status and status != 200:
        return say(
            lang,
            zh=f"图像服务暂时不可用（HTTP {status}），请稍后再试。",
            en=f"The image service is unavailable right now (HTTP {status}); please try again later.",
        )
    return say(
        lang,
        zh="图像服务暂时不可用，请稍后再试。",
        en="The image service is unavailable right now; please try again later.",
    )


# Failures whose sentence needs no data, most specific class first (isinstance order matters:
# ConnectionLostError is an UpstreamUnavailableError, every upstream one an UpstreamError).
_PLAIN: tuple[tuple[type[BaseException], Words], ...] = (
    (
        NoApiKeyError,
        Words(
            "图片生成插件还没有配置可用的 OpenRouter API 密钥，请管理员在插件配置中填写。",
            "The image plugin has no usable OpenRouter API key yet; an admin needs to add one "
            "in the plugin settings.",
        ),
    ),
    (
        MissingPromptError,
        Words(
            "请告诉我要画什么：图片描述不能为空。",
            "Tell me what to draw: the description is empty.",
        ),
    ),
    (
        ConfigSaveError,
        Words(
            "设置已立即生效，但保存到配置文件失败，插件重载后会恢复原设置，请查看日志。",
            "The setting applies now, but saving it to the config file failed: it goes back "
            "to the old value when the plugin reloads. See the log.",
        ),
    ),
    (
        PluginClosedError,
        Words(
            "画图插件正在重新加载，请稍后再试。",
            "The drawing plugin is reloading; please try again in a moment.",
        ),
    ),
    (
        GroupNotAllowed,
        Words(
            "本群未开启画图功能，如需使用请联系机器人管理员。",
            "Drawing is not enabled in this group; ask the bot's admin if you need it.",
        ),
    ),
    (
        InvalidKeyError,
        Words(
            "OpenRouter API 密钥无效或已被撤销，请管理员检查插件配置中的密钥。",
            "The OpenRouter API key is invalid or was revoked; an admin needs to check the key "
            "in the plugin settings.",
        ),
    ),
    (
        BadRequestError,
        Words(
            "图像服务拒绝了这次请求（请求格式或参数不被接受），请换个描述或图片再试。",
            "The image service rejected this request (its format or parameters were not "
            "accepted); please try a different description or picture.",
        ),
    ),
    (
        UpstreamTimeoutError,
        Words(
            "图像服务响应超时，请稍后再试。",
            "The image service timed out; please try again later.",
        ),
    ),
    (
        LedgerUnavailableError,
        Words(
            "设置了每日花费上限，但花费记录暂时无法读写、无法确认是否超出上限，所以这次没有发出请求；"
            "请联系管理员查看日志。",
            "A daily spend limit is set, but the spend records can't be read or written right "
            "now, so the limit can't be checked and nothing was sent; please ask an admin to "
            "check the log.",
        ),
    ),
    (
        UnreachableError,
        Words(
            "连不上图像服务（连接被拒绝或中断），请稍后再试；如果一直这样，请管理员检查 API 地址和网络。",
            "The image service could not be reached (the connection was refused or broke); "
            "please try again later, and if it keeps happening, ask an admin to check the API "
            "address and the network.",
        ),
    ),
    (
        ConnectionLostError,
        Words(
            "与图像服务的连接中断了，图片没有收到，请稍后再试。",
            "The connection to the image service broke before the picture arrived; please try "
            "again later.",
        ),
    ),
    (
        RefusalError,
        Words(
            "模型出于安全策略拒绝生成这张图片，请换个说法试试。",
            "The model declined to make this picture under its safety policy; please try "
            "wording it differently.",
        ),
    ),
    (
        InvalidImageError,
        Words(
            "模型返回的图片数据已损坏或格式不受支持，请重试。",
            "The picture the model returned is corrupt or in an unsupported format; please "
            "try again.",
        ),
    ),
    (
        DownloadError,
        Words(
            "模型返回的图片链接无法下载（超时、过大或链接失效），请重试。",
            "The picture link the model returned could not be downloaded (timed out, too large "
            "or expired); please try again.",
        ),
    ),
    (
        DeliveryError,
        Words(
            "图片已经生成，但发送到聊天失败，请稍后再试或联系管理员查看日志。",
            "The picture was made, but sending it to the chat failed; please try again later or "
            "ask an admin to check the log.",
        ),
    ),
)
_UPSTREAM = Words(
    "图像服务返回了错误，请稍后再试。",
    "The image service returned an error; please try again later.",
)
_UNEXPECTED = Words(
    "图片生成失败，发生了意外错误，请稍后再试。",
    "Making the picture failed with an unexpected error; please try again later.",
)


def _out_of_credits(lang: Lang, error: OutOfCreditsError) -> str:
    """402; when the key pool refused, with the time it asks the service about the keys again
    (credit bought by then is used at once)."""
    if error.retry_at is None or error.retry_after is None:
        return say(
            lang,
            zh="OpenRouter 账户额度已用完，请管理员充值或更换密钥。",
            en="The OpenRouter account is out of credits; an admin needs to top it up or change "
            "the key.",
        )
    at, wait = clock_time(error.retry_at), whole_seconds(error.retry_after)
    return say(
        lang,
        zh=f"OpenRouter 账户额度已用完，请管理员充值或更换密钥；充值后可在 {at}（约 {wait} 秒后）再试。",
        en="The OpenRouter account is out of credits; an admin needs to top it up or change "
        f"the key. Once topped up, try again at {at} (in about {count(wait, 'second')}).",
    )


def _unknown_key(lang: Lang, error: UnknownKeyError) -> str:
    """An admin named a key by its last characters that fit no key, or several."""
    known = listing(lang, error.known) or say(lang, zh="无", en="none")
    if error.matches:
        n = len(error.matches)
        return say(
            lang,
            zh=f"有 {n} 个密钥以“{error.tail}”结尾，请多写几位。当前密钥：{known}",
            en=f'{count(n, "key")} end in "{error.tail}"; give a few more characters. '
            f"The keys: {known}",
        )
    return say(
        lang,
        zh=f"没有以“{error.tail}”结尾的密钥（至少写 4 位）。当前密钥：{known}",
        en=f'No key ends in "{error.tail}" (give at least 4 characters). The keys: {known}',
    )


def _no_answer(lang: Lang, error: NoAnswerError) -> str:
    """No answer at all within the first-byte deadline: a dead path, said without any key."""
    waited = whole_seconds(error.waited)
    return say(
        lang,
        zh=f"图像服务没有应答（发出请求后 {waited} 秒内没有任何回应），请稍后再试；"
        "如果一直这样，请管理员检查 API 地址和网络。",
        en=f"The image service did not answer (nothing at all within {waited} s of sending); "
        "please try again later, and if it keeps happening, ask an admin to check the API "
        "address and the network.",
    )


_CUT_BILLED = Words(
    "图片传到一半连接断开了，没有收到图片；这次生成可能已经计费，为免重复扣费没有自动重试，请稍后再试。",
    "The connection broke while the picture was coming in, and it was lost; it may have been "
    "billed, so it was not tried again automatically (that could bill twice); please try again "
    "later.",
)

_BROKEN_BILLED = Words(
    "图像服务的回答不完整或无法读取，没有得到图片；这次生成可能已经计费，为免重复扣费没有自动重试，请稍后再试。",
    "The image service's answer was incomplete or unreadable, so no picture came; it may have "
    "been billed, so it was not tried again automatically (that could bill twice); please try "
    "again later.",
)


def user_message(lang: Lang, error: BaseException) -> str:
    """The sentence for a failure."""
    if isinstance(error, NoAnswerError):
        return _no_answer(lang, error)
    if isinstance(error, ConnectionLostError) and error.charge is not None:
        return _CUT_BILLED(lang)
    if isinstance(error, UpstreamUnavailableError) and error.charge is not None:
        return _BROKEN_BILLED(lang)  # an answer that had started, then broke: not sent again
    if isinstance(error, OutOfCreditsError):
        return _out_of_credits(lang, error)
    if isinstance(error, UnknownKeyError):
        return _unknown_key(lang, error)
    if isinstance(error, InvalidArgumentError):
        return _invalid_argument(lang, error)
    if isinstance(error, UnsupportedImageOptionError):
        return _unsupported_option(lang, error)
    if isinstance(error, ReferencesNotAcceptedError):
        return _references_not_accepted(lang, error)
    if isinstance(error, ModalitiesUnsupportedError):
        return _modalities_unsupported(lang, error)
    if isinstance(error, RateLimitHit):
        return _rate_limit_hit(lang, error)
    if isinstance(error, DailyCapReached):
        return cap_message(lang, error)
    if isinstance(error, ReferenceImageError):
        return _reference_message(lang, error)
    if isinstance(error, AllKeysCoolingDownError):
        return _cooling_down_message(lang, error)
    if isinstance(error, RateLimitedError):
        return _rate_limited(lang, error)
    if isinstance(error, DeadlineExceededError):
        return _deadline_message(lang, error)
    if isinstance(error, ModerationError):
        return _moderation(lang, error)
    if isinstance(error, ModelUnavailableError):
        return _model_unavailable(lang, error)
    if isinstance(error, NoImageError):
        return _no_image(lang, error)
    for kind, words in _PLAIN:
        if isinstance(error, kind):
            return words(lang)
    if isinstance(error, UpstreamUnavailableError):
        return _upstream_unavailable(lang, error)
    if isinstance(error, UpstreamError):
        return _UPSTREAM(lang)
    return _UNEXPECTED(lang)
