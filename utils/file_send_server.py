"""Push a file to the NapCat host over TCP, and the small receiver that runs there.

NapCat (the QQ client) sends an image by reading a local path. When AstrBot and NapCat
run on different hosts, the plugin pushes the generated file to this receiver on the
NapCat host and then hands NapCat the path the receiver reports.

The same file is both the plugin's sender (``send_file``) and the receiver program.
Everything here uses the Python 3.8+ standard library only, because the receiver is
copied to the NapCat host and started there as a plain script::

    python3 -c "import secrets; print(secrets.token_urlsafe(32))" > token.txt
    python3 file_send_server.py serve --port 3658 --dir /srv/napcat-inbox --token-file token.txt

The receiver is closed by default: on an address other than loopback it refuses to start
without a token (``--token-file`` or ``--token``) unless ``--insecure-no-token`` is given.

Wire protocol (one TCP connection per file, integers are unsigned big-endian)
----------------------------------------------------------------------------
Client to receiver::

    [auth block]  uint32 0 | uint32 token_len | token (UTF-8)     optional
    uint32 name_len | name (UTF-8 base name) | uint64 size | size bytes of content

Receiver to client, success::

    uint32 path_len | path (UTF-8 absolute path of the stored file)

Receiver to client, refusal::

    uint32 0 | uint32 reason_len | reason (UTF-8, short English text)

Backward compatibility: without a token both sides speak exactly the original protocol.
A name length of 0 never occurs in the original protocol (every file has a base name),
so a leading ``uint32 0`` unambiguously announces the auth block; likewise an empty path
is never a valid success reply, so a path length of 0 marks a refusal. A receiver
started with ``--token`` refuses clients that send no auth block or a wrong token; a
receiver started without one accepts and ignores an auth block. Configure a token on
the sender only when the receiver runs this version: an older receiver would take the
auth block for a file name and fail the transfer.

After a refusal the receiver half-closes the connection and, for a couple of seconds at
most, reads and discards whatever the client is still sending (nothing is stored), so
that the client can finish writing and read the refusal instead of hitting a reset.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import functools
import hmac
import ipaddress
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import stat
import struct
import sys
import time
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, BinaryIO, TypeVar

DEFAULT_PORT = 3658
MIB = 1024 * 1024
# Large chunks keep per-chunk overhead (thread hops, syscalls) negligible.
CHUNK_SIZE = MIB

MAX_NAME_BYTES = 4096
MAX_TOKEN_BYTES = 1024
MAX_REASON_BYTES = 1024
MAX_PATH_REPLY_BYTES = 64 * 1024

# Stored names: ~100 characters, and few enough UTF-8 bytes that the prefix plus the
# name stays well under the 255-byte limit of common filesystems (CJK is 3 bytes/char).
SAFE_NAME_MAX_CHARS = 100
SAFE_NAME_MAX_BYTES = 150
MAX_SUFFIX_CHARS = 16
# Characters that are separators or reserved on Windows (NapCat often runs there);
# U+FFFD is what undecodable bytes become and is replaced to keep names plain.
_UNSAFE_NAME_CHARS = frozenset('<>:"|?*\ufffd')

STORED_PREFIX = "fsr_"
STORED_NAME_RE = re.compile(r"^fsr_[0-9a-f]{16}_.")
TEMP_PREFIX = ".fsr_part_"
TEMP_NAME_RE = re.compile(r"^\.fsr_part_[0-9a-f]{16}$")

# How long a receiver keeps reading (and discarding) after a refusal.
REFUSAL_LINGER = 2.0
# How long the sender waits for a refusal after its upload broke off.
REPLY_GRACE = 1.0
# Free space the receiver always leaves on the disk.
MIN_FREE_BYTES = 16 * MIB

# asyncio.TimeoutError is an alias of the builtin only from Python 3.11 on; the
# receiver also runs on 3.8, where asyncio.wait_for raises the asyncio one.
_TIMEOUTS = (TimeoutError, asyncio.TimeoutError)

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_T = TypeVar("_T")

logger = logging.getLogger("file_send_server")


class FileTransferError(Exception):
    """Pushing a file to a receiver failed; the message names host:port and the cause."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(f"file transfer to {host}:{port} failed: {reason}")
        self.host = host
        self.port = port
        self.reason = reason


