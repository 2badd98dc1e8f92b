"""Load the plugin into a real, in-process AstrBot and run its tool the way the agent does.

Only managers the plugin never touches are MagicMocks; the plugin manager, the loader, the
tool registry, the tool executor and the message event class are AstrBot's own.
Import this module only after conftest has set ASTRBOT_ROOT.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import functools
import json
import shutil
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import astrbot.core.core_lifecycle  # noqa: F401
from astrbot.core import astrbot_config, db_helper, sp
from astrbot.core.agent.run_context import ContextWrapper
from astrbot.core.astr_agent_context import AstrAgentContext
from astrbot.core.astr_agent_tool_exec import FunctionToolExecutor
from astrbot.core.astrbot_config_mgr import AstrBotConfigManager
from astrbot.core.message.components import BaseMessageComponent, Image, Plain
from astrbot.core.message.message_event_result import MessageChain
from astrbot.core.pipeline.scheduler import PipelineContext, PipelineScheduler
from astrbot.core.platform.astr_message_event import AstrMessageEvent
from astrbot.core.platform.astrbot_message import AstrBotMessage, Group, MessageMember
from astrbot.core.platform.message_type import MessageType
from astrbot.core.platform.platform_metadata import PlatformMetadata
from astrbot.core.provider.register import llm_tools
from astrbot.core.star.context import Context
from astrbot.core.star.star import star_registry
from astrbot.core.star.star_manager import PluginManager
from astrbot.core.umop_config_router import UmopConfigRouter

REPO_ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIR_NAME = "astrbot_plugin_gemini25_image_openrouter"
TOOL_NAME = "gemini-pic-gen"
ADMIN_ID = "90001"  # made a bot admin by the `admin` fixture
# Where the in-process AstrBot's plugin points until a test gives it a fake: a loopback port
# nothing listens on (discard), so a start-up model check is refused at once instead of
# reaching openrouter.ai from a test run.
OFFLINE_API_BASE = "http://127.0.0.1:9"
# What is not part of the plugin: one list for the tests' copies and `make run`'s mount.
_NOT_PLUGIN_FILES = [
    line.strip()
    for line in (REPO_ROOT / ".ci" / "not-plugin-files").read_text(encoding="utf-8").splitlines()
    if line.strip() and not line.startswith("#")
]
_COPY_IGNORE = shutil.ignore_patterns(*_NOT_PLUGIN_FILES)


class RecordingEvent(AstrMessageEvent):
    """A real AstrMessageEvent whose platform is a list: send() records each chain."""

    def __init__(self, message_obj: AstrBotMessage, meta: PlatformMetadata) -> None:
        super().__init__(message_obj.message_str, message_obj, meta, message_obj.session_id)
        self.sent: list[MessageChain] = []
        # An adapter that fails: every send() raises this instead of sending.
        self.send_error: Exception | None = None
        # A slow adapter: every send() waits for this first.
        self.send_gate: asyncio.Event | None = None

    async def send(self, message: MessageChain) -> None:
        if self.send_gate is not None:
            await self.send_gate.wait()
        if self.send_error is not None:
            raise self.send_error
        self.sent.append(message)
        await super().send(message)

    def sent_images(self) -> list[Image]:
        return [c for chain in self.sent for c in chain.chain if isinstance(c, Image)]

    def sent_text(self) -> str:
        return "".join(c.text for chain in self.sent for c in chain.chain if isinstance(c, Plain))

    def sent_texts(self) -> list[str]:
        """The text of each message sent that has text, in order."""
        return [
            "".join(c.text for c in chain.chain if isinstance(c, Plain))
            for chain in self.sent
            if any(isinstance(c, Plain) for c in chain.chain)
        ]


def image_path(image: Image) -> Path:
    """Where a sent Image component's file is (`file_image()` stores a file:// URI)."""
    return Path(image.path or image.file.removeprefix("file://"))


