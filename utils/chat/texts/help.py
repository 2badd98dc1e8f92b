"""/画图帮助 (/draw_help) and the usage lines of the drawing commands.

The Chinese help lists the Chinese commands and names the English ones; the English help
lists the English commands only.
"""

from __future__ import annotations

from ...core.image_options import ASPECT_RATIOS
from ...core.settings import Settings
from . import command_names as cmd
from .language import Lang, Words, listing, phrases, say
from .spend import caps_line


def usage_draw(lang: Lang) -> str:
    zh, en = cmd.DRAW.zh, cmd.DRAW.en
    return say(
        lang,
        zh=f"用法：/{zh} <图片描述>，例如 /{zh} 一只在月球上看书的猫",
        en=f"Usage: /{en} <description>, e.g. /{en} a cat reading a book on the moon",
    )


def usage_edit(lang: Lang) -> str:
    return say(
        lang,
        zh=f"用法：/{cmd.EDIT.zh} <修改要求>，并附上图片或回复一条带图片的消息；不带图片时修改你刚画的那张图。",
        en=f"Usage: /{cmd.EDIT.en} <what to change>, with a picture attached or as a reply "
        "to a message with a picture; without one, the picture just made for you is changed.",
    )


# Each command with its arguments and what it does; the name comes from command_names.
_USER_COMMANDS = (
    (
        cmd.DRAW,
        Words("<描述> —— 根据文字生成图片", "<description> — make a picture from a description"),
    ),
    (
        cmd.EDIT,
        Words(
            "<描述> —— 按描述修改图片（指令里附上图片，或回复一条带图片的消息；都没有时改你刚画的那张）",
            "<description> — change a picture as described (attach it, or reply to a message "
            "with a picture; else the one just made for you)",
        ),
    ),
    (
        cmd.FIGURE,
        Words(
            "[补充描述] —— 把图片里的角色做成手办照片（同样用附图或回复的带图消息，都没有时用你刚画的那张）",
            "[details] — turn the character in a picture into a photo of a collectible figure "
            "(also from an attached or quoted picture, else the one just made for you)",
        ),
    ),
)
_HELP_COMMAND = (cmd.HELP, Words("—— 显示本帮助", "— show this help"))
_ADMIN_COMMANDS = (
    (
        cmd.MODEL,
        Words(
            "[模型ID] —— 切换图像模型并保存；不带参数时列出图像模型、能力和价格",
            "[model ID] — switch the image model and save it; without an argument, list the "
            "image models with their abilities and prices",
        ),
    ),
    (
        cmd.API_BASE,
        Words(
            "<地址|默认> —— 切换 API 地址并保存",
            "<address|default> — switch the API address and save it",
        ),
    ),
    (
        cmd.SETTINGS,
        Words("—— 查看当前设置（密钥已打码）", "— show the current settings (keys masked)"),
    ),
    (
        cmd.KEYS,
        Words(
            "[重置 [密钥末尾几位]] —— 查看密钥池状态（是否正常、冷却到何时、成功与失败次数）；"
            "重置清除全部或一个密钥的冷却、额度用尽和无效状态",
            "[reset [last characters]] — the key pool (healthy or not, cooling down until when, "
            "successes and failures); reset clears the cooldown, out-of-credits and invalid "
            "state of every key or of one",
        ),
    ),
    (
        cmd.STATS,
        Words(
            "—— 查看今天和近 7 天的图片数与花费（按群、用户、模型）及密钥剩余额度",
            "— pictures and spend today and over the last 7 days (by group, user and model) "
            "and each key's remaining credit",
        ),
    ),
)


def _line(lang: Lang, p: str, command: cmd.Command, what: Words) -> str:
    return f"{p}{command(lang)} {what(lang)}"