def _create_new(path: Path) -> BinaryIO:
    """A new file for writing bytes; fails if anything exists at `path`."""
    return open(path, "xb")


async def _in_thread(func: Callable[..., _T], *args: Any) -> _T:
    """Run blocking file work in the default executor.

    run_in_executor instead of asyncio.to_thread because the receiver must run on 3.8.
    """
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(func, *args))


# --------------------------------------------------------------------------- framing


def encode_request_header(name: bytes, size: int, token: bytes | None = None) -> bytes:
    """Everything the client sends before the file content."""
    parts = []
    if token is not None:
        parts += [_U32.pack(0), _U32.pack(len(token)), token]
    parts += [_U32.pack(len(name)), name, _U64.pack(size)]
    return b"".join(parts)


def encode_path_reply(path: str) -> bytes:
    data = path.encode("utf-8")
    return _U32.pack(len(data)) + data


def encode_refusal(reason: str) -> bytes:
    data = reason.encode("utf-8")[:MAX_REASON_BYTES]
    return _U32.pack(0) + _U32.pack(len(data)) + data


def _looks_absolute(path: str) -> bool:
    # The receiver may run on Windows, so accept both path flavours.
    return PurePosixPath(path).is_absolute() or PureWindowsPath(path).is_absolute()


# ---------------------------------------------------------------------------- sender


async def send_file(
    path: str | os.PathLike[str],
    host: str,
    port: int,
    *,
    token: str | None = None,
    connect_timeout: float = 5.0,
    total_timeout: float = 30.0,
) -> str:
    """Push ``path`` to the receiver at host:port and return the remote absolute path.

    An empty ``token`` means no token (plugin configs default to ""). Raises
    FileTransferError on any failure, including timeouts.
    """
    try:
        return await asyncio.wait_for(
            _send_file(path, host, port, token, connect_timeout), total_timeout
        )
    except _TIMEOUTS:
        raise FileTransferError(
            host, port, f"timeout: no reply within {total_timeout:g} s"
        ) from None


async def _send_file(
    path: str | os.PathLike[str],
    host: str,
    port: int,
    token: str | None,
    connect_timeout: float,
) -> str:
    token_bytes = token.encode("utf-8") if token else None
    if token_bytes is not None and len(token_bytes) > MAX_TOKEN_BYTES:
        raise FileTransferError(host, port, f"token longer than {MAX_TOKEN_BYTES} bytes")
    local = os.fspath(path)
    try:
        # One trip to a worker thread: check, open and measure the file together.
        fh, size = await _in_thread(_open_regular_file, local)
    except OSError as exc:
        raise FileTransferError(
            host, port, f"cannot read local file {local!r}: {exc.strerror or exc}"
        ) from exc
    try:
        # fsencode keeps undecodable bytes of a POSIX name; the receiver sanitises them.
        name = os.fsencode(os.path.basename(local))
        header = encode_request_header(name, size, token_bytes)
        reader, writer = await _connect(host, port, connect_timeout)
        try:
            return await _exchange(reader, writer, fh, size, header, host, port)
        finally:
            writer.close()
    finally:
        fh.close()


def _open_regular_file(path: str) -> tuple[BinaryIO, int]:
    # Checked before opening: opening a FIFO or a device could block or never end.
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise OSError(errno.EINVAL, "not a regular file")
    fh = open(path, "rb")
    try:
        # The size announced is the size of the file actually opened.
        return fh, os.fstat(fh.fileno()).st_size
    except BaseException:
        fh.close()
        raise


