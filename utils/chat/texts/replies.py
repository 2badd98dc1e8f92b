"""What a request says while and after it runs: the progress note, the remarks beside the
pictures, what the chat model is handed, and what a detached request tells the chat itself.

`DrawOutcome` (utils/chat/jobs.py) is data; these functions word it in the request's language.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...core.errors import InvalidArgumentError
from ..jobs import DrawOutcome
from .failures import MAX_MODEL_TEXT, option_name, user_message
from .language import Lang, Words, clauses, say, sentences
from .units import count, mb

if TYPE_CHECKING:  # data types worded here, imported for annotations only
    from ...imaging.outgoing import Outgoing
    from ...openrouter.capabilities import ResolvedImageOptions

_ACTIONS = {
    "draw": Words("生成图片", "making your picture"),
    "edit": Words("修改图片", "editing the picture"),
    "figure": Words("制作手办照片", "making the figure photo"),
}


def progress(lang: Lang, action: str) -> str:
    doing = _ACTIONS.get(action, _ACTIONS["draw"])
    return say(
        lang, zh=f"🎨 收到，正在{doing.zh}，请稍候…", en=f"🎨 Got it, {doing.en}, one moment…"
    )


def delivery_fallback_note(lang: Lang) -> str:
    """Told when the NapCat push failed and the image went out directly instead. The
    receiver's address stays in the log: the model may repeat this in a group chat."""
    return say(
        lang,
        zh="（NapCat 文件接收端暂时无法使用，图片已改为直接发送；管理员可在日志中查看原因。）",
        en="(The NapCat file receiver is unavailable right now, so the picture was sent "
        "directly; admins can see why in the log.)",
    )


def reencode_failed_note(lang: Lang) -> str:
    """Told when a picture too big to send could not be re-encoded and went out as it was."""
    return say(
        lang,
        zh="（图片压缩失败，已改为发送原图，可能较大、发送较慢。）",
        en="(Shrinking the picture for sending failed, so the original was sent instead; it "
        "may be big and slow to arrive.)",
    )


def options_note(lang: Lang, options: ResolvedImageOptions | None) -> str:
    """What changed to fit the model's sizes and ratios ('' when nothing did)."""
    if options is None or not options.adjustments:
        return ""
    parts = []
    for change in options.adjustments:
        asked, sent = change.asked, change.sent
        if change.option == InvalidArgumentError.IMAGE_SIZE and not sent:
            fixed = options.capabilities.fixed_size
            parts.append(
                say(
                    lang,
                    zh=f"不能选择尺寸（固定约 {fixed}），没有按 {asked} 生成",
                    en=f"cannot choose a size (it is fixed at about {fixed}), so it did not "
                    f"draw at {asked}",
                )
            )
        else:
            name = option_name(lang, change.option)
            parts.append(
                say(
                    lang,
                    zh=f"不支持{name} {asked}，已改用最接近的 {sent}",
                    en=f"does not support {name} {asked}, so the nearest one, {sent}, was used",
                )
            )
    model, changes = options.model, clauses(lang, parts)
    return say(
        lang,
        zh=f"注意：当前图像模型 {model} {changes}。",
        en=f"Note: the current image model {model} {changes}.",
    )


def reencoded_notes(
    lang: Lang, outgoing: tuple[Outgoing, ...], originals_sent: bool | None
) -> list[str]:
    """For the chat model: pictures that went out re-encoded (too big to send as they were)."""
    notes = []
    for item in outgoing:
        sent = item.reencoded
        if sent is None:
            continue
        size, w, h, new = mb(item.original.size), sent.width, sent.height, mb(sent.size)
        notes.append(
            say(
                lang,
                zh=f"原图 {size} 太大，已转成 {w}×{h} 的高质量 JPEG（{new}）发送。",
                en=f"The original ({size}) was too big, so it went out as a {w}×{h} "
                f"high-quality JPEG ({new}).",
            )
        )
        if item.over_limit:
            notes.append(
                say(
                    lang,
                    zh="压缩到最小仍超过发送上限，可能发送失败。",
                    en="Even at its smallest it is over the send limit and may not arrive.",
                )
            )
    if notes and originals_sent:
        notes.append(
            say(lang, zh="原图也已作为文件发送。", en="The original was sent as a file too.")
        )
    return notes


def outcome_remarks(lang: Lang, outcome: DrawOutcome) -> list[str]:
    """What the user should hear besides the images: skipped references, dropped images, a size
    or ratio the model could not do, a delivery that fell back, originals that were asked for
    as files."""
    remarks = [user_message(lang, problem) for problem in outcome.references.problems]
    if outcome.result is not None and outcome.result.discarded:
        n = outcome.result.discarded
        remarks.append(
            say(
                lang,
                zh=f"另有 {n} 张返回的图片数据损坏，已丢弃。",
                en=f"{count(n, 'more picture')} came back corrupt and {'was' if n == 1 else 'were'} dropped.",
            )
        )
    options = options_note(lang, outcome.options)
    if options:
        remarks.append(options)
    if outcome.push_fell_back:
        remarks.append(delivery_fallback_note(lang))
    if outcome.reencode_failed:
        remarks.append(reencode_failed_note(lang))
    if outcome.originals_sent is False:
        remarks.append(
            say(
                lang,
                zh="原图没能作为文件发送（当前平台不支持发送文件或发送失败）。",
                en="The original could not be sent as a file (this platform can't send files, "
                "or sending failed).",
            )
        )
    return remarks


