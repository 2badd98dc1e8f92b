"""Sender and receiver of utils/file_send_server.py, over real TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import glob
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from utils.file_send_server import (
    TOKEN_RECIPE,
    FileTransferError,
    Receiver,
    _send_chunks,
    build_parser,
    is_loopback_host,
    main,
    safe_name,
    send_file,
)

MODULE_PATH = Path(__file__).resolve().parent.parent / "utils" / "file_send_server.py"
STORED_RE = re.compile(r"^fsr_[0-9a-f]{16}_(?P<name>.+)$")
MIB = 1024 * 1024


# ------------------------------------------------------------------ helpers


def make_file(directory: Path, name: str, size: int) -> tuple[Path, bytes]:
    data = os.urandom(size)
    path = directory / name
    path.write_bytes(data)
    return path, data


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def frame(
    name: bytes, data: bytes, *, size: int | None = None, token: bytes | None = None
) -> bytes:
    """The request exactly as the original protocol (plus the optional auth block) spells it."""
    auth = b"" if token is None else struct.pack(">II", 0, len(token)) + token
    announced = len(data) if size is None else size
    return auth + struct.pack(">I", len(name)) + name + struct.pack(">Q", announced) + data


async def read_answer(reader: asyncio.StreamReader) -> tuple[str, str]:
    """('path', p) for a success reply, ('refused', reason) for a refusal."""
    (length,) = struct.unpack(">I", await reader.readexactly(4))
    if length == 0:
        (reason_len,) = struct.unpack(">I", await reader.readexactly(4))
        return "refused", (await reader.readexactly(reason_len)).decode()
    return "path", (await reader.readexactly(length)).decode()


async def raw_upload(port: int, payload: bytes) -> tuple[str, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(read_answer(reader), 5)
    finally:
        writer.close()


async def closed_within(reader: asyncio.StreamReader, limit: float) -> float:
    """Seconds until the peer closes the connection (fails past ``limit``)."""
    start = time.monotonic()
    try:
        while await asyncio.wait_for(reader.read(65536), limit):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - start


def content(path: str | Path) -> bytes:
    return Path(path).read_bytes()


def exists(path: str | Path) -> bool:
    return os.path.lexists(path)


def is_link(path: Path) -> bool:
    return path.is_symlink()


def assert_stored(path: str, directory: Path, data: bytes) -> str:
    """The file is directly inside ``directory``, safely named, with the same bytes."""
    stored = Path(path)
    assert stored.is_absolute()
    assert stored.parent == directory
    match = STORED_RE.match(stored.name)
    assert match, stored.name
    assert not any(ch in stored.name for ch in "/\\\x00") and stored.name.isprintable()
    assert len(stored.name.encode()) <= 200
    assert stored.read_bytes() == data
    return match.group("name")


@asynccontextmanager
async def raw_server(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def receiver(directory: Path, **options) -> Receiver:
    return Receiver(directory, host="127.0.0.1", port=0, **options)


# --------------------------------------------------------------- round trips


@pytest.mark.asyncio
@pytest.mark.parametrize("size", [1 * MIB, 20 * MIB])
async def test_round_trip_keeps_bytes(tmp_path: Path, size: int) -> None:
    source, data = make_file(tmp_path, "gemini image.png", size)
    async with receiver(tmp_path / "inbox") as rx:
        remote = await send_file(source, "127.0.0.1", rx.port)
        assert assert_stored(remote, rx.directory, data) == "gemini image.png"
        assert os.listdir(rx.directory) == [Path(remote).name]


@pytest.mark.asyncio
async def test_empty_file_round_trip(tmp_path: Path) -> None:
    source, data = make_file(tmp_path, "empty.png", 0)
    async with receiver(tmp_path / "inbox") as rx:
        remote = await send_file(str(source), "127.0.0.1", rx.port)
        assert_stored(remote, rx.directory, data)


def recorder(count: int, sink: list[bytes]):
    """A stand-in receiver that records ``count`` bytes and answers a fixed path."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sink.append(await reader.readexactly(count))
        writer.write(struct.pack(">I", 13) + b"/srv/in/a.png")
        await writer.drain()
        writer.close()

    return handler


@pytest.mark.asyncio
@pytest.mark.parametrize("token", [None, "s3cret"])
async def test_sender_bytes_match_the_protocol(tmp_path: Path, token: str | None) -> None:
    source, data = make_file(tmp_path, "a.png", 300_000)
    # Without a token the bytes must be exactly the original protocol.
    expected = frame(b"a.png", data, token=token.encode() if token else None)
    captured: list[bytes] = []
    async with raw_server(recorder(len(expected), captured)) as port:
        assert await send_file(source, "127.0.0.1", port, token=token) == "/srv/in/a.png"
    assert captured == [expected]