class RecordingPlatform:
    """A platform adapter in AstrBot's platform manager, for what the plugin sends without an
    event (Context.send_message: a request that outlived its tool call). Records each chain
    with the chat (unified_msg_origin) it went to."""

    def __init__(self, platform_id: str = "test") -> None:
        self.platform_id = platform_id
        self.sent: list[tuple[str, MessageChain]] = []

    def meta(self) -> PlatformMetadata:
        return PlatformMetadata(name="aiocqhttp", description="test platform", id=self.platform_id)

    async def send_by_session(self, session: Any, message_chain: MessageChain) -> None:
        self.sent.append((str(session), message_chain))

    def images(self) -> list[Image]:
        return [c for _, chain in self.sent for c in chain.chain if isinstance(c, Image)]

    def text(self) -> str:
        return "".join(c.text for _, ch in self.sent for c in ch.chain if isinstance(c, Plain))


def make_message(
    text: str = "画一只猫",
    components: list[BaseMessageComponent] | None = None,
    *,
    sender_id: str = "10001",
    group_id: str | None = "20002",
) -> AstrBotMessage:
    message = AstrBotMessage()
    message.type = MessageType.GROUP_MESSAGE if group_id else MessageType.FRIEND_MESSAGE
    message.self_id = "99999"
    message.session_id = group_id or sender_id
    message.message_id = "m1"
    if group_id:
        message.group = Group(group_id=group_id)
    message.sender = MessageMember(user_id=sender_id, nickname="tester")
    message.message = [Plain(text), *(components or [])]
    message.message_str = text
    message.raw_message = None
    return message


def make_event(
    text: str = "画一只猫",
    components: list[BaseMessageComponent] | None = None,
    *,
    sender_id: str = "10001",
    group_id: str | None = "20002",
    role: str = "member",
    platform: str = "aiocqhttp",
    platform_id: str = "test",
) -> RecordingEvent:
    """`platform` is the adapter's kind, `platform_id` the instance (AstrBot may run several
    of one kind, e.g. two QQ bots)."""
    message = make_message(text, components, sender_id=sender_id, group_id=group_id)
    meta = PlatformMetadata(name=platform, description="test platform", id=platform_id)
    event = RecordingEvent(message, meta)
    event.role = role
    return event


def make_qq_event(api_root: str, text: str = "画一只猫", **kwargs: Any) -> AstrMessageEvent:
    """AstrBot's real QQ (aiocqhttp) event, its bot talking OneBot HTTP to `api_root`."""
    from aiocqhttp import CQHttp
    from astrbot.core.platform.sources.aiocqhttp.aiocqhttp_message_event import (
        AiocqhttpMessageEvent,
    )

    message = make_message(text, **kwargs)
    meta = PlatformMetadata(name="aiocqhttp", description="OneBot v11", id="napcat")
    bot = CQHttp(api_root=api_root, api_timeout_sec=10)
    return AiocqhttpMessageEvent(message.message_str, message, meta, message.session_id, bot)


async def memory_on_disk(plugin: Any) -> dict[str, Any]:
    """A plugin instance's conversation memory file (utils/chat/memory.py) once its writes so
    far are done (it writes behind the requests)."""
    memory = plugin.pipeline.shared.memory
    await memory.flush()
    return json.loads(Path(memory.path).read_text(encoding="utf-8"))


def registered_plugin() -> Any:
    """The instance AstrBot built for the plugin (a new one after every reload)."""
    return next(
        m.star_cls for m in star_registry if m.root_dir_name == PLUGIN_DIR_NAME and m.star_cls
    )


