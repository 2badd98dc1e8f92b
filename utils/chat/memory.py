"""The conversation memory: the pictures the plugin delivered in each conversation, so that
"change the picture you just made" needs no picture in the message.

A conversation is one user in one group, or one private chat, always on one platform instance
(`conversation_of`): a picture is never offered to another group, another private chat,
another user of the same group or another platform. Each conversation keeps its last
MAX_TURNS turns: the pictures one request delivered (as they went out), the prompt, model and
number of references that made them and when; the newest turn also the model's text and its
`reasoning_details`, for a model that continues with the previous turn as history
(utils/openrouter/turns.py). At most MAX_CONVERSATIONS conversations are kept: the one least
recently drawn in is forgotten first.

A turn is forgotten `image_retention_minutes` after its delivery. The cleanup calls expire()
before every sweep; a forgotten turn lets its files go with their times as they are (set when
the request that delivered them, or the last one that went on from them, ended), so the sweep
removes them as it would have without the memory. While remembered they are held
(utils/imaging/held.py): the cleanup leaves them alone.

Kept across a config save (a reload) and a restart within the retention time in
`conversation_memory.json` in the plugin's data directory, rewritten atomically (temp file,
fsync, rename) in a worker after every change, and read back on first use. A file rather than
AstrBot's KV store: the whole state is one atomic rename written off the event loop (the KV
store writes through AstrBot's shared database on the loop, and belongs to the Star object,
not to the pipeline that delivers); it sits beside the spend ledger, the plugin's other state;
and what it holds can be read by an admin. Its size is bounded (see the constants).

One asyncio lock orders every change and the write that follows it, so two requests of one
chat finishing at once are both remembered, newest last. After close() (the plugin unloads)
nothing is written any more: a request still finishing on the old instance is not remembered,
and the new instance reads what the old one last wrote.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from astrbot.api import logger
from astrbot.api.event import AstrMessageEvent

from ..core.clock import Clock
from ..core.workers import CpuPool
from ..imaging.held import Hold
from ..imaging.store import ImageStore, is_own_image_name

FILE_NAME = "conversation_memory.json"
FORMAT_VERSION = 1
MAX_TURNS = 3  # per conversation
MAX_PICTURES = 4  # per turn: the first pictures a request delivered
MAX_CONVERSATIONS = 200
MAX_PROMPT_CHARS = 1000
MAX_TEXT_CHARS = 500
# The newest turn's reasoning details, as JSON; bigger ones are not kept (that turn is then
# continued with a plain reference).
MAX_REASONING_BYTES = 32 * 1024


def conversation_of(event: AstrMessageEvent) -> str:
    """The conversation an event belongs to: in a group, the sender in that group; in a
    private chat, that chat; both on the event's platform instance."""
    platform = str(event.get_platform_id() or event.get_platform_name())
    group = str(event.get_group_id() or "")
    if group:
        return f"{platform}:group:{group}:user:{event.get_sender_id()}"
    return f"{platform}:private:{event.get_session_id()}"


@dataclass(frozen=True)
class Turn:
    """One delivered request, as remembered."""

    files: tuple[str, ...]  # names in the image store, as they went out
    prompt: str  # the prompt sent (after translation)
    model: str
    at: float  # when it was delivered (wall clock, epoch seconds)
    references: int = 0  # reference pictures that went into it
    text: str = ""  # what the model said beside the pictures (newest turn only)
    reasoning_details: tuple[Mapping[str, Any], ...] = ()  # as returned (newest turn only)

    def plain(self) -> Turn:
        """Without what only the newest turn needs."""
        return replace(self, text="", reasoning_details=())

    def to_json(self) -> dict[str, Any]:
        return {
            "files": list(self.files),
            "prompt": self.prompt,
            "model": self.model,
            "at": self.at,
            "references": self.references,
            "text": self.text,
            "reasoning_details": [dict(d) for d in self.reasoning_details],
        }

    @classmethod
    def from_json(cls, data: object) -> Turn | None:
        """A turn read back; None for anything that is not one of ours."""
        if not isinstance(data, Mapping):
            return None
        files, at = data.get("files"), data.get("at")
        if not isinstance(files, list) or not files or not isinstance(at, (int, float)):
            return None
        if not all(isinstance(name, str) and is_own_image_name(name) for name in files):
            return None  # never a path: only names the store makes
        details, references = data.get("reasoning_details"), data.get("references")
        return cls(
            files=tuple(files[:MAX_PICTURES]),
            prompt=str(data.get("prompt") or "")[:MAX_PROMPT_CHARS],
            model=str(data.get("model") or ""),
            at=float(at),
            references=references if isinstance(references, int) else 0,
            text=str(data.get("text") or "")[:MAX_TEXT_CHARS],
            reasoning_details=tuple(
                d for d in (details if isinstance(details, list) else ()) if isinstance(d, Mapping)
            ),
        )