@pytest.mark.asyncio
async def test_chunked_fallback_round_trip(tmp_path: Path) -> None:
    """The path used when loop.sendfile is unavailable (SSL, uvloop) sends the same bytes."""
    source, data = make_file(tmp_path, "b.png", 3 * MIB + 17)
    async with receiver(tmp_path / "inbox") as rx:
        reader, writer = await asyncio.open_connection("127.0.0.1", rx.port)
        writer.write(frame(b"b.png", b"", size=len(data)))
        fh = await asyncio.to_thread(open, source, "rb")
        try:
            assert await _send_chunks(writer, fh, 0, len(data)) == len(data)
        finally:
            fh.close()
        kind, remote = await asyncio.wait_for(read_answer(reader), 5)
        writer.close()
        assert kind == "path"
        assert_stored(remote, rx.directory, data)


@pytest.mark.asyncio
async def test_concurrent_uploads_get_distinct_paths(tmp_path: Path) -> None:
    # Every file has the same base name: uniqueness must come from the receiver.
    files = []
    for i in range(10):
        (tmp_path / str(i)).mkdir()
        files.append(make_file(tmp_path / str(i), "same.png", 200_000 + i))
    async with receiver(tmp_path / "inbox") as rx:
        remotes = await asyncio.gather(
            *(send_file(path, "127.0.0.1", rx.port) for path, _ in files)
        )
        assert len(set(remotes)) == 10
        for remote, (_, data) in zip(remotes, files, strict=True):
            assert_stored(remote, rx.directory, data)


@pytest.mark.asyncio
async def test_same_name_twice_never_overwrites(tmp_path: Path) -> None:
    async with receiver(tmp_path / "inbox") as rx:
        first = await raw_upload(rx.port, frame(b"x.png", b"one"))
        second = await raw_upload(rx.port, frame(b"x.png", b"two"))
        assert first[1] != second[1]
        assert content(first[1]) == b"one"
        assert content(second[1]) == b"two"


# ------------------------------------------------------------ hostile input


HOSTILE_NAMES = [
    (b"../../etc/passwd", "passwd"),
    (b"..\\..\\win.ini", "win.ini"),
    (b"/abs/path.png", "path.png"),
    (b"C:\\x\\y.png", "y.png"),
    (b"ev\x00il\x01\x1b[31m.png", "evil[31m.png"),
    (b"..", "file"),
    (b"a/b/..", "file"),
    (b" .hidden. ", "hidden"),
    (b'CON:<>|?*".png', "CON_______.png"),
    ("\u202egnp.exe".encode(), "gnp.exe"),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("name", "expected"), HOSTILE_NAMES)
async def test_hostile_names_stay_inside_dir(tmp_path: Path, name: bytes, expected: str) -> None:
    async with receiver(tmp_path / "inbox") as rx:
        kind, remote = await raw_upload(rx.port, frame(name, b"payload"))
        assert kind == "path"
        assert assert_stored(remote, rx.directory, b"payload") == expected
    assert os.listdir(tmp_path) == ["inbox"]


@pytest.mark.asyncio
async def test_long_and_non_utf8_names(tmp_path: Path) -> None:
    async with receiver(tmp_path / "inbox") as rx:
        _, remote = await raw_upload(rx.port, frame(b"a" * 996 + b".png", b"1"))
        kept = assert_stored(remote, rx.directory, b"1")
        assert kept.endswith(".png") and len(kept) <= 100

        _, remote = await raw_upload(rx.port, frame("图".encode() * 300 + b".jpg", b"2"))
        kept = assert_stored(remote, rx.directory, b"2")
        assert kept.endswith(".jpg") and len(kept.encode()) <= 150

        _, remote = await raw_upload(rx.port, frame(b"\xff\xfe\x80bad\xc3.png", b"3"))
        kept = assert_stored(remote, rx.directory, b"3")
        assert kept == "___bad_.png"


def test_safe_name_examples() -> None:
    assert safe_name(b"photo.png") == "photo.png"
    assert safe_name("猫.webp".encode()) == "猫.webp"
    assert safe_name(b"x" * 50 + b"." + b"e" * 40) == "x" * 50 + "." + "e" * 40
    assert safe_name(b"...") == "file"
    assert safe_name(b"\\\\server\\share\\") == "file"