@dataclass
class LoadedAstrBot:
    root: Path
    context: Context
    manager: PluginManager
    plugin_dir: Path
    platform: RecordingPlatform = field(default_factory=RecordingPlatform)
    errors: list[str] = field(default_factory=list)
    _scheduler: PipelineScheduler | None = None
    # The plugin config as AstrBot built it at load (the schema's defaults): restart() puts it back.
    pristine_config: dict[str, Any] = field(default_factory=dict)

    @property
    def plugin(self) -> Any:
        return registered_plugin()

    @property
    def tool(self) -> Any:
        return llm_tools.get_full_tool_set().get_tool(TOOL_NAME)

    async def reload(self) -> Any:
        """Reload the plugin the way a config save in the panel does (terminate(), new
        instance); return the new instance."""
        name = next(m.name for m in star_registry if m.root_dir_name == PLUGIN_DIR_NAME)
        ok, err = await self.manager.reload(name)
        if not ok:
            raise RuntimeError(f"plugin failed to reload: {err}")
        return self.plugin

    async def restart(
        self, saved: dict[str, Any] | None = None, *, forget: bool = False, **values: Any
    ) -> Any:
        """Start the registered instance afresh through its own lifecycle: terminate() (the
        requests in flight finish), its config back to what AstrBot loaded plus `saved` (what
        an admin saved in the panel before this start: read by initialize(), e.g. the tool's
        language), initialize() (a new pipeline, key pool, limiter, ledger connection), then
        `values` on top, as a test would set them after a reload. A test gets what a reload
        gives it, without AstrBot re-importing the plugin and re-checking its requirements
        (~0.3 s each); tests about reloads call reload(). `forget`: the conversation memory's
        file is removed while the plugin is down, so it starts remembering nothing (as on a
        fresh install); otherwise it reads back what it remembered, as after a restart."""
        plugin = self.plugin
        await plugin.terminate()
        if forget:
            Path(plugin.pipeline.shared.memory.path).unlink(missing_ok=True)
        config = plugin.config
        config.clear()
        config.update(copy.deepcopy(self.pristine_config))
        config.update(saved or {})
        await plugin.initialize()
        config.update(values)
        self.platform.sent.clear()  # what earlier tests sent without an event
        return plugin

    @contextlib.asynccontextmanager
    async def instance(self, **collaborators: Any) -> AsyncIterator[Any]:
        """A second instance of the loaded plugin class on the live context and config, built
        with constructor arguments (e.g. a virtual clock); initialized and terminated here."""
        registered = self.plugin
        plugin = type(registered)(self.context, registered.config, **collaborators)
        await plugin.initialize()
        try:
            yield plugin
        finally:
            await plugin.terminate()

    def tool_of(self, plugin: Any) -> Any:
        """The registered tool bound to `plugin`, as AstrBot binds it to the instance it built."""
        # The raw registered tool: 4.28 hands out permission-checking proxies without a handler.
        tool = copy.copy(next(t for t in llm_tools.func_list if t.name == TOOL_NAME))
        raw = tool.handler.func if isinstance(tool.handler, functools.partial) else tool.handler
        tool.handler = functools.partial(raw, plugin)
        return tool

    async def run_tool(
        self, event: RecordingEvent, timeout: int = 60, *, plugin: Any = None, **args: Any
    ) -> list[str]:
        """Execute the tool through AstrBot's executor; return the texts handed to the model.
        `plugin`: an instance from instance() instead of the registered one."""
        tool = self.tool if plugin is None else self.tool_of(plugin)
        return await self.call_tool(tool, event, timeout, **args)

    async def call_tool(
        self, tool: Any, event: RecordingEvent, timeout: int = 60, **args: Any
    ) -> list[str]:
        """run_tool with a tool looked up beforehand (`self.tool`). For many calls at once or
        measurements: AstrBot rebuilds and re-validates the whole tool set on each lookup (tens
        of ms of jsonschema work), which would swamp what is measured."""
        wrapper = ContextWrapper(
            context=AstrAgentContext(context=self.context, event=event), tool_call_timeout=timeout
        )
        texts: list[str] = []
        async for result in FunctionToolExecutor.execute(tool, wrapper, **args):
            if result is None:
                continue
            texts.extend(getattr(c, "text", "") for c in result.content)
        return texts

    async def dispatch(self, event: RecordingEvent) -> RecordingEvent:
        """Run a chat message through AstrBot's own pipeline, as a platform adapter would.

        The scheduler is built the way core_lifecycle builds one per config: every stage is
        AstrBot's (wake prefix, permission filter, command filters, star handlers, respond).
        """
        if self._scheduler is None:
            # AstrBot's own per-session flood guard (20 messages/min, then it stalls) would
            # pause a test session that sends many messages from one chat; it is not ours.
            # (0 switches it off on 4.28+; 4.14.6 has no off switch and fails on 0, so: huge.)
            astrbot_config["platform_settings"]["rate_limit"]["count"] = 1_000_000
            scheduler = PipelineScheduler(pipeline_context(self.manager))
            await scheduler.initialize()
            self._scheduler = scheduler
        await self._scheduler.execute(event)
        return event


