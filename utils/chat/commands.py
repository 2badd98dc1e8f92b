"""Chat commands: their names, argument parsing, the help text and the preset prompts."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..core.settings import Settings

CMD_DRAW = "画图"
CMD_EDIT = "改图"
CMD_FIGURE = "手办化"
CMD_HELP = "画图帮助"
CMD_MODEL = "画图模型"
CMD_API_BASE = "画图接口"
CMD_SETTINGS = "画图配置"
CMD_KEYS = "画图密钥"


def command_argument(message: str, command: str) -> str:
    """The text after the command word, with its line breaks kept.

    AstrBot's own parameter parsing splits on whitespace and would cut a description at the
    first space, so handlers read the whole message instead. The wake prefix is usually gone
    already; a leftover "/" is tolerated.
    """
    match = re.match(rf"\s*/?\s*{re.escape(command)}(?=\s|$)(.*)\Z", message, re.DOTALL)
    return match.group(1).strip() if match else ""


@dataclass(frozen=True)
class DrawJob:
    """What one chat request asks for, before translation.

    `prompt` is the user's own text (translated when it holds CJK). A `template` wraps the
    translated text into a fixed English prompt (`{details}` marks where it goes), so presets
    need no user text at all.
    """

    prompt: str
    template: str | None = None
    use_images: bool = True  # send the message's (and quoted message's) images as references
    needs_image: bool = False  # commands that only make sense with an image (edit, figure)
    aspect_ratio: str = ""  # '' = the configured default
    action: str = "生成图片"  # for the progress message: 正在{action}

    def render(self, details: str) -> str:
        if self.template is None:
            return details
        extra = f" Additional details from the user: {details}" if details else ""
        return self.template.format(details=extra).strip()


FIGURE_TEMPLATE = (
    "Use the main character or subject of the attached image and create a photorealistic "
    "photograph of it as a 1/7 scale commercial collectible figure. The figure is made of "
    "painted PVC with crisp sculpted details, faithful to the subject's face, hairstyle, "
    "outfit, colours and pose. It stands on a round, clear acrylic display base on a wooden "
    "desk. Behind it sits the figure's retail box with the same character art printed on it, "
    "and a computer monitor shows the figure's 3D sculpting software. Soft studio lighting, "
    "shallow depth of field, realistic reflections, high-end product photography.{details}"
)


def edit_job(prompt: str) -> DrawJob:
    return DrawJob(prompt=prompt, needs_image=True, action="修改图片")


def figure_job(extra: str) -> DrawJob:
    return DrawJob(
        prompt=extra,
        template=FIGURE_TEMPLATE,
        needs_image=True,
        action="制作手办照片",
    )


def help_text(settings: Settings, prefix: str = "/") -> str:
    """`prefix` is the bot's wake prefix, so the commands shown are the ones that work."""
    p = prefix
    lines = [
        "🎨 Gemini 画图指令",
        f"{p}{CMD_DRAW} <描述> —— 根据文字生成图片",
        f"{p}{CMD_EDIT} <描述> —— 按描述修改图片（指令里附上图片，或回复一条带图片的消息）",
        f"{p}{CMD_FIGURE} [补充描述] —— 把图片里的角色做成手办照片（同样需要附图或回复带图消息）",
        f"{p}{CMD_HELP} —— 显示本帮助",
        "管理员指令：",
        f"{p}{CMD_MODEL} <模型ID> —— 切换图像模型并保存",
        f"{p}{CMD_API_BASE} <地址|默认> —— 切换 API 地址并保存",
        f"{p}{CMD_SETTINGS} —— 查看当前设置（密钥已打码）",
        f"{p}{CMD_KEYS} —— 查看密钥池状态：是否正常、冷却到何时、成功与失败次数",
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
    return "\n".join(lines)