@pytest.mark.asyncio
async def test_name_length_over_limit_is_refused(tmp_path: Path) -> None:
    async with receiver(tmp_path / "inbox") as rx:
        kind, reason = await raw_upload(rx.port, struct.pack(">I", 5000))
        assert kind == "refused" and "name too long" in reason
        assert os.listdir(rx.directory) == []


@pytest.mark.asyncio
async def test_oversize_announcement_refused_without_reading(tmp_path: Path) -> None:
    async with receiver(tmp_path / "inbox", max_bytes=MIB) as rx:
        start = time.monotonic()
        # 1 TB announced and nothing sent: the refusal must not wait for any content.
        kind, reason = await raw_upload(rx.port, frame(b"big.png", b"", size=10**12))
        assert kind == "refused" and "too large" in reason
        assert time.monotonic() - start < 1
        assert os.listdir(rx.directory) == []


@pytest.mark.asyncio
async def test_oversize_file_refused_and_sender_raises(tmp_path: Path) -> None:
    source, _ = make_file(tmp_path, "big.png", 2 * MIB)
    async with receiver(tmp_path / "inbox", max_bytes=MIB) as rx:
        with pytest.raises(FileTransferError, match="refused by receiver: file too large"):
            await send_file(source, "127.0.0.1", rx.port, total_timeout=5)
        assert os.listdir(rx.directory) == []


@pytest.mark.asyncio
async def test_client_stopping_mid_file_is_dropped(tmp_path: Path) -> None:
    async with receiver(tmp_path / "inbox", timeout=0.3) as rx:
        reader, writer = await asyncio.open_connection("127.0.0.1", rx.port)
        writer.write(frame(b"half.png", b"x" * 100_000, size=MIB))
        await writer.drain()
        await asyncio.sleep(0.1)
        assert len(os.listdir(rx.directory)) == 1  # the temp file of the upload
        assert await closed_within(reader, 2) < 1.5
        writer.close()
        assert os.listdir(rx.directory) == []


@pytest.mark.asyncio
async def test_silent_client_is_dropped(tmp_path: Path) -> None:
    async with receiver(tmp_path / "inbox", timeout=0.3) as rx:
        reader, writer = await asyncio.open_connection("127.0.0.1", rx.port)
        assert await closed_within(reader, 2) < 1.5
        writer.close()
        assert os.listdir(rx.directory) == []


@pytest.mark.asyncio
async def test_trickling_client_hits_total_timeout(tmp_path: Path) -> None:
    async with receiver(tmp_path / "inbox", timeout=0.3, total_timeout=0.6) as rx:
        reader, writer = await asyncio.open_connection("127.0.0.1", rx.port)
        writer.write(frame(b"slow.png", b"", size=1000))

        async def trickle() -> None:
            # Never idle long enough for the per-read timeout: only the total one applies.
            for _ in range(40):
                writer.write(b"x")
                await asyncio.sleep(0.05)

        trickler = asyncio.ensure_future(trickle())
        try:
            assert await closed_within(reader, 3) < 1.5
        finally:
            trickler.cancel()
            writer.close()
        assert os.listdir(rx.directory) == []


# ------------------------------------------------------------- sender errors


@pytest.mark.asyncio
async def test_receiver_down_raises_refused(tmp_path: Path) -> None:
    source, _ = make_file(tmp_path, "a.png", 10)
    port = free_port()
    start = time.monotonic()
    with pytest.raises(FileTransferError, match=rf"127\.0\.0\.1:{port}.*connection refused"):
        await send_file(source, "127.0.0.1", port, connect_timeout=1, total_timeout=2)
    assert time.monotonic() - start < 1


@pytest.mark.asyncio
async def test_receiver_that_never_replies_times_out(tmp_path: Path) -> None:
    source, _ = make_file(tmp_path, "a.png", 2 * MIB)

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass
        await asyncio.sleep(10)

    async with raw_server(swallow) as port:
        start = time.monotonic()
        with pytest.raises(FileTransferError, match="timeout"):
            await send_file(source, "127.0.0.1", port, connect_timeout=0.5, total_timeout=0.5)
        assert time.monotonic() - start < 2


