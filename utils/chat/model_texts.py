"""Chinese wording for image sizes and ratios, model capabilities, the /画图模型 list and the
delivery of big pictures (issue 13). To be folded into utils/chat/texts.py.

Functions take plain data, so that any layer (errors, capabilities, delivery) can use them
without importing each other; nothing here decides anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..openrouter.capabilities import ModelSummary
    from ..openrouter.model_catalog import ModelPrice

_OPTION_NAMES = {"image_size": "图片尺寸", "aspect_ratio": "宽高比"}
# What each known model is good at (by family, see capabilities.family_of).
_BLURBS = {
    "google/gemini-2.5-flash-image": "快、便宜，适合日常画图和改图",
    "google/gemini-3-pro-image": "质量最好、图里的文字最准，适合海报和精细作品；最贵也最慢",
    "google/gemini-3.1-flash-image": "接近 Pro 的质量，更快更便宜，要 4K 时性价比最高",
}


def _name(option: str) -> str:
    return _OPTION_NAMES.get(option, option)


def invalid_option(option: str, value: str, allowed: Sequence[str]) -> str:
    """A size or ratio that is no valid value at all."""
    shown = value[:20]
    if option == "image_size":
        return (
            f"不支持的图片尺寸“{shown}”。可用的尺寸有：{'、'.join(allowed)}（不区分大小写）；"
            "不填则使用模型的默认尺寸。"
        )
    return f"不支持的宽高比“{shown}”。可用的宽高比有：{'、'.join(allowed)}；不填则使用默认比例。"


def unsupported_option(
    model: str, option: str, value: str, supported: Sequence[str], models: Sequence[str]
) -> str:
    """A valid value the model cannot draw, with nothing near enough: one sentence."""
    can = f"（它支持：{'、'.join(supported)}）" if supported else ""
    other = f"，或请管理员换用支持 {value} 的模型 {'、'.join(models[:2])}" if models else ""
    return (
        f"当前图像模型 {model} 不支持{_name(option)} {value}{can}，请换一个{_name(option)}{other}。"
    )


def adjustments_note(model: str, changes: Sequence[tuple[str, str, str]], fixed_size: str) -> str:
    """For the chat model: which options were changed to fit the model (option, asked, sent)."""
    parts = []
    for option, asked, sent in changes:
        if option == "image_size" and not sent:
            parts.append(f"不能选择尺寸（固定约 {fixed_size}），没有按 {asked} 生成")
        else:
            parts.append(f"不支持{_name(option)} {asked}，已改用最接近的 {sent}")
    if not parts:
        return ""
    return f"注意：当前图像模型 {model} " + "；".join(parts) + "。请把这一点告诉用户。"


def _per_million(value: float) -> str:
    return f"${value * 1_000_000:.3g}/百万 token"


def price_text(price: ModelPrice | None) -> str:
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


def _capability_text(summary: ModelSummary) -> str:
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
        strips = [r for r in ("1:4", "4:1", "1:8", "8:1") if r in caps.ratios]
        if strips:
            ratios += "（含 " + "、".join(strips) + "）"
    edits = {True: "可改图", False: "只能文生图", None: ""}[summary.edits]
    return "，".join(p for p in (sizes, ratios, edits) if p)


def model_list(
    summaries: Sequence[ModelSummary], current: str, from_list: bool, limit: int = 20
) -> str:
    """/画图模型 without an argument: the image models, what they can do, and their price."""
    lines = [f"当前图像模型：{current}"]
    lines.append("可用的图像模型：" if from_list else "已知的图像模型（未能获取模型列表）：")
    for summary in summaries[:limit]:
        mark = "👉 " if summary.id == current else "· "
        title = summary.id + (f"（{summary.name}）" if summary.name else "")
        lines.append(mark + title)
        details = [_capability_text(summary)]
        blurb = _BLURBS.get(summary.family)
        if blurb:
            details.append(blurb)
        price = price_text(summary.price)
        if price:
            details.append("价格：" + price)
        lines.append("   " + "；".join(d for d in details if d))
    if len(summaries) > limit:
        lines.append(f"……另有 {len(summaries) - limit} 个图像模型未列出。")
    lines.append("切换：/画图模型 <模型ID>。在对话中说“画一张 4K 的……”即可要求 4K（需模型支持）。")
    return "\n".join(lines)


# --- delivery of big pictures -------------------------------------------------------------------


def _mb(size: int) -> str:
    return f"{size / 1048576:.1f} MB"  # MiB, as the config's MB limits


def reencoded_note(original: int, sent: int, width: int, height: int, limit: int) -> str:
    """For the chat model: the picture was too big to send as it is."""
    return (
        f"原图 {_mb(original)} 超过发送上限 {_mb(limit)}，已转成 {width}×{height} 的高质量 JPEG"
        f"（{_mb(sent)}）发送。"
    )


def original_file_note(sent: bool) -> str:
    if sent:
        return "原图也已作为文件发送。"
    return "原图没能作为文件发送（当前平台不支持发送文件或发送失败）。"


def still_too_big_note(sent: int, limit: int) -> str:
    return f"图片压缩后仍有 {_mb(sent)}，超过发送上限 {_mb(limit)}，可能发送失败。"