def _command_lines(lang: Lang, p: str) -> list[str]:
    figure = cmd.FIGURE(lang)
    lines = [say(lang, zh="🎨 Gemini 画图指令", en="🎨 Gemini drawing commands")]
    lines += [_line(lang, p, c, what) for c, what in _USER_COMMANDS]
    lines.append(
        say(
            lang,
            zh="QQ 上还可以用头像作参考图：在指令里 @某人 用他的头像，或在描述前写“我的头像”用你自己的"
            f"（如 {p}{figure} @某人、{p}{figure} 我）。合并转发消息里的图片也会被用作参考图。",
            en="On QQ, avatars work as references too: @someone in the command to use their "
            'avatar, or start the description with "my avatar" for your own '
            f"(e.g. {p}{figure} @someone, {p}{figure} me). Pictures in forwarded messages are "
            "used as references as well.",
        )
    )
    edit = cmd.EDIT(lang)
    lines.append(
        say(
            lang,
            zh=f"接着改刚画的图：不带图片发 {p}{edit} <修改要求>，或在对话里说“把它改成…”，"
            "就会在你在这个对话里最近生成的那张图上修改（只有你自己能接着改，保留时间内有效）。",
            en=f"Change the picture just made: send {p}{edit} <what to change> without a "
            'picture, or say "make it …" in the chat, and the last picture made for you in this '
            "conversation is changed (only you can, within the retention time).",
        )
    )
    draw, ratios = cmd.DRAW(lang), listing(lang, ASPECT_RATIOS)
    lines.append(
        say(
            lang,
            zh=f"尺寸和宽高比：在指令里写 1K、2K 或 4K（不区分大小写），和/或宽高比（{ratios}），"
            f"如 {p}{draw} 4K 16:9 海边日落；模型画不了的会换成最接近的并告诉你。",
            en=f"Size and aspect ratio: write 1K, 2K or 4K (any case) and/or a ratio ({ratios}) "
            f"in the command, e.g. {p}{draw} 4K 16:9 sunset over the sea; what the model "
            "cannot draw is swapped for the nearest it can, and you are told.",
        )
    )
    lines.append(_line(lang, p, *_HELP_COMMAND))
    lines.append(say(lang, zh="管理员指令：", en="Admin commands:"))
    lines += [_line(lang, p, c, what) for c, what in _ADMIN_COMMANDS]
    if lang is Lang.ZH:  # the English help has no Chinese names to translate
        english = listing(lang, (p + c.en for c in cmd.ALL))
        lines.append(
            say(lang, zh=f"英文指令名（作用相同）：{english}", en=f"English names: {english}")
        )
    return lines


def help_text(lang: Lang, settings: Settings, prefix: str = "/") -> str:
    """`prefix` is the bot's wake prefix, so the commands shown are the ones that work."""
    lines = _command_lines(lang, prefix)
    if not prefix:
        lines.insert(
            1,
            say(
                lang,
                zh="（在群聊中请先 @机器人 再发送指令）",
                en="(In group chats, @ the bot before the command.)",
            ),
        )
    if settings.translate_prompt:
        lines.append(
            say(
                lang,
                zh="提示：中文描述会自动翻译成英文再发给模型；用引号括起来的文字"
                "（如“生日快乐”）保持原样，会按原文画进图里。",
                en="Tip: descriptions in Chinese are translated to English before they reach "
                'the model; text in quotes (like "Happy Birthday") is kept as written and '
                "drawn into the picture as is.",
            )
        )
    limits = settings.limits
    if limits.user_per_minute or limits.group_per_minute:
        parts = []
        if limits.user_per_minute:
            n = limits.user_per_minute
            parts.append(say(lang, zh=f"每人每分钟 {n} 次", en=f"{n} per person a minute"))
        if limits.group_per_minute:
            n = limits.group_per_minute
            parts.append(say(lang, zh=f"每群每分钟 {n} 次", en=f"{n} per group a minute"))
        lines.append(
            say(lang, zh="使用频率限制：", en="Rate limits: ")
            + phrases(lang, parts)
            + say(lang, zh="。", en=".")
        )
    if settings.spend.any_cap:
        lines.append(caps_line(lang, settings.spend) + say(lang, zh="。", en="."))
    return "\n".join(lines)