@pytest.mark.asyncio
async def test_receiver_closing_early_raises(tmp_path: Path) -> None:
    source, _ = make_file(tmp_path, "a.png", 1000)

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async with raw_server(hang_up) as port:
        with pytest.raises(FileTransferError, match="closed early"):
            await send_file(source, "127.0.0.1", port, total_timeout=2)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "reply",
    [struct.pack(">I", 10**9), struct.pack(">I", 3) + b"a/b", struct.pack(">I", 2) + b"\xff\xfe"],
)
async def test_bad_reply_raises(tmp_path: Path, reply: bytes) -> None:
    source, data = make_file(tmp_path, "a.png", 1000)

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(len(frame(b"a.png", data)))
        writer.write(reply)
        await writer.drain()
        writer.close()

    async with raw_server(garbage) as port:
        with pytest.raises(FileTransferError, match="bad reply"):
            await send_file(source, "127.0.0.1", port, total_timeout=2)


@pytest.mark.asyncio
async def test_missing_local_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileTransferError, match="cannot read local file"):
        await send_file(tmp_path / "nope.png", "127.0.0.1", free_port())


# --------------------------------------------------------------------- token


@pytest.mark.asyncio
async def test_token_right_missing_wrong(tmp_path: Path) -> None:
    source, data = make_file(tmp_path, "t.png", 500_000)
    async with receiver(tmp_path / "inbox", token="correct horse") as rx:
        remote = await send_file(source, "127.0.0.1", rx.port, token="correct horse")
        assert_stored(remote, rx.directory, data)
        with pytest.raises(FileTransferError, match="refused by receiver: authentication required"):
            await send_file(source, "127.0.0.1", rx.port, total_timeout=5)
        with pytest.raises(FileTransferError, match="refused by receiver: wrong token"):
            await send_file(source, "127.0.0.1", rx.port, token="battery staple", total_timeout=5)
        # An empty token (the plugin's config default) means no token.
        with pytest.raises(FileTransferError, match="authentication required"):
            await send_file(source, "127.0.0.1", rx.port, token="", total_timeout=5)
        assert os.listdir(rx.directory) == [Path(remote).name]


@pytest.mark.asyncio
async def test_token_is_accepted_by_receiver_without_token(tmp_path: Path) -> None:
    source, data = make_file(tmp_path, "t.png", 1000)
    async with receiver(tmp_path / "inbox") as rx:
        remote = await send_file(source, "127.0.0.1", rx.port, token="anything")
        assert_stored(remote, rx.directory, data)


# ----------------------------------------------------------------- retention


