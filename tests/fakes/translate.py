"""A fake Google Translate on loopback, reached the way googletrans really reaches Google.

googletrans 4.0.2 only builds `https://translate.googleapis.com/translate_a/single?client=gtx&...`
(any service URL containing "googleapis" is replaced by that host, and the scheme is always
https). The plugin's `translate_proxy` option hands its `proxy` to httpx, so this fake is an HTTP
proxy: it answers `CONNECT translate.googleapis.com:443`, terminates TLS with a certificate from
a throwaway CA (trusted through SSL_CERT_FILE, which httpx reads when it builds a client) and
serves the gtx endpoint in Google's JSON array format over HTTP/1.1.

"Translation" is a glossary lookup, longest phrase first; text without an entry passes through,
so a test can see exactly which parts were sent. Faults: `fault = "500" | "hang" | "garbage" |
"echo" | "drop_tokens"`. Every translate request is recorded in `requests`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import re
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "translate.googleapis.com"
DEFAULT_GLOSSARY = {
    "画一只": "Draw a ",
    "一只": "a ",
    "猫": "cat",
    "狗": "dog",
    "在月球上": " on the moon",
    "写着": " with the words ",
    "的牌子": " on a sign",
    "拿着": " holding ",
    "的": " ",
}


@dataclass
class TranslateRequest:
    path: str
    params: dict[str, list[str]]
    headers: dict[str, str]

    @property
    def query(self) -> str:
        return self.params.get("q", [""])[0]


async def _start_tls(writer: asyncio.StreamWriter, context: ssl.SSLContext) -> None:
    """Upgrade a server-side stream to TLS. StreamWriter.start_tls is Python 3.11+; on 3.10
    (AstrBot 4.14.6 users, `make test-compat-py310`) do what it does: loop.start_tls on the
    transport, then point the writer and the stream protocol at the TLS transport."""
    if hasattr(writer, "start_tls"):
        await writer.start_tls(context)
        return
    await writer.drain()
    protocol = writer.transport.get_protocol()
    tls = await asyncio.get_running_loop().start_tls(
        writer.transport, protocol, context, server_side=True
    )
    writer._transport = tls  # type: ignore[attr-defined]
    protocol._transport = tls  # type: ignore[attr-defined]
    protocol._over_ssl = True  # type: ignore[attr-defined]


def _make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA certificate and a leaf certificate for HOST signed by it (PEM files)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "plugin test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(HOST), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = directory / "ca.pem"
    cert_file = directory / "leaf.pem"
    key_file = directory / "leaf.key"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf_cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


def gtx_answer(translated: str, original: str, src: str = "zh-CN") -> list:
    """The body of a `client=gtx` answer, shaped as Google sends it (sentences, src, ld)."""
    return [
        [[translated, original, None, None, 10], [None, None, None, "pinyin"]],
        None,
        src,
        None,
        None,
        None,
        1.0,
        [],
        [[src], None, [1.0], [src]],
    ]


class FakeTranslate:
    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="fake-translate-"))
        self.ca_file, cert_file, key_file = _make_certificates(self._dir)
        self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._tls.load_cert_chain(cert_file, key_file)
        self._tls.set_alpn_protocols(["http/1.1"])  # httpx offers h2 too; stay on HTTP/1.1
        self.requests: list[TranslateRequest] = []
        self.connects: list[str] = []
        self.glossary: dict[str, str] = dict(DEFAULT_GLOSSARY)
        self.fault: str | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._release = asyncio.Event()
        self.port = 0

    # --- control -------------------------------------------------------------------------------

    @property
    def open_connections(self) -> int:
        return len(self._writers)

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        self.requests.clear()
        self.connects.clear()
        self.glossary = dict(DEFAULT_GLOSSARY)
        self.fault = None
        # Free handlers parked by a "hang" fault so their connections close.
        self._release.set()
        self._release = asyncio.Event()

    def translate(self, text: str) -> str:
        if not self.glossary:
            return text
        pattern = re.compile("|".join(re.escape(k) for k in sorted(self.glossary, key=len)[::-1]))
        out = pattern.sub(lambda m: self.glossary[m.group(0)], text)
        return re.sub(r"\s+", " ", out).strip()

    # --- server --------------------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._release.set()
        for writer in list(self._writers):
            # abort, not close: a TLS close waits up to 30 s for the idle client's close_notify
            writer.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            head = await _read_head(reader)
            if head is None:
                return
            method, target, _ = head[0].split(" ", 2)
            if method != "CONNECT":
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            self.connects.append(target)
            if target != f"{HOST}:443":
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await _start_tls(writer, self._tls)
            await self._serve_http(reader, writer)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _serve_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await _read_head(reader)
            if head is None:
                return
            method, target, _ = head[0].split(" ", 2)
            headers = dict(
                (k.strip().lower(), v.strip())
                for k, _, v in (line.partition(":") for line in head[1:])
            )
            parts = urlsplit(target)
            if method != "GET" or parts.path != "/translate_a/single":
                await _respond(writer, 404, b"Not Found", "text/plain")
                continue
            recorded = TranslateRequest(parts.path, parse_qs(parts.query), headers)
            self.requests.append(recorded)
            await self._answer(writer, recorded)

    async def _answer(self, writer: asyncio.StreamWriter, request: TranslateRequest) -> None:
        fault = self.fault
        if fault == "hang":
            await self._release.wait()
            writer.transport.abort()
            return
        if fault == "500":
            await _respond(writer, 500, b"<html><body>Server Error</body></html>", "text/html")
            return
        if fault == "garbage":
            page = b"<html><head><title>Sorry...</title></head><body>unusual traffic</body></html>"
            await _respond(writer, 200, page, "text/html; charset=UTF-8")
            return
        original = request.query
        if fault == "echo":
            translated = original
        else:
            translated = self.translate(original)
            if fault == "drop_tokens":
                translated = re.sub(r"QZX\d+", "", translated)
        body = json.dumps(gtx_answer(translated, original), ensure_ascii=False).encode()
        await _respond(writer, 200, body, "application/json; charset=utf-8")


async def _read_head(reader: asyncio.StreamReader) -> list[str] | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None
    return raw.decode("latin-1").rstrip("\r\n").split("\r\n")


async def _respond(writer: asyncio.StreamWriter, status: int, body: bytes, ctype: str) -> None:
    reason = {200: "OK", 404: "Not Found", 500: "Internal Server Error"}.get(status, "Error")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