async def initialize(component: Any) -> None:
    """4.28+ loads SharedPreferences and AstrBotConfigManager in an async initialize();
    4.14.6 does it in __init__ and has no such method."""
    init = getattr(component, "initialize", None)
    if init is not None:
        await init()


def pipeline_context(manager: PluginManager) -> PipelineContext:
    """4.28+'s PipelineContext also takes the database; 4.14.6's has three fields."""
    args: list[Any] = [astrbot_config, manager, "default"]
    if "db_helper" in {f.name for f in dataclasses.fields(PipelineContext)}:
        args.append(db_helper)
    return PipelineContext(*args)


def copy_plugin_files(dest: Path) -> Path:
    """Copy this checkout without tests, VCS, venvs, caches and generated images to `dest`."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(REPO_ROOT, dest, ignore=_COPY_IGNORE)
    return dest


def plain_settings(base_url: str, api_key: str) -> dict[str, Any]:
    """Plugin config for runs that see only their own traffic: one key, the fake's address, no
    translation, no progress message, no rate limits, no NapCat push."""
    return {
        "openrouter_api_keys": [api_key],
        "openrouter_api_key": "",
        "custom_api_base": base_url,
        "model_name": "google/gemini-2.5-flash-image",
        "max_retry_attempts": 3,
        "nap_server_address": "localhost",
        "translate_prompt": False,
        "progress_message": False,
        "user_requests_per_minute": 0,
        "group_requests_per_minute": 0,
        "group_allowlist": [],
        "group_denylist": [],
    }


def install_plugin(root: Path) -> Path:
    """Copy this checkout (without dev files) into `<root>/data/plugins/<dir>`, as AstrBot's
    installer would lay it out; return the plugin directory."""
    plugin_dir = copy_plugin_files(root / "data" / "plugins" / PLUGIN_DIR_NAME)
    (root / "data" / "config").mkdir(parents=True, exist_ok=True)
    return plugin_dir


async def load_plugin(root: Path) -> LoadedAstrBot:
    plugin_dir = install_plugin(root)
    config_file = root / "data" / "config" / f"{PLUGIN_DIR_NAME}_config.json"
    if not config_file.exists():
        config_file.write_text(json.dumps({"custom_api_base": OFFLINE_API_BASE}))
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    await db_helper.initialize()
    await initialize(sp)
    provider_manager = MagicMock()
    provider_manager.llm_tools = llm_tools
    # The real config manager: Context.get_config(umo) answers through it.
    router = UmopConfigRouter(sp=sp)
    await router.initialize()
    config_manager = AstrBotConfigManager(default_config=astrbot_config, ucr=router, sp=sp)
    await initialize(config_manager)
    platform, conversations, history, personas, kb, cron = (MagicMock() for _ in range(6))
    recording = RecordingPlatform()
    platform.platform_insts = [recording]
    context = Context(
        asyncio.Queue(),
        astrbot_config,
        db_helper,
        provider_manager,
        platform,
        conversations,
        history,
        personas,
        config_manager,
        kb,
        cron,
        None,
    )
    manager = PluginManager(context, astrbot_config)
    ok, err = await manager.load(specified_dir_name=PLUGIN_DIR_NAME)
    if not ok:
        raise RuntimeError(f"plugin failed to load: {err}")
    loaded = LoadedAstrBot(root, context, manager, plugin_dir, recording)
    loaded.pristine_config = copy.deepcopy(dict(loaded.plugin.config))
    return loaded
