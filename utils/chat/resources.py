"""What all requests of one plugin instance share, and when it is let go.

One object for the HTTP session, the CPU workers, the image store (with its held files), the
conversation memory, the key pool, the retry policy, the per-minute limiter, the daily caps, the
translator and the model catalog. The pipeline opens it with the plugin and releases it once the plugin has unloaded and
the last request still using it has ended: a request that outlives the unload finishes on the
resources it started with. After release nothing here opens anything again (`http()` raises
PluginClosedError instead of making a new session that nobody would close).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import aiohttp
from astrbot.api import logger

from ..core.clock import Clock
from ..core.errors import PluginClosedError
from ..core.keys import mask_key
from ..core.settings import Settings
from ..core.workers import CpuPool
from ..imaging.store import ImageStore
from ..openrouter.key_pool import KeyPool
from ..openrouter.model_catalog import ModelCatalog
from ..openrouter.retry_policy import RetryPolicy
from ..spend.guard import SpendGuard
from .limits import RequestLimiter
from .memory import FILE_NAME, ConversationMemory
from .translate import PromptTranslator


class SharedResources:
    def __init__(
        self,
        images_dir: Path,
        clock: Clock,
        *,
        data_dir: Path,
        retention: Callable[[], float],
        retry_policy: RetryPolicy | None = None,
        spend: SpendGuard | None = None,
    ) -> None:
        self.clock = clock
        self.store = ImageStore(images_dir)
        self.cpu = CpuPool()  # Pillow/base64 work of every request, off the event loop
        # The pictures delivered per conversation, kept `retention` seconds in the data directory.
        self.memory = ConversationMemory(
            data_dir / FILE_NAME, self.store, self.cpu, clock, retention
        )
        self.retry_policy = retry_policy or RetryPolicy(clock=clock)
        self.limiter = RequestLimiter(clock=clock)
        # Daily caps and the ledger; without one, nothing is capped or recorded.
        self.spend = spend or SpendGuard(None, clock)
        self.translator = PromptTranslator(clock=clock)
        self.models = ModelCatalog(clock=clock, cpu=self.cpu)
        self._session: aiohttp.ClientSession | None = None
        self._key_pool: KeyPool | None = None
        self._released = False

    @property
    def released(self) -> bool:
        return self._released

    def open(self) -> None:
        """Open the session now, with the plugin, so that nothing needs to open it later."""
        self.http()

    def http(self) -> aiohttp.ClientSession:
        """The one session of the plugin instance (connection reuse across requests)."""
        if self._released:
            raise PluginClosedError("the plugin instance was unloaded: no new HTTP session")
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def key_pool(self, settings: Settings) -> KeyPool:
        """The pool for the configured keys; rebuilt (health forgotten) when the keys change."""
        if self._key_pool is None or self._key_pool.keys != settings.api_keys:
            self._key_pool = KeyPool(settings.api_keys, clock=self.clock)
            masked = ", ".join(mask_key(k) for k in settings.api_keys) or "none"
            logger.info(
                f"gemini-pic-gen: key pool built with {len(settings.api_keys)} key(s): {masked}"
            )
        return self._key_pool

    async def release(self) -> None:
        """Close the session, the workers and the translator; for good."""
        if self._released:
            return
        self._released = True
        session, self._session = self._session, None
        self.cpu.close()
        if session is not None and not session.closed:
            await session.close()
        await self.translator.close()
