"""Admins' replies: /画图配置 (/draw_config), /画图接口 (/draw_api), and what a change of
setting answers (switched, saved, or applied but not saved)."""

from __future__ import annotations

from ...core.errors import ConfigSaveError
from ...core.keys import mask_key, mask_proxy
from ...core.settings import DEFAULT_API_BASE, Settings
from ...core.urls import display_url, is_cleartext_remote
from . import command_names as cmd
from .failures import user_message
from .language import REPLY_AUTO, REPLY_EN, Lang, Words, listing, on_off, say
from .spend import caps_line
from .units import clock_time, mb

_REPLY_LANGS = {
    REPLY_EN: Words("English", "English"),
    REPLY_AUTO: Words("自动（按用户的消息和平台）", "auto (by the user's message and platform)"),
}
_CHINESE = Words("中文", "Chinese")
_MODEL_DECIDES = Words("由模型决定", "the model's default")


def describe_settings(
    lang: Lang, settings: Settings, translation_paused_until: float | None = None
) -> str:
    """The settings for admins. Keys appear only masked, the API address without credentials.
    `translation_paused_until`: the wall time until which failing translation rests
    (utils/chat/translate.py)."""
    keys = listing(lang, (mask_key(k) for k in settings.api_keys)) or say(
        lang, zh="未配置", en="none"
    )
    official = (
        say(lang, zh="（官方）", en=" (official)") if settings.api_base == DEFAULT_API_BASE else ""
    )
    limits, spend = settings.limits, settings.spend
    api_base = display_url(settings.api_base)

    def per_minute(value: int) -> str:
        if not value:
            return say(lang, zh="不限", en="none")
        return say(lang, zh=f"每分钟 {value} 次", en=f"{value} a minute")

    n_keys, attempts = len(settings.api_keys), settings.max_retry_attempts
    timeout = f"{settings.translate_timeout:g}"
    translate = on_off(lang, settings.translate_prompt)
    reply_lang = _REPLY_LANGS.get(settings.reply_lang, _CHINESE)(lang)
    allow = listing(lang, sorted(limits.group_allowlist)) or say(
        lang, zh="未设置（所有群可用）", en="not set (every group may draw)"
    )
    deny = listing(lang, sorted(limits.group_denylist)) or say(lang, zh="未设置", en="not set")
    avatars = settings.avatar_url_template or say(
        lang, zh="已关闭（avatar_url_template 为空）", en="off (avatar_url_template is empty)"
    )
    nap = f"{settings.nap_server_address or 'localhost'}:{settings.nap_server_port}"
    size = settings.image_size or _MODEL_DECIDES(lang)
    ratio = settings.aspect_ratio or _MODEL_DECIDES(lang)
    send = mb(settings.send_image_max_bytes)
    originals = settings.send_original_file
    # A link runs until the next space in most chat clients: every address ends its line.
    lines = [
        say(lang, zh="当前画图插件设置：", en="Current settings of the drawing plugin:"),
        say(lang, zh=f"模型：{settings.model}", en=f"Model: {settings.model}"),
        say(
            lang,
            zh=f"API 地址{official}：{api_base}",
            en=f"API address{official}: {api_base}",
        ),
        *cleartext_warning(lang, settings.api_base),
        say(lang, zh=f"API 密钥（{n_keys} 个）：{keys}", en=f"API keys ({n_keys}): {keys}"),
        say(lang, zh=f"每个密钥最大尝试次数：{attempts}", en=f"Attempts per key: {attempts}"),
        say(lang, zh=f"回复语言：{reply_lang}", en=f"Reply language: {reply_lang}"),
        say(
            lang,
            zh=f"中文描述翻译：{translate}（超时 {timeout} 秒）",
            en=f"Translating Chinese descriptions: {translate} (timeout {timeout} s)",
        ),
    ]
    if settings.translate_prompt and translation_paused_until is not None:
        lines.append(translation_paused(lang, translation_paused_until))
    if settings.translate_proxy:
        proxy = mask_proxy(settings.translate_proxy)
        lines.append(say(lang, zh=f"翻译代理：{proxy}", en=f"Translation proxy: {proxy}"))
    progress = on_off(lang, settings.progress_message)
    user_rate, group_rate = per_minute(limits.user_per_minute), per_minute(limits.group_per_minute)
    days = spend.ledger_retention_days
    lines += [
        say(lang, zh=f"进度提示：{progress}", en=f"Progress message: {progress}"),
        say(lang, zh=f"头像参考图（QQ）：{avatars}", en=f"Avatar references (QQ): {avatars}"),
        say(lang, zh=f"每人频率限制：{user_rate}", en=f"Per-person rate limit: {user_rate}"),
        say(lang, zh=f"每群频率限制：{group_rate}", en=f"Per-group rate limit: {group_rate}"),
        say(lang, zh=f"群白名单：{allow}", en=f"Group allowlist: {allow}"),
        say(lang, zh=f"群黑名单：{deny}", en=f"Group denylist: {deny}"),
        caps_line(lang, spend),
        say(lang, zh=f"花费记录保留：{days} 天", en=f"Spend records kept: {days} days"),
        say(lang, zh=f"NapCat 主机：{nap}", en=f"NapCat host: {nap}"),
        say(
            lang,
            zh=f"默认尺寸：{size}，默认宽高比：{ratio}",
            en=f"Default size: {size}, default aspect ratio: {ratio}",
        ),
        say(
            lang,
            zh=f"发送图片上限：{send}（超过时压缩成 JPEG 发送"
            + ("，并把原图作为文件发送" if originals else "")
            + "）",
            en=f"Send limit: {send} (bigger pictures go out as a JPEG"
            + (", with the original as a file" if originals else "")
            + ")",
        ),
    ]
    return "\n".join(lines)