def failure_text(lang: Lang, outcome: DrawOutcome) -> str:
    """The sentence for an outcome that ended in a failure."""
    return user_message(lang, outcome.error) if outcome.error is not None else ""


def tool_summary(lang: Lang, outcome: DrawOutcome) -> str:
    """The text handed back to the chat model, which relays what matters to the user."""
    if outcome.result is None:
        return failure_text(lang, outcome)
    if outcome.undelivered:
        return sentences(
            lang,
            (
                failure_text(lang, outcome),
                say(
                    lang,
                    zh="图片已经生成并计费，请不要再次调用画图工具重画，告诉用户稍后再试或联系管理员。",
                    en="The picture was made and paid for: do not call the drawing tool again; "
                    "tell the user to try again later or to contact an admin.",
                ),
            ),
        )
    n = len(outcome.result.images)
    parts = [
        say(
            lang,
            zh=f"已生成 {n} 张图片并发送给用户。",
            en=f"Made {count(n, 'picture')} and sent {'it' if n == 1 else 'them'} to the user.",
        )
    ]
    references = outcome.references
    if references.images:
        used, avatars = len(references.images), references.avatars
        parts.append(
            say(
                lang,
                zh=f"参考了 {used} 张图片"
                + (f"（其中 {avatars} 个头像）" if avatars else "")
                + "。",
                en=f"Used {count(used, 'reference picture')}"
                + (f" ({avatars} of them avatars)" if avatars else "")
                + ".",
            )
        )
    if outcome.continued:
        parts.append(continued_note(lang, outcome))
    if outcome.nothing_remembered:
        parts.append(
            say(
                lang,
                zh="这个对话里没有记住的上一张图（没画过，或已超过保留时间），"
                "已只按文字描述和消息里的图片生成。",
                en="There is no remembered last picture in this conversation (none was made, "
                "or it is past the retention time), so it was drawn from the description and "
                "the message's pictures alone.",
            )
        )
    if outcome.no_reference_found:
        parts.append(
            say(
                lang,
                zh="用户的消息和引用消息里没有找到图片，已只按文字描述生成。",
                en="There was no picture in the user's message or the quoted message, so it was "
                "drawn from the description alone.",
            )
        )
    parts.extend(outcome_remarks(lang, outcome))
    parts.extend(reencoded_notes(lang, outcome.outgoing, outcome.originals_sent))
    if outcome.result.text:
        said = outcome.result.text[:MAX_MODEL_TEXT]
        parts.append(say(lang, zh=f"模型附言：{said}", en=f"The image model added: {said}"))
    return sentences(lang, parts)


def continued_note(lang: Lang, outcome: DrawOutcome) -> str:
    """That the request went on from the conversation's last picture(s)."""
    n = outcome.continued
    if outcome.continued_as_history:
        return say(
            lang,
            zh=f"已在这个对话上一次生成的 {n} 张图片上继续修改（连同上一轮对话一起发给模型）。",
            en=f"Went on from the {count(n, 'picture')} last made in this conversation (sent "
            "to the model with that earlier turn).",
        )
    return say(
        lang,
        zh=f"已在这个对话上一次生成的 {n} 张图片上继续修改（作为参考图）。",
        en=f"Went on from the {count(n, 'picture')} last made in this conversation (as "
        f"reference{'' if n == 1 else 's'}).",
    )


def still_working(lang: Lang) -> str:
    """Handed to the model when the picture is not ready before AstrBot's tool timeout."""
    return say(
        lang,
        zh="图片还在生成中，完成后会自动发送到这个聊天，不需要再次调用画图工具。请告诉用户稍等片刻。",
        en="The picture is still being made and will be sent to this chat when it is ready; do "
        "not call the drawing tool again. Tell the user to wait a moment.",
    )


def options_used(lang: Lang, options: ResolvedImageOptions) -> str:
    """The size and ratio a picture was drawn with, after fitting them to the model."""
    caps = options.capabilities
    if options.image_size:
        size = options.image_size
    elif caps.sizes is not None and not caps.sizes:
        size = say(
            lang, zh=f"约 {caps.fixed_size}（模型固定）", en=f"about {caps.fixed_size} (fixed)"
        )
    else:
        size = say(lang, zh="模型默认", en="the model's default")
    ratio = options.aspect_ratio or say(lang, zh="由模型决定", en="the model's choice")
    return say(
        lang,
        zh=f"本次按 尺寸 {size}、宽高比 {ratio} 生成（{options.model}）。",
        en=f"Drawn at size {size}, aspect ratio {ratio} ({options.model}).",
    )


def command_reply(lang: Lang, outcome: DrawOutcome, asked_options: bool = False) -> list[str]:
    """The lines a command answers with besides the images (none on plain success); when the
    command named a size or ratio (`asked_options`), first what was drawn."""
    if outcome.result is None or outcome.undelivered:
        return [failure_text(lang, outcome)]
    used = [options_used(lang, outcome.options)] if asked_options and outcome.options else []
    continued = [continued_note(lang, outcome)] if outcome.continued else []
    return continued + used + outcome_remarks(lang, outcome)


def detached_report(lang: Lang, outcome: DrawOutcome) -> list[str]:
    """What a request that outlived its tool call tells the chat itself when it ends."""
    return command_reply(lang, outcome)