async def _connect(
    host: str, port: int, timeout: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        return await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except _TIMEOUTS:
        raise FileTransferError(
            host, port, f"timeout: cannot connect within {timeout:g} s"
        ) from None
    except OSError as exc:
        raise FileTransferError(host, port, _describe_connect_error(exc)) from exc


def _describe_connect_error(exc: OSError) -> str:
    # With several addresses (e.g. ::1 and 127.0.0.1) asyncio raises a plain OSError
    # whose text lists each failure, so look at the text as well as the type.
    if isinstance(exc, ConnectionRefusedError) or f"[Errno {errno.ECONNREFUSED}]" in str(exc):
        return "connection refused (is the receiver running on that host and port?)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host ({exc})"
    return f"cannot connect ({exc})"


async def _exchange(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    fh: BinaryIO,
    size: int,
    header: bytes,
    host: str,
    port: int,
) -> str:
    """Upload and read the reply concurrently, so an early refusal is seen at once."""
    writer.write(header)
    send_task = asyncio.ensure_future(_send_body(writer, fh, size, host, port))
    reply_task = asyncio.ensure_future(_read_reply(reader, host, port))
    try:
        await asyncio.wait({send_task, reply_task}, return_when=asyncio.FIRST_COMPLETED)
        reply_error = reply_task.exception() if reply_task.done() else None
        if reply_error is not None:
            # A refusal or a hang-up explains more than whatever the upload ran into.
            raise reply_error
        try:
            await send_task
        except OSError as exc:
            # The receiver may have refused and hung up: prefer its reply if it came.
            await asyncio.wait({reply_task}, timeout=REPLY_GRACE)
            if reply_task.done():
                return reply_task.result()
            raise FileTransferError(
                host, port, f"connection closed early while sending ({exc})"
            ) from exc
        return await reply_task
    finally:
        await _cancel_all((send_task, reply_task))


async def _cancel_all(tasks: Sequence[asyncio.Future[Any]]) -> None:
    for task in tasks:
        if not task.done():
            task.cancel()
    # Gather so that no "exception was never retrieved" warning is logged later.
    await asyncio.gather(*tasks, return_exceptions=True)


async def _send_body(
    writer: asyncio.StreamWriter, fh: BinaryIO, size: int, host: str, port: int
) -> None:
    await writer.drain()
    if size == 0:
        return  # loop.sendfile treats count=0 as "until EOF"
    loop = asyncio.get_running_loop()
    try:
        sent = await loop.sendfile(writer.transport, fh, 0, size, fallback=False)
    except (NotImplementedError, RuntimeError):
        # No native sendfile for this transport or loop (SSL, uvloop, ...);
        # SendfileNotAvailableError is a RuntimeError too. Resume where it stopped.
        offset = fh.tell()
        sent = offset + await _send_chunks(writer, fh, offset, size - offset)
    if sent != size:
        raise FileTransferError(
            host, port, f"local file shrank while sending ({sent} of {size} bytes)"
        )


async def _send_chunks(writer: asyncio.StreamWriter, fh: BinaryIO, offset: int, count: int) -> int:
    await _in_thread(fh.seek, offset)
    sent = 0
    while sent < count:
        data = await _in_thread(fh.read, min(CHUNK_SIZE, count - sent))
        if not data:
            break
        writer.write(data)
        await writer.drain()
        sent += len(data)
    return sent


async def _read_reply(reader: asyncio.StreamReader, host: str, port: int) -> str:
    try:
        (length,) = _U32.unpack(await reader.readexactly(4))
        if length == 0:
            (reason_len,) = _U32.unpack(await reader.readexactly(4))
            if reason_len > MAX_REASON_BYTES:
                raise FileTransferError(host, port, "bad reply: refusal reason too long")
            reason = (await reader.readexactly(reason_len)).decode("utf-8", "replace")
            raise FileTransferError(host, port, f"refused by receiver: {reason or 'no reason'}")
        if length > MAX_PATH_REPLY_BYTES:
            raise FileTransferError(host, port, f"bad reply: path length {length}")
        raw = await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise FileTransferError(
            host, port, "connection closed early by receiver (no complete reply)"
        ) from None
    except ConnectionError as exc:
        raise FileTransferError(host, port, f"connection closed early by receiver ({exc})") from exc
    try:
        remote = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FileTransferError(host, port, "bad reply: path is not UTF-8") from None
    if "\x00" in remote or not _looks_absolute(remote):
        raise FileTransferError(host, port, f"bad reply: not an absolute path: {remote[:200]!r}")
    return remote


# -------------------------------------------------------------------------- receiver


def safe_name(raw: bytes) -> str:
    """Turn a client-supplied name into a harmless base name (no directories, no controls)."""
    text = raw.decode("utf-8", "replace")
    # Keep only the last component, whichever separator the sender's OS uses.
    text = re.split(r"[/\\]", text)[-1]
    kept = []
    for ch in text:
        # Category C: NUL and other controls, bidi overrides, surrogates, unassigned.
        if unicodedata.category(ch).startswith("C"):
            continue
        kept.append("_" if ch in _UNSAFE_NAME_CHARS else ch)
    # Leading dots would hide the file (or spell ".."); trailing dots and spaces
    # are silently dropped by Windows.
    text = "".join(kept).strip(" .")
    return _cap_length(text) or "file"


def _cap_length(name: str) -> str:
    stem, ext = os.path.splitext(name)
    if len(ext) > MAX_SUFFIX_CHARS:
        stem, ext = name, ""
    stem = stem[: max(0, SAFE_NAME_MAX_CHARS - len(ext))]
    while stem and len((stem + ext).encode("utf-8")) > SAFE_NAME_MAX_BYTES:
        stem = stem[:-1]
    stem = stem.rstrip(" .")
    return stem + ext if stem else ext.lstrip(".")


class _Refusal(Exception):
    """The request is not acceptable; the message is sent back to the client."""


class _Drop(Exception):
    """The client stalled or went away; there is nobody to answer."""


class _Upload:
    """What is known about one upload so far, for the single log line it gets."""

    def __init__(self, peer: str) -> None:
        self.peer = peer
        self.name: str | None = None
        self.size: int | None = None

    def __str__(self) -> str:
        text = self.peer
        if self.name is not None:
            text += f" name={self.name!r}"
        if self.size is not None:
            text += f" size={self.size}"
        return text


def _peer_name(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("cannot remove %s: %s", path, exc)


class Receiver:
    """Asyncio TCP server that stores uploaded files in ``directory``.

    ``port`` holds the bound port after ``start()`` (pass 0 to pick a free one).
    ``timeout`` is the idle limit per read; ``total_timeout`` bounds a whole upload.
    Stored files (and stale temp files) older than ``retention_seconds`` are deleted
    periodically; 0 disables the cleanup.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        host: str = "0.0.0.0",
        port: int = DEFAULT_PORT,
        max_bytes: int = 50 * MIB,
        retention_seconds: float = 30 * 60,
        token: str | None = None,
        timeout: float = 30.0,
        total_timeout: float = 300.0,
        max_clients: int = 32,
        cleanup_interval: float | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.host = host
        self.port = port
        self.max_bytes = max_bytes
        self.retention_seconds = retention_seconds
        self.timeout = timeout
        self.total_timeout = total_timeout
        self.max_clients = max_clients
        if cleanup_interval is None:
            cleanup_interval = min(60.0, max(1.0, retention_seconds / 4))
        self.cleanup_interval = cleanup_interval
        self._token = token.encode("utf-8") if token else None
        self._server: asyncio.AbstractServer | None = None
        self._cleanup_task: asyncio.Future[None] | None = None
        self._clients: set[asyncio.Future[Any]] = set()
        self._active_temps: set[str] = set()
        self._reserved_bytes = 0

    async def __aenter__(self) -> Receiver:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        self.directory = await _in_thread(_prepare_directory, self.directory)
        self._server = await asyncio.start_server(
            self._handle_client, self.host, self.port, limit=CHUNK_SIZE
        )
        self.port = self._server.sockets[0].getsockname()[1]
        if self.retention_seconds > 0:
            self._cleanup_task = asyncio.ensure_future(self._cleanup_loop())
        logger.info(
            "listening on %s:%d, storing files in %s (max %.1f MiB, retention %s, token %s)",
            self.host,
            self.port,
            self.directory,
            self.max_bytes / MIB,
            f"{self.retention_seconds / 60:g} min" if self.retention_seconds > 0 else "off",
            "required" if self._token else "off",
        )

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        tasks = list(self._clients)
        if self._cleanup_task is not None:
            tasks.append(self._cleanup_task)
            self._cleanup_task = None
        await _cancel_all(tasks)
        await server.wait_closed()

    # ---- retention

    async def cleanup(self) -> int:
        """Delete expired stored files now; returns how many were removed."""
        return await _in_thread(self.cleanup_once, None, frozenset(self._active_temps))

    def cleanup_once(self, now: float | None = None, busy: frozenset[str] = frozenset()) -> int:
        """Blocking cleanup pass; ``busy`` names temp files of uploads in progress."""
        cutoff = (time.time() if now is None else now) - self.retention_seconds
        removed = 0
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if self._is_expired(entry, cutoff, busy):
                    try:
                        os.unlink(entry.path)
                        removed += 1
                    except FileNotFoundError:
                        pass
                    except OSError as exc:
                        logger.warning("retention: cannot remove %s: %s", entry.path, exc)
        if removed:
            logger.info("retention: removed %d expired file(s) from %s", removed, self.directory)
        return removed

    @staticmethod
    def _is_expired(entry: os.DirEntry[str], cutoff: float, busy: frozenset[str]) -> bool:
        # Only names this receiver creates: a user's own files in DIR are left alone.
        ours = STORED_NAME_RE.match(entry.name) or TEMP_NAME_RE.match(entry.name)
        if not ours or entry.name in busy:
            return False
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            return False
        # Plain files only: a symlink, even one named like ours, is never followed or removed.
        return stat.S_ISREG(info.st_mode) and info.st_mtime < cutoff

    async def _cleanup_loop(self) -> None:
        while True:
            try:
                await self.cleanup()
            except Exception:
                logger.exception("retention cleanup failed")
            await asyncio.sleep(self.cleanup_interval)

    # ---- one client

    async def _handle_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        peer = _peer_name(writer)
        try:
            await self._serve_client(reader, writer, peer)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("unexpected error while serving %s", peer)
        finally:
            writer.close()
            self._clients.discard(task)

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        upload = _Upload(peer)
        try:
            if len(self._clients) > self.max_clients:
                raise _Refusal("receiver busy, try again later")
            stored = await asyncio.wait_for(self._receive(reader, upload), self.total_timeout)
        except _Refusal as exc:
            logger.warning("refused %s: %s", upload, exc)
            await self._send_refusal(reader, writer, str(exc))
            return
        except _TIMEOUTS:
            logger.warning("dropped %s: not complete within %g s", upload, self.total_timeout)
            return
        except (_Drop, asyncio.IncompleteReadError, ConnectionError) as exc:
            logger.warning("dropped %s: %s", upload, str(exc) or "connection closed early")
            return
        except OSError as exc:
            logger.error("cannot store %s: %s", upload, exc)
            await self._send_refusal(reader, writer, "receiver cannot store the file")
            return
        logger.info("stored %s as %s", upload, stored)
        writer.write(encode_path_reply(stored))
        try:
            await asyncio.wait_for(writer.drain(), self.timeout)
        except (*_TIMEOUTS, ConnectionError) as exc:
            logger.warning("could not answer %s: %s", peer, str(exc) or "timeout")

    async def _receive(self, reader: asyncio.StreamReader, upload: _Upload) -> str:
        name_len = await self._read_u32(reader)
        if name_len == 0:
            await self._check_token(reader)
            name_len = await self._read_u32(reader)
            if name_len == 0:
                raise _Refusal("empty file name")
        elif self._token is not None:
            raise _Refusal("authentication required")
        if name_len > MAX_NAME_BYTES:
            raise _Refusal(f"file name too long ({name_len} bytes, limit {MAX_NAME_BYTES})")
        raw_name = await self._read_exact(reader, name_len)
        upload.name = raw_name.decode("utf-8", "replace")
        (size,) = _U64.unpack(await self._read_exact(reader, 8))
        upload.size = size
        if size > self.max_bytes:
            raise _Refusal(f"file too large ({size} bytes, limit {self.max_bytes})")
        await self._reserve_space(size)
        try:
            stored = await self._store(reader, safe_name(raw_name), size)
        finally:
            self._reserved_bytes -= size
        return stored

    async def _check_token(self, reader: asyncio.StreamReader) -> None:
        token_len = await self._read_u32(reader)
        if token_len > MAX_TOKEN_BYTES:
            raise _Refusal("token too long")
        supplied = await self._read_exact(reader, token_len)
        if self._token is not None and not hmac.compare_digest(supplied, self._token):
            raise _Refusal("wrong token")

    async def _reserve_space(self, size: int) -> None:
        free = await _in_thread(_free_bytes, self.directory)
        # Count uploads in progress too, so parallel clients cannot fill the disk together.
        if size + self._reserved_bytes + MIN_FREE_BYTES > free:
            raise _Refusal("not enough disk space on the receiver")
        self._reserved_bytes += size

    async def _store(self, reader: asyncio.StreamReader, name: str, size: int) -> str:
        # Write under a temp name and rename at the end: NapCat never sees a partial file.
        temp_name = TEMP_PREFIX + secrets.token_hex(8)
        temp = self.directory / temp_name
        self._active_temps.add(temp_name)
        committed = False
        try:
            fh = await _in_thread(_create_new, temp)
            try:
                await self._copy_body(reader, fh, size)
            finally:
                fh.close()
            stored = await _in_thread(self._commit, temp, name)
            committed = True
            return stored
        finally:
            self._active_temps.discard(temp_name)
            if not committed:
                # Synchronous on purpose: this also runs when the upload is cancelled.
                _unlink_quietly(temp)

    async def _copy_body(self, reader: asyncio.StreamReader, fh: BinaryIO, size: int) -> None:
        loop = asyncio.get_running_loop()
        remaining = size
        received = 0
        parts: list[bytes] = []
        buffered = 0
        pending: asyncio.Future[Any] | None = None
        try:
            while remaining > 0:
                chunk = await self._read_some(reader, min(remaining, CHUNK_SIZE), received, size)
                remaining -= len(chunk)
                received += len(chunk)
                if received > self.max_bytes:  # defensive: size was already checked
                    raise _Refusal("file exceeds the size limit")
                parts.append(chunk)
                buffered += len(chunk)
                if buffered >= CHUNK_SIZE or remaining == 0:
                    if pending is not None:
                        # shield: a cancellation must not orphan a write still running.
                        await asyncio.shield(pending)
                    # The next chunk is read from the network while this one is written.
                    pending = loop.run_in_executor(None, fh.write, b"".join(parts))
                    parts = []
                    buffered = 0
            if pending is not None:
                await asyncio.shield(pending)
        finally:
            if pending is not None and not pending.done():
                # Never let the caller close the file under a write in a worker thread.
                await asyncio.wait([pending])

    def _commit(self, temp: Path, name: str) -> str:
        for _ in range(8):
            final = self.directory / f"{STORED_PREFIX}{secrets.token_hex(8)}_{name}"
            try:
                # Claim the name exclusively first, so os.replace can only ever
                # replace our own empty placeholder and never an existing file.
                open(final, "xb").close()
            except FileExistsError:
                continue
            os.replace(temp, final)
            return str(final)
        raise OSError(errno.EEXIST, "no free file name found")

    async def _send_refusal(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reason: str
    ) -> None:
        try:
            writer.write(encode_refusal(reason))
            await asyncio.wait_for(writer.drain(), REFUSAL_LINGER)
            if writer.can_write_eof():
                writer.write_eof()
            # Discard what the client is still sending so that closing does not
            # reset the connection before the client has read the refusal.
            await asyncio.wait_for(_discard_input(reader), REFUSAL_LINGER)
        except (*_TIMEOUTS, OSError):
            pass

    # ---- reads with an idle timeout

    async def _read_exact(self, reader: asyncio.StreamReader, count: int) -> bytes:
        try:
            return await asyncio.wait_for(reader.readexactly(count), self.timeout)
        except _TIMEOUTS:
            raise _Drop(f"idle for {self.timeout:g} s") from None
        except asyncio.IncompleteReadError:
            raise _Drop("connection closed before the header was complete") from None

    async def _read_u32(self, reader: asyncio.StreamReader) -> int:
        (value,) = _U32.unpack(await self._read_exact(reader, 4))
        return int(value)

    async def _read_some(
        self, reader: asyncio.StreamReader, limit: int, received: int, size: int
    ) -> bytes:
        try:
            data = await asyncio.wait_for(reader.read(limit), self.timeout)
        except _TIMEOUTS:
            raise _Drop(f"idle for {self.timeout:g} s after {received} of {size} bytes") from None
        if not data:
            raise _Drop(f"connection closed after {received} of {size} bytes")
        return data


async def _discard_input(reader: asyncio.StreamReader) -> None:
    while await reader.read(CHUNK_SIZE):
        pass


def _prepare_directory(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    # Resolved once so that every reply is a canonical absolute path.
    return directory.resolve()


def _free_bytes(directory: Path) -> int:
    return shutil.disk_usage(str(directory)).free


# ----------------------------------------------------------------------- exposure


def is_loopback_host(host: str) -> bool:
    """True when every address ``host`` stands for is a loopback address.

    "" and the wildcard addresses (0.0.0.0, ::) listen on every interface, so they are
    not loopback; a name counts only when all the addresses it resolves to are.
    """
    name = host.strip()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if not name:
        return False
    literal = _loopback_literal(name)
    if literal is not None:
        return literal
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False  # the bind fails on it anyway; never call it safe
    addresses = {str(info[4][0]) for info in infos}
    return bool(addresses) and all(_loopback_literal(a) for a in addresses)


def _loopback_literal(text: str) -> bool | None:
    """Whether an IP literal is loopback; None when ``text`` is not an IP literal."""
    try:
        # Python 3.8's ipaddress does not parse IPv6 scope ids ("fe80::1%eth0").
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


TOKEN_RECIPE = 'python3 -c "import secrets; print(secrets.token_urlsafe(32))" > token.txt'


def open_listener_refusal(host: str, port: int, directory: str) -> str:
    """The one line printed when the receiver would listen beyond loopback without a token."""
    return (
        f"refusing to listen on {host or '*'}:{port} without a token: anyone who can reach it "
        f"could store files in {directory}. Make one with  {TOKEN_RECIPE}  and start with "
        "--token-file token.txt (the plugin's nap_transfer_token takes the same text), "
        "or add --insecure-no-token to accept the risk."
    )


def read_token_file(path: str) -> str:
    """The token in ``path`` (surrounding whitespace, such as the final newline, removed)."""
    try:
        with open(path, encoding="utf-8") as fh:
            token = fh.read(MAX_TOKEN_BYTES + 2).strip()
            more = fh.read(1)
        mode = os.stat(path).st_mode
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read token file {path}: {exc}") from exc
    if not token:
        raise ValueError(f"token file {path} is empty")
    if more or len(token.encode("utf-8")) > MAX_TOKEN_BYTES:
        raise ValueError(f"token in {path} is longer than {MAX_TOKEN_BYTES} bytes")
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("token file %s is readable by other users (chmod 600 it)", path)
    return token


def _token_from_args(args: argparse.Namespace) -> str | None:
    if getattr(args, "token_file", None):
        return read_token_file(args.token_file)
    return args.token or None


# ------------------------------------------------------------------------------- CLI


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be between 0 and 65535")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="file_send_server.py",
        description="Receive files for NapCat over TCP, or push one to a receiver.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    serve = commands.add_parser("serve", help="run the receiver on the NapCat host")
    serve.add_argument("--dir", required=True, help="directory to store received files in")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT, help="TCP port (default 3658)")
    serve.add_argument(
        "--max-mb", type=_positive_float, default=50.0, help="size cap in MiB (default 50)"
    )
    serve.add_argument(
        "--retention-minutes",
        type=_non_negative_float,
        default=30.0,
        help="delete stored files older than this; 0 keeps them (default 30)",
    )
    _add_token_options(serve, serving=True)
    serve.add_argument(
        "--timeout",
        type=_positive_float,
        default=30.0,
        help="idle timeout per read, seconds (default 30)",
    )
    serve.add_argument(
        "--total-timeout",
        type=_positive_float,
        default=300.0,
        help="limit for one whole upload, seconds (default 300)",
    )
    serve.add_argument(
        "--max-clients", type=int, default=32, help="concurrent uploads (default 32)"
    )
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    send = commands.add_parser("send", help="push one file to a receiver (connectivity check)")
    send.add_argument("file")
    send.add_argument("--host", required=True)
    send.add_argument("--port", type=_port, default=DEFAULT_PORT)
    _add_token_options(send, serving=False)
    send.add_argument(
        "--timeout", type=_positive_float, default=30.0, help="total timeout, seconds"
    )
    return parser


def _add_token_options(parser: argparse.ArgumentParser, *, serving: bool) -> None:
    who = "clients must present" if serving else "the receiver expects"
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--token-file",
        default=None,
        metavar="FILE",
        help=f"file holding the shared token {who} (kept out of the process list)",
    )
    group.add_argument(
        "--token", default=None, help=f"the shared token {who} (visible to other local users)"
    )
    if serving:
        group.add_argument(
            "--insecure-no-token",
            action="store_true",
            help="listen beyond loopback without a token: anyone who can reach the port "
            "can store files",
        )


async def _run_receiver(receiver: Receiver) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):
            pass  # Windows: Ctrl+C still arrives as KeyboardInterrupt
    await receiver.start()
    try:
        await stop.wait()
    finally:
        await receiver.close()
        logger.info("receiver stopped")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "send":
        return _main_send(args)

    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        token = _token_from_args(args)
    except ValueError as exc:
        print(f"file_send_server.py: {exc}", file=sys.stderr)
        return 2
    if token is None and not is_loopback_host(args.host):
        if not args.insecure_no_token:
            # Checked before anything is created or bound: nothing is ever open by accident.
            print(open_listener_refusal(args.host, args.port, args.dir), file=sys.stderr)
            return 2
        logger.warning(
            "no token on %s (--insecure-no-token): anyone who can reach the port can store "
            "files in %s",
            args.host or "*",
            args.dir,
        )
    receiver = Receiver(
        args.dir,
        host=args.host,
        port=args.port,
        max_bytes=int(args.max_mb * MIB),
        retention_seconds=args.retention_minutes * 60,
        token=token,
        timeout=args.timeout,
        total_timeout=args.total_timeout,
        max_clients=args.max_clients,
    )
    try:
        asyncio.run(_run_receiver(receiver))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        logger.error("cannot run the receiver: %s", exc)
        return 1
    return 0


def _main_send(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        token = _token_from_args(args)
        remote = asyncio.run(
            send_file(args.file, args.host, args.port, token=token, total_timeout=args.timeout)
        )
    except ValueError as exc:
        print(f"file_send_server.py: {exc}", file=sys.stderr)
        return 2
    except FileTransferError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(remote)
    return 0


if __name__ == "__main__":
    sys.exit(main())