def bounded_turn(
    files: Iterable[str],
    prompt: str,
    model: str,
    at: float,
    *,
    references: int = 0,
    text: str = "",
    reasoning_details: Iterable[Mapping[str, Any]] = (),
) -> Turn:
    """A turn within the memory's bounds: its first MAX_PICTURES pictures, prompt and text
    cut, reasoning details left out when over MAX_REASONING_BYTES."""
    details = tuple(reasoning_details)
    size = len(json.dumps([dict(d) for d in details], ensure_ascii=False).encode())
    if size > MAX_REASONING_BYTES:
        logger.info(
            f"gemini-pic-gen: reasoning details of {size} bytes not remembered "
            f"(cap {MAX_REASONING_BYTES}); the picture is continued as a plain reference"
        )
        details = ()
    return Turn(
        files=tuple(files)[:MAX_PICTURES],
        prompt=prompt[:MAX_PROMPT_CHARS],
        model=model,
        at=at,
        references=references,
        text=text[:MAX_TEXT_CHARS],
        reasoning_details=details,
    )


@dataclass
class _Kept:
    turn: Turn
    hold: Hold  # its files, while remembered


def _read(path: Path) -> Any:
    """The file's JSON, or None when there is none yet; temp files a crash left beside it
    are removed. Blocking."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return json.loads(text)


def _write(path: Path, state: dict[str, Any]) -> int:
    """Replace the file with `state` atomically; its size. Blocking."""
    data = json.dumps(state, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return len(data)


def _present(directory: Path, names: Iterable[str]) -> bool:
    """Whether every named file is still there. Blocking (a stat each)."""
    return all((directory / name).is_file() for name in names)


def _present_each(directory: Path, turns: list[Turn]) -> list[bool]:
    """`_present` for many turns in one worker call. Blocking."""
    return [_present(directory, turn.files) for turn in turns]


class ConversationMemory:
    """The turns of every conversation of one plugin instance; see the module doc."""

    def __init__(
        self,
        path: Path,
        store: ImageStore,
        cpu: CpuPool,
        clock: Clock,
        retention: Callable[[], float],
        *,
        max_turns: int = MAX_TURNS,
        max_conversations: int = MAX_CONVERSATIONS,
    ) -> None:
        self.path = path
        self.max_turns = max_turns
        self.max_conversations = max_conversations
        self._store = store
        self._cpu = cpu
        self._clock = clock
        self._retention = retention  # seconds a turn is kept after delivery, read when needed
        # Conversation -> its turns, oldest first; the dict's order is recency of drawing.
        self._conversations: dict[str, list[_Kept]] = {}
        self._lock = asyncio.Lock()
        self._loaded = False
        self._closed = False
        # Write-behind: the newest state waiting for the writer task, which writes one at a
        # time off the request's path (a burst of changes becomes one write).
        self._unsaved: dict[str, Any] | None = None
        self._writer: asyncio.Task[None] | None = None

    # --- reading ---------------------------------------------------------------------------

    async def recall(self, conversation: str, hold: Hold) -> Turn | None:
        """The newest turn of the conversation that is neither expired nor missing a file; its
        files join `hold` (the request's) before anything can forget them."""
        async with self._lock:
            await self._load()
            if self._closed:
                return None
            oldest = self._oldest_kept()
            for kept in reversed(self._conversations.get(conversation, [])):
                if kept.turn.at <= oldest:
                    continue
                if await self._cpu.run(_present, self._store.directory, kept.turn.files):
                    hold.add(self._store.directory / name for name in kept.turn.files)
                    return kept.turn
                logger.info(f"gemini-pic-gen: a remembered picture of {conversation} is gone")
            return None

    def snapshot(self) -> dict[str, tuple[Turn, ...]]:
        """What is remembered now, by conversation (for statistics and tests)."""
        return {key: tuple(k.turn for k in turns) for key, turns in self._conversations.items()}

    # --- changes -----------------------------------------------------------------------------

    async def remember(self, conversation: str, turn: Turn) -> None:
        """Keep a delivered turn as the conversation's newest; older turns lose what only the
        newest needs, the oldest beyond `max_turns` and conversations beyond
        `max_conversations` are forgotten."""
        async with self._lock:
            await self._load()
            if self._closed:
                logger.info("gemini-pic-gen: a picture delivered after unload is not remembered")
                return
            turns = self._conversations.pop(conversation, [])
            for kept in turns:
                kept.turn = kept.turn.plain()
            turns.append(self._keep(turn))
            while len(turns) > self.max_turns:
                self._let_go(turns.pop(0))
            self._conversations[conversation] = turns  # the most recent now
            while len(self._conversations) > self.max_conversations:
                oldest = next(iter(self._conversations))
                for kept in self._conversations.pop(oldest):
                    self._let_go(kept)
            self._save()

    async def expire(self) -> int:
        """Forget the turns older than the retention time (the cleanup calls this before every
        sweep); how many were forgotten."""
        async with self._lock:
            await self._load()
            if self._closed:
                return 0
            oldest = self._oldest_kept()
            forgotten = 0
            for conversation in list(self._conversations):
                turns = self._conversations[conversation]
                keep = [k for k in turns if k.turn.at > oldest]
                for kept in turns:
                    if kept not in keep:
                        self._let_go(kept)
                        forgotten += 1
                if keep:
                    self._conversations[conversation] = keep
                else:
                    del self._conversations[conversation]
            if forgotten:
                logger.info(f"gemini-pic-gen: forgot {forgotten} expired conversation turn(s)")
                self._save()
            return forgotten

    async def close(self) -> None:
        """Unload: the last state written, every file let go (the next instance holds them
        again when it reads the file), nothing written any more."""
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            for turns in self._conversations.values():
                for kept in turns:
                    self._let_go(kept)
            self._conversations.clear()
        await self.flush()

    async def flush(self) -> None:
        """Wait until every change so far is on disk (or its write failed, logged)."""
        if self._writer is not None:
            await asyncio.shield(self._writer)

    # --- internals ----------------------------------------------------------------------------

    def _oldest_kept(self) -> float:
        """Turns made at or before this wall time are expired (the retention is read from the
        config once per call, not once per turn)."""
        return self._clock.wall() - self._retention()

    def _keep(self, turn: Turn) -> _Kept:
        hold = self._store.held.hold()
        hold.add(self._store.directory / name for name in turn.files)
        return _Kept(turn, hold)

    def _let_go(self, kept: _Kept) -> None:
        # Keeping is no use: the files' times stay those of their last use by a request.
        kept.hold.release(None)

    async def _load(self) -> None:
        """Read the file once, on first use: the turns still within the retention whose files
        are all there, held again."""
        if self._loaded:
            return
        self._loaded = True
        try:
            state = await self._cpu.run(_read, self.path)
        except (OSError, ValueError) as exc:
            logger.warning(
                f"gemini-pic-gen: conversation memory not read ({exc!r}); starting empty"
            )
            return
        conversations = state.get("conversations") if isinstance(state, dict) else None
        if not isinstance(conversations, dict):
            return
        oldest = self._oldest_kept()
        candidates: list[tuple[str, Turn]] = []
        for conversation, entries in list(conversations.items())[-self.max_conversations :]:
            turns = [Turn.from_json(e) for e in (entries if isinstance(entries, list) else ())]
            candidates += [
                (str(conversation), turn)
                for turn in turns[-self.max_turns :]
                if turn is not None and turn.at > oldest
            ]
        present = await self._cpu.run(
            _present_each, self._store.directory, [turn for _, turn in candidates]
        )
        for (conversation, turn), there in zip(candidates, present, strict=True):
            if there:
                self._conversations.setdefault(conversation, []).append(self._keep(turn))
        count = sum(len(t) for t in self._conversations.values())
        if count:
            logger.info(
                f"gemini-pic-gen: {count} remembered turn(s) of "
                f"{len(self._conversations)} conversation(s) read back"
            )

    def _save(self) -> None:
        """Have the current state written, off the request's path: the request is done once
        its turn is remembered in memory; the file only serves the next instance."""
        self._unsaved = {
            "version": FORMAT_VERSION,
            "conversations": {
                key: [k.turn.to_json() for k in turns] for key, turns in self._conversations.items()
            },
        }
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_unsaved(), name="gemini-memory-write")

    async def _write_unsaved(self) -> None:
        while self._unsaved is not None:
            state, self._unsaved = self._unsaved, None
            try:
                await self._cpu.run(_write, self.path, state)
            except OSError as exc:  # remembered for this run all the same
                logger.warning(f"gemini-pic-gen: conversation memory not saved: {exc!r}")
