"""What the chat model reads about the tool `gemini-pic-gen`: its description and each
argument's. Set on the registered tool at initialize() in the configured language; with
`reply_lang` auto the model reads both, Chinese first (its users may write either)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .language import REPLY_AUTO, REPLY_EN, Lang, Words

_DESCRIPTION = Words(
    "使用 Gemini 图像模型根据文字描述生成图片，或根据用户发送/引用的图片进行修改。生成的图片会直接发送给用户。"
    "用户要修改刚才画的图（“改刚才那张”“把它改成…”“再加…”）时，把 continue_last_picture 设为 true。",
    "Makes a picture from a text description with a Gemini image model, or edits the "
    "pictures the user sent or quoted. The picture is sent to the user directly. When the "
    'user wants to change the picture just made ("change the last one", "make it night", '
    '"add a cat"), set continue_last_picture to true.',
)

ARGUMENTS: Mapping[str, Words] = MappingProxyType(
    {
        "image_description": Words(
            "要生成或修改的图片内容的详细描述，保留用户原话中需要画进图里的文字",
            "A detailed description of the picture to make or of the change to make; keep, as "
            "the user wrote them, any words that should appear in the picture",
        ),
        "use_reference_images": Words(
            "是否使用参考图，默认为 true：用户消息、引用消息和合并转发消息里的图片，以及消息中被 @ "
            "的人的头像（QQ 上自动加入，排在图片之后）；纯文字生图、用不到这些图片和头像时填 false",
            "Whether to use reference pictures, true by default: the pictures in the user's "
            "message, the quoted message and forwarded messages, and the avatars of the people "
            "@-mentioned in the message (added on QQ, after the pictures). Set false to draw "
            "from text alone, when none of these pictures or avatars is wanted",
        ),
        "aspect_ratio": Words(
            "可选，图片宽高比，只能是 1:1、2:3、3:2、3:4、4:3、4:5、5:4、9:16、16:9、21:9、1:4、4:1、"
            "1:8、8:1 之一（后四种只有部分模型支持）；用户没有指定比例时不要填写",
            "Optional aspect ratio, one of 1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9, "
            "1:4, 4:1, 1:8, 8:1 (the last four only on some models); leave it out unless the "
            "user asked for a ratio",
        ),
        "image_size": Words(
            "可选，图片尺寸，只能是 1K、2K、4K 之一（长边约 1024、2048、4096 像素，越大越慢越贵）；"
            "只有用户要求高清、2K、4K 等尺寸时才填写",
            "Optional size, one of 1K, 2K, 4K (long side about 1024, 2048, 4096 pixels; bigger "
            "is slower and costs more); fill it in only when the user asks for high resolution, "
            "2K, 4K or the like",
        ),
        "use_sender_avatar": Words(
            "可选，用户明确要求用他自己的头像（如“用我的头像画…”“把我的头像做成手办”）时填 true，"
            "否则不要填写；被 @ 的人的头像不需要此参数",
            'Optional; true when the user explicitly asks for their own avatar ("draw my avatar '
            'as…", "turn my avatar into a figure"), otherwise leave it out; the avatars of '
            "@-mentioned people need no argument",
        ),
        "continue_last_picture": Words(
            "用户要在你刚才为他画的那张图上继续修改时填 true（如“改刚才那张”“把它改成夜景”“再加一只猫”"
            "“换成水彩风格”“背景换成海边”），那张图会作为第一张参考图，不需要用户再发一次；"
            "画一张新的、与上一张无关的图时不要填写",
            'true when the user wants to change the picture you just made for them ("change '
            'the last one", "make it night", "add a cat", "make it watercolour", "put the '
            'background at the sea"): that picture becomes the first reference, the user need '
            "not send it again; leave it out for a new drawing unrelated to the last one",
        ),
    }
)


@dataclass(frozen=True)
class ToolText:
    description: str
    arguments: Mapping[str, str]


def _in(setting: str, words: Words) -> str:
    if setting == REPLY_EN:
        return words(Lang.EN)
    if setting == REPLY_AUTO:
        return f"{words(Lang.ZH)}\n{words(Lang.EN)}"
    return words(Lang.ZH)


def tool_text(setting: str) -> ToolText:
    """The tool's texts for the `reply_lang` setting (zh, en, or auto: both)."""
    return ToolText(
        description=_in(setting, _DESCRIPTION),
        arguments={name: _in(setting, words) for name, words in ARGUMENTS.items()},
    )
