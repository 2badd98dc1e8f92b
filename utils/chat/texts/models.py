"""/画图模型 (/draw_model) without an argument: the image models, what each can do, and its
price."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...openrouter.capabilities import IMAGES_API
from . import command_names as cmd
from .language import Lang, Words, clauses, listing, phrases, say
from .units import money, usd

if TYPE_CHECKING:  # data types worded here, imported for annotations only
    from ...openrouter.capabilities import ModelSummary
    from ...openrouter.model_catalog import ModelPrice

# What each known model is good at, by family (capabilities.family_of).
_MODEL_BLURBS = {
    "google/gemini-2.5-flash-image": Words(
        "快、便宜，适合日常画图和改图", "fast and cheap, good for everyday drawing and editing"
    ),
    "google/gemini-3-pro-image": Words(
        "质量最好、图里的文字最准，适合海报和精细作品；最贵也最慢",
        "the best quality and the most accurate text in pictures, for posters and detailed "
        "work; the most expensive and the slowest",
    ),
    "google/gemini-3.1-flash-image": Words(
        "接近 Pro 的质量，更快更便宜，要 4K 时性价比最高",
        "close to Pro quality, faster and cheaper; the best value for 4K",
    ),
}
_STRIPS = ("1:4", "4:1", "1:8", "8:1")


def _per_million(lang: Lang, value: float) -> str:
    price = money(lang, f"{value * 1_000_000:.3g}")
    return say(lang, zh=f"{price}/百万 token", en=f"{price} per million tokens")


def price_text(lang: Lang, price: ModelPrice | None) -> str:
    """What the model list says a model costs ('' when it says nothing)."""
    if price is None or not price.known:
        return ""
    parts = []
    if price.prompt is not None:
        each = _per_million(lang, price.prompt)
        parts.append(say(lang, zh=f"输入 {each}", en=f"input {each}"))
    if price.completion is not None:
        each = _per_million(lang, price.completion)
        parts.append(say(lang, zh=f"输出 {each}", en=f"output {each}"))
    if price.image_output is not None:
        each = _per_million(lang, price.image_output)
        parts.append(say(lang, zh=f"图片输出 {each}", en=f"image output {each}"))
    if price.request:
        each = money(lang, f"{price.request:.3g}")
        parts.append(say(lang, zh=f"每次请求 {each}", en=f"{each} per request"))
    return phrases(lang, parts)


def _model_abilities(lang: Lang, summary: ModelSummary) -> str:
    caps = summary.capabilities
    if caps.sizes is None:
        sizes = say(lang, zh="尺寸未知", en="sizes unknown")
    elif not caps.sizes:
        fixed = caps.fixed_size
        sizes = say(lang, zh=f"尺寸固定约 {fixed}", en=f"fixed size about {fixed}")
    else:
        listed = "/".join(caps.sizes)
        sizes = say(lang, zh=f"尺寸 {listed}", en=f"sizes {listed}")
    if caps.ratios is None:
        ratios = say(lang, zh="宽高比未知", en="aspect ratios unknown")
    else:
        n = len(caps.ratios)
        ratios = say(lang, zh=f"{n} 种宽高比", en=f"{n} aspect ratios")
        strips = listing(lang, (r for r in _STRIPS if r in caps.ratios))
        if strips:
            ratios += say(lang, zh=f"（含 {strips}）", en=f" (incl. {strips})")
    edits = {
        True: say(lang, zh="可改图", en="can edit"),
        False: say(lang, zh="只能文生图", en="text to image only"),
        None: "",
    }[summary.edits]
    return phrases(lang, (p for p in (sizes, ratios, edits) if p))


_IMAGES_API_LABEL = Words("经图像接口（Image API）", "through the Image API")


def model_price_text(lang: Lang, summary: ModelSummary) -> str:
    """One model's price: per picture for the Image API's (estimated from its providers'
    prices), per token as chat completions' model list gives it."""
    if summary.image_prices:
        return phrases(
            lang,
            (
                say(
                    lang,
                    zh=f"{size + ' ' if size else ''}约 {usd(lang, cost)}/张",
                    en=f"{size + ' ' if size else ''}about {usd(lang, cost)} a picture",
                )
                for size, cost in summary.image_prices
            ),
        )
    if summary.per_token:
        return say(
            lang,
            zh="按 token 计费，出图前无法估算",
            en="billed per token, not known before the picture is made",
        )
    return price_text(lang, summary.price)


def image_model_list(
    lang: Lang, summaries: list[ModelSummary], current: str, from_list: bool, limit: int = 20
) -> str:
    """The image models, what they can do, and their price."""
    lines = [
        say(lang, zh=f"当前图像模型：{current}", en=f"Current image model: {current}"),
        say(lang, zh="可用的图像模型：", en="Image models available:")
        if from_list
        else say(
            lang,
            zh="已知的图像模型（未能获取模型列表）：",
            en="Known image models (the model list could not be fetched):",
        ),
    ]
    for summary in summaries[:limit]:
        mark = "👉 " if summary.id == current else "· "
        name = say(lang, zh=f"（{summary.name}）", en=f" ({summary.name})") if summary.name else ""
        lines.append(mark + summary.id + name)
        blurb = _MODEL_BLURBS.get(summary.family)
        details = [_model_abilities(lang, summary), blurb(lang) if blurb else ""]
        if summary.api == IMAGES_API:
            details.insert(0, _IMAGES_API_LABEL(lang))
        price = model_price_text(lang, summary)
        details.append(say(lang, zh=f"价格：{price}", en=f"price: {price}") if price else "")
        lines.append("   " + clauses(lang, (d for d in details if d)))
    if len(summaries) > limit:
        more = len(summaries) - limit
        lines.append(
            say(
                lang,
                zh=f"……另有 {more} 个图像模型未列出。",
                en=f"…and {more} more image models not listed.",
            )
        )
    lines.append(
        say(
            lang,
            zh=f"切换：/{cmd.MODEL.zh} <模型ID>。在对话中说“画一张 4K 的……”即可要求 4K（需模型支持）。",
            en=f'Switch: /{cmd.MODEL.en} <model ID>. Say "draw a 4K …" in chat to ask for 4K '
            "(if the model can).",
        )
    )
    return "\n".join(lines)