def translation_paused(lang: Lang, until: float) -> str:
    at = clock_time(until)
    return say(
        lang,
        zh=f"⚠️ 翻译连续失败（谷歌翻译无法访问？可设置 translate_proxy），已暂停到 {at}，"
        "期间直接使用原文。",
        en=f"⚠️ Translation kept failing (Google Translate unreachable? translate_proxy may "
        f"help): paused until {at}, descriptions go out as written meanwhile.",
    )


def cleartext_warning(lang: Lang, api_base: str) -> list[str]:
    """A line for admins when the API address would send the keys unencrypted."""
    if not is_cleartext_remote(api_base):
        return []
    # No "https://" written here: a chat client would make a link of it and what follows.
    return [
        say(
            lang,
            zh="⚠️ 这个 API 地址是明文 http:// 且不在本机：密钥会以明文经过网络，请改用 https 地址。",
            en="⚠️ This API address is plain http:// to another host: the keys cross the "
            "network unencrypted. Use an https address.",
        )
    ]


def current_api_base(lang: Lang, api_base: str) -> str:
    shown = display_url(api_base)
    usage = say(
        lang,
        zh=f"用法：/{cmd.API_BASE.zh} <地址>，填“默认”恢复官方地址",
        en=f'Usage: /{cmd.API_BASE.en} <address>, or "default" for the official address',
    )
    current = say(lang, zh=f"当前 API 地址：{shown}", en=f"Current API address: {shown}")
    return "\n".join([current, *cleartext_warning(lang, api_base), usage])


def model_switched(lang: Lang, model: str) -> str:
    return say(lang, zh=f"已将图像模型切换为 {model}", en=f"Image model switched to {model}")


def api_base_switched(lang: Lang, api_base: str, official: bool) -> str:
    # The address ends the line: a chat client's link would swallow text written after it.
    shown = display_url(api_base)
    if official:
        return say(
            lang,
            zh=f"已将 API 地址切换为 OpenRouter 官方地址：{shown}",
            en=f"API address switched to the official OpenRouter address: {shown}",
        )
    switched = say(lang, zh=f"已将 API 地址切换为：{shown}", en=f"API address switched to: {shown}")
    return "\n".join([switched, *cleartext_warning(lang, api_base)])


def setting_saved(lang: Lang, done: str) -> str:
    return say(
        lang,
        zh=f"{done}\n已保存到插件配置（网页面板中同步可见）。",
        en=f"{done}\nSaved to the plugin settings (the web panel shows it too).",
    )


def setting_not_saved(lang: Lang, done: str, error: ConfigSaveError) -> str:
    return f"{done}\n{user_message(lang, error)}"


def admin_only(lang: Lang, command: str, sender_id: str) -> str:
    """A non-admin's admin command: one sentence, with the ID an admin would add."""
    return say(
        lang,
        zh=f"{command} 是管理员指令，只有机器人管理员可以使用（你的 ID：{sender_id}）。",
        en=f"{command} is an admin command: only the bot's admins may use it "
        f"(your ID: {sender_id}).",
    )