@pytest.mark.asyncio
async def test_retention_removes_only_its_own_old_files(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "precious.png"
    target.write_bytes(b"keep me")
    old = time.time() - 3600
    async with receiver(tmp_path / "inbox", retention_seconds=600) as rx:
        _, old_path = await raw_upload(rx.port, frame(b"old.png", b"o"))
        _, new_path = await raw_upload(rx.port, frame(b"new.png", b"n"))
        inbox = rx.directory
        foreign = inbox / "users_own.png"
        foreign.write_bytes(b"f")
        stale_temp = inbox / ".fsr_part_0123456789abcdef"
        stale_temp.write_bytes(b"t")
        link = inbox / "fsr_0123456789abcdef_link.png"
        link.symlink_to(target)
        for path in (Path(old_path), foreign, stale_temp, target):
            os.utime(path, (old, old))
        os.utime(link, (old, old), follow_symlinks=False)

        assert await rx.cleanup() == 2

        assert not exists(old_path) and not exists(stale_temp)
        assert content(new_path) == b"n"
        assert content(foreign) == b"f"
        assert is_link(link) and content(target) == b"keep me"


@pytest.mark.asyncio
async def test_retention_runs_periodically(tmp_path: Path) -> None:
    async with receiver(tmp_path / "inbox", retention_seconds=0.2, cleanup_interval=0.05) as rx:
        _, stored = await raw_upload(rx.port, frame(b"soon-gone.png", b"x"))
        for _ in range(40):
            if not exists(stored):
                break
            await asyncio.sleep(0.05)
        assert not exists(stored)


# ----------------------------------------------------------------------- CLI


def test_cli_arguments() -> None:
    args = build_parser().parse_args(
        [
            "serve",
            "--dir",
            "/tmp/in",
            "--port",
            "4000",
            "--max-mb",
            "5",
            "--token",
            "t",
            "--retention-minutes",
            "0",
            "--timeout",
            "2.5",
        ]
    )
    assert (args.command, args.dir, args.port, args.max_mb, args.token) == (
        "serve",
        "/tmp/in",
        4000,
        5.0,
        "t",
    )
    assert (args.retention_minutes, args.timeout, args.host) == (0.0, 2.5, "0.0.0.0")
    defaults = build_parser().parse_args(["serve", "--dir", "d"])
    assert (defaults.port, defaults.max_mb, defaults.retention_minutes, defaults.token) == (
        3658,
        50.0,
        30.0,
        None,
    )
    for bad in (
        ["serve"],
        ["serve", "--dir", "d", "--port", "70000"],
        ["serve", "--dir", "d", "--max-mb", "0"],
        [],
    ):
        with pytest.raises(SystemExit) as exc_info:
            main(bad)
        assert exc_info.value.code == 2


def _interpreters() -> list[str]:
    """This Python, plus a working Python 3.8 when one is installed (the receiver's floor)."""
    found = [sys.executable]
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    # pyenv's versions first: its python3.8 shim on PATH exists but may refuse to run.
    candidates = [
        *sorted(glob.glob(f"{pyenv}/versions/3.8*/bin/python3.8")),
        shutil.which("python3.8") or "",
    ]
    for candidate in candidates:
        if (
            candidate
            and subprocess.run(
                [candidate, "-c", "pass"], capture_output=True, check=False
            ).returncode
            == 0
        ):
            found.append(candidate)
            break
    return found


SCRIPT_ENV = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
# An address of TEST-NET-1 (RFC 5737): never assigned here, so binding it fails. Starting the
# receiver there shows whether the token gate let it through without opening any port.
UNASSIGNED = "192.0.2.1"


@dataclass
class Started:
    proc: asyncio.subprocess.Process
    port: int
    banner: str  # the "listening on ..." line


@asynccontextmanager
async def serving(python: str, *args: str) -> AsyncIterator[Started]:
    """`file_send_server.py serve ARGS` as a separate process, up and listening on loopback."""
    proc = await asyncio.create_subprocess_exec(
        python, str(MODULE_PATH), "serve", *args, stderr=asyncio.subprocess.PIPE, env=SCRIPT_ENV
    )
    try:
        assert proc.stderr is not None
        line = (await asyncio.wait_for(proc.stderr.readline(), 10)).decode()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert match, line
        yield Started(proc, int(match.group(1)), line)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def stop(started: Started) -> str:
    """SIGTERM, a clean exit, and the rest of the receiver's log."""
    started.proc.terminate()
    assert await asyncio.wait_for(started.proc.wait(), 5) == 0
    assert started.proc.stderr is not None
    return (await started.proc.stderr.read()).decode()


def run_script(python: str, *args: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    """The module run as a program that must end by itself (a refusal, a failed start)."""
    return subprocess.run(
        [python, str(MODULE_PATH), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=SCRIPT_ENV,
        check=False,
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("python", _interpreters())
async def test_cli_serve_as_script(tmp_path: Path, python: str) -> None:
    inbox = tmp_path / "inbox"
    args = ["--host", "127.0.0.1", "--port", "0", "--dir", str(inbox), "--token", "tok"]
    async with serving(python, *args, "--max-mb", "1", "--timeout", "2") as rx:
        source, data = make_file(tmp_path, "cli.png", 300_000)
        remote = await send_file(source, "127.0.0.1", rx.port, token="tok", total_timeout=5)
        assert_stored(remote, inbox.resolve(), data)
        big, _ = make_file(tmp_path, "big.png", 2 * MIB)
        with pytest.raises(FileTransferError, match="too large"):
            await send_file(big, "127.0.0.1", rx.port, token="tok", total_timeout=5)
        log = await stop(rx)
    assert "name='cli.png' size=300000 as " in log
    assert "refused 127.0.0.1:" in log and "name='big.png' size=2097152: file too large" in log


# ------------------------------------------------------------ closed by default


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.1.2.3", False),
        ("192.0.2.1", False),
        ("fe80::1%eth0", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


@pytest.mark.parametrize("python", _interpreters())
def test_cli_refuses_to_listen_open_beyond_loopback(tmp_path: Path, python: str) -> None:
    inbox = tmp_path / "inbox"
    done = run_script(python, "serve", "--dir", str(inbox), "--port", str(free_port()))
    assert done.returncode == 2
    # One line: what is wrong, how to make a token, how to pass it, how to accept the risk.
    [line] = done.stderr.splitlines()
    assert line.startswith("refusing to listen on 0.0.0.0:")
    assert TOKEN_RECIPE in line and "--token-file token.txt" in line
    assert "nap_transfer_token" in line and "--insecure-no-token" in line
    # The recipe is a working command: it prints a token the receiver accepts.
    recipe = TOKEN_RECIPE.split(" > ")[0].replace("python3", python, 1)
    made = subprocess.run(recipe, shell=True, capture_output=True, text=True, check=True)
    assert len(made.stdout.strip()) >= 32
    # Refused before anything happened: no directory made, nothing listening.
    assert not inbox.exists()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", UNASSIGNED])
def test_every_non_loopback_address_is_refused_without_token(tmp_path: Path, host: str) -> None:
    done = run_script(sys.executable, "serve", "--dir", str(tmp_path / "in"), "--host", host)
    assert done.returncode == 2
    assert done.stderr.startswith(f"refusing to listen on {host}:3658 without a token")


def test_token_or_insecure_flag_lets_it_start_beyond_loopback(tmp_path: Path) -> None:
    """Past the gate, the start fails only at bind() on the unassigned address."""
    token_file = tmp_path / "token.txt"
    token_file.write_text("s3cret\n")
    token_file.chmod(0o600)
    common = ["serve", "--dir", str(tmp_path / "in"), "--host", UNASSIGNED, "--port", "0"]
    for extra in (["--token-file", str(token_file)], ["--token", "s3cret"]):
        done = run_script(sys.executable, *common, *extra)
        assert done.returncode == 1, done.stderr
        assert "refusing" not in done.stderr and "cannot run the receiver" in done.stderr
    done = run_script(sys.executable, *common, "--insecure-no-token")
    assert done.returncode == 1
    assert f"no token on {UNASSIGNED} (--insecure-no-token)" in done.stderr
    assert "cannot run the receiver" in done.stderr


@pytest.mark.asyncio
async def test_loopback_without_token_serves(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    async with serving(
        sys.executable, "--host", "127.0.0.1", "--port", "0", "--dir", str(inbox)
    ) as rx:
        source, data = make_file(tmp_path, "local.png", 1000)
        assert_stored(await send_file(source, "127.0.0.1", rx.port), inbox.resolve(), data)
        assert "token off" in rx.banner
        log = await stop(rx)
    assert "WARNING" not in log


@pytest.mark.asyncio
@pytest.mark.parametrize("python", _interpreters())
async def test_token_file_stays_out_of_the_process_list(tmp_path: Path, python: str) -> None:
    token = "tf-" + os.urandom(12).hex()
    token_file = tmp_path / "token.txt"
    token_file.write_text(token + "\n")  # as the recipe writes it: with a newline
    token_file.chmod(0o600)
    inbox = tmp_path / "inbox"
    args = ["--host", "127.0.0.1", "--port", "0", "--dir", str(inbox)]
    async with serving(python, *args, "--token-file", str(token_file)) as rx:
        assert "token required" in rx.banner
        cmdline = Path(f"/proc/{rx.proc.pid}/cmdline").read_bytes()
        assert token.encode() not in cmdline and str(token_file).encode() in cmdline
        source, data = make_file(tmp_path, "tf.png", 2000)
        # The `send` check reads the same file.
        sent = await asyncio.to_thread(
            run_script,
            python,
            "send",
            str(source),
            "--host",
            "127.0.0.1",
            "--port",
            str(rx.port),
            "--token-file",
            str(token_file),
        )
        assert sent.returncode == 0, sent.stderr
        assert_stored(sent.stdout.strip(), inbox.resolve(), data)
        with pytest.raises(FileTransferError, match="authentication required"):
            await send_file(source, "127.0.0.1", rx.port, total_timeout=5)
        log = await stop(rx)
    assert "readable by other users" not in log and token not in log


def test_token_file_problems_stop_the_start(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    loose = tmp_path / "loose.txt"
    loose.write_text("x" * 2000)
    base = ["serve", "--dir", str(tmp_path / "in"), "--host", "127.0.0.1", "--port", "0"]
    cases = [
        (["--token-file", str(empty)], "is empty"),
        (["--token-file", str(loose)], "longer than 1024 bytes"),
        (["--token-file", str(tmp_path / "missing.txt")], "cannot read token file"),
        (["--token-file", str(empty), "--token", "t"], "not allowed with argument"),
        (["--token", "t", "--insecure-no-token"], "not allowed with argument"),
    ]
    for extra, message in cases:
        done = run_script(sys.executable, *base, *extra)
        assert done.returncode == 2, (extra, done.stderr)
        assert message in done.stderr, (extra, done.stderr)
    assert not (tmp_path / "in").exists()
