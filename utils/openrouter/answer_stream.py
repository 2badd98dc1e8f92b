"""Reading a chat completion as it arrives, its base64 images decoded on the way.

An image answer is a few KB of JSON around data URLs of megabytes. Reading it whole and then
parsing it holds the body, the JSON text, the base64 text and the decoded bytes at once (about
6x the image) and runs json.loads over megabytes. AnswerReader takes the body piece by piece
instead: each long base64 payload that follows `data:<type>;base64,` is decoded as it arrives
into a hidden temp file of the image store, and the rest of the body (the skeleton, where the
payload is replaced by a token) stays small and is parsed as ordinary JSON at the end.

A token is made of base64 letters, so every answer shape parse_answer understands (the images
list, image_url parts, data URLs inside text) finds its data URL exactly where the payload was;
take() turns that URL back into the image. Short payloads (under DIVERT_AT characters) stay in
the skeleton and take the ordinary path, and so does whatever ends a payload early (line breaks
written as `\\n`, `\\u` escapes): only a plain run of base64 letters (JSON's `\\/` included) is
diverted, and the text after it remains in the skeleton to be decoded after the run.

Where the work runs: feed() scans and decodes one piece as it arrives (about 0.3 ms for the
client's 128 KB pieces, no I/O) and is meant for the event loop, with a yield after each piece.
That keeps the loop more responsive than decoding in worker threads: base64 decoding holds the
GIL, and a worker holding it makes the loop wait up to the interpreter's 5 ms switch interval
each time the loop wants it back. Measured with 20 concurrent 1.5 MB answers (make bench): loop
stalls of 5-74 ms (median 45) decoding in workers, 4-7 ms decoding on the loop. File I/O
(write(), complete(), discard()) releases the GIL and belongs in a worker.
"""

from __future__ import annotations

import re
import secrets

from ..core.errors import InvalidImageError
from ..imaging.store import Base64Decoder, ImageStore, PendingImage, SavedImage, split_data_url

# Where an image payload starts. JSON may escape the slash of the media type.
MARKER = re.compile(rb"data:(?:[\w.+-]|\\?/){0,100};base64,", re.IGNORECASE)
# Longer than any marker: a marker cut by a piece boundary is searched again with the next piece.
_MARKER_HOLD = 256
# Payloads shorter than this (characters) stay in the skeleton: not worth a temp file.
DIVERT_AT = 64 * 1024
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_"
# The exact extent of a run: base64 letters and JSON-escaped slashes.
_RUN = re.compile(rb"[A-Za-z0-9+/_-]*(?:\\/[A-Za-z0-9+/_-]*)*")
_BACKSLASH = 0x5C
_TOKEN = re.compile(r"StreamedImage[0-9a-f]{12}N[0-9]+E")


class StreamedImage:
    """One diverted payload: its base64 decoded as it arrives, its bytes written in batches
    into a pending image of the store."""

    def __init__(self, token: str, store: ImageStore) -> None:
        self.token = token
        self._store = store
        self._decoder = Base64Decoder()
        self._unwritten: list[bytes] = []
        self._pending: PendingImage | None = None

    def decode(self, text: bytes) -> int | None:
        """Decode the next base64 letters and keep the bytes for write(); no I/O. None, with
        nothing consumed, if `text` holds anything but base64 letters."""
        pieces = self._decoder.feed_letters(text)
        if pieces is None:
            return None
        self._unwritten.extend(pieces)
        return sum(len(piece) for piece in pieces)

    def take_unwritten(self) -> list[bytes]:
        batch, self._unwritten = self._unwritten, []
        return batch

    def write(self, batch: list[bytes]) -> None:
        """Append decoded bytes to the temp file (created on first use). Blocking."""
        if self._pending is None:
            self._pending = self._store.begin(check_png=True)
        for data in batch:
            self._pending.write(data)

    def complete(self, rest: str) -> SavedImage:
        """Decode `rest` (what the URL holds after the token: padding, rarely more), then
        validate the whole image and publish it. Blocking; the temp file is gone if it raises."""
        try:
            try:
                text = rest.encode("ascii")
            except UnicodeEncodeError as exc:
                raise InvalidImageError(f"bad base64 image data: {exc}") from exc
            tail = self._decoder.feed(text) + self._decoder.finish()
            self.write([*self.take_unwritten(), tail])
            assert self._pending is not None
            return self._pending.commit()
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Drop the image: unwritten bytes and temp file. Blocking."""
        self._unwritten = []
        if self._pending is not None:
            self._pending.discard()


class _Run:
    """A base64 run being read: its first characters, then (once long enough) its image."""

    __slots__ = ("head", "image")

    def __init__(self) -> None:
        self.head = bytearray()
        self.image: StreamedImage | None = None


class AnswerReader:
    """Splits a completion body into a small JSON skeleton and streamed images.

    `marker` finds where a payload starts: MARKER (data URLs) for chat completions, the Image
    API's adds its `b64_json` values (images_api.ANSWER_MARKER)."""

    def __init__(self, store: ImageStore, marker: re.Pattern[bytes] = MARKER) -> None:
        self._store = store
        self._marker = marker
        self._skeleton = bytearray()
        self._carry = b""  # held back for the next piece: a possible marker start, or a lone '\'
        self._run: _Run | None = None
        self._images: dict[str, StreamedImage] = {}
        self._nonce = secrets.token_hex(6)  # hex digits are base64 letters too
        self._opened = 0  # images opened so far: numbers the tokens
        self.unwritten = 0  # decoded bytes not handed to write() yet

    # --- reading ------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Take the next piece of the body."""
        buf = self._carry + data if self._carry else data
        self._carry = b""
        pos = 0
        while pos < len(buf):
            pos = self._scan(buf, pos) if self._run is None else self._extend(buf, pos)

    @property
    def skeleton_size(self) -> int:
        """Bytes of skeleton gathered since the last finish(): what a caller caps."""
        return len(self._skeleton) + len(self._carry) + (len(self._run.head) if self._run else 0)

    def finish(self) -> bytes:
        """The skeleton of what was fed since the last finish() (the whole body, or one event
        of a stream); the images stay for take()."""
        carry, self._carry = self._carry, b""
        if self._run is not None:
            self._close_run()  # the body ended inside a payload: the JSON will not parse
        self._skeleton += carry
        skeleton, self._skeleton = bytes(self._skeleton), bytearray()
        return skeleton

    def _scan(self, buf: bytes, pos: int) -> int:
        match = self._marker.search(buf, pos)
        if match is None:
            keep = max(pos, len(buf) - _MARKER_HOLD)
            self._skeleton += buf[pos:keep]
            self._carry = buf[keep:]
            return len(buf)
        self._skeleton += buf[pos : match.end()]
        self._run = _Run()
        return match.end()

    def _extend(self, buf: bytes, pos: int) -> int:
        """Take the run's characters from buf[pos:]; return where the run stopped."""
        stop, text = self._plain_run(buf, pos)
        if text is None or not self._add(text):
            # Something else ends the run early (a `\/`, a `\n`, a ')' in text): find where.
            match = _RUN.match(buf, pos)
            assert match is not None  # the pattern matches the empty string
            stop = match.end()
            added = self._add(buf[pos:stop].replace(b"\\/", b"/"))
            assert added, "a run of base64 letters always decodes"
        if stop == len(buf):
            return stop
        if stop == len(buf) - 1 and buf[stop] == _BACKSLASH:
            self._carry = buf[stop:]  # an escape cut in two: the next piece decides
            return len(buf)
        self._close_run()
        return stop

    @staticmethod
    def _plain_run(buf: bytes, pos: int) -> tuple[int, bytes | None]:
        """The usual case, found at memchr speed: the run goes on to the padding, the closing
        quote or the end of the piece. (stop, text), text None when it holds a backslash."""
        stop = buf.find(b'"', pos)
        if stop < 0:
            stop = len(buf)
        padding = buf.find(b"=", pos, stop)
        if padding >= 0:
            stop = padding
        text = buf[pos:stop]
        return stop, None if b"\\" in text else text

    def _add(self, text: bytes) -> bool:
        """Append run characters; False, with nothing taken, unless all are base64 letters."""
        run = self._run
        assert run is not None
        if run.image is not None:
            decoded = run.image.decode(text)
            if decoded is None:
                return False
            self.unwritten += decoded
            return True
        if text.translate(None, _ALPHABET):
            return False
        run.head += text
        if len(run.head) >= DIVERT_AT:
            run.image = self._open_image()
            decoded = run.image.decode(bytes(run.head))
            assert decoded is not None  # checked letter by letter above
            self.unwritten += decoded
            run.head = bytearray()
        return True

    def _open_image(self) -> StreamedImage:
        token = f"StreamedImage{self._nonce}N{self._opened}E"
        self._opened += 1
        image = StreamedImage(token, self._store)
        self._images[token] = image
        return image

    def _close_run(self) -> None:
        run, self._run = self._run, None
        assert run is not None
        self._skeleton += run.image.token.encode("ascii") if run.image else run.head

    def take_unwritten(self) -> list[tuple[StreamedImage, list[bytes]]]:
        """The decoded bytes gathered since the last call, for write() in a worker."""
        self.unwritten = 0
        batches = [(image, image.take_unwritten()) for image in self._images.values()]
        return [(image, batch) for image, batch in batches if batch]

    @staticmethod
    def write(batches: list[tuple[StreamedImage, list[bytes]]]) -> None:
        """Write what take_unwritten() returned. Blocking: file I/O."""
        for image, batch in batches:
            image.write(batch)

    # --- after parsing --------------------------------------------------------------------------

    def take(self, url: str) -> tuple[StreamedImage, str] | None:
        """The streamed image a data URL of the parsed skeleton stands for, and the text after
        its token; None for any other URL. Each image is handed out once."""
        if not self._images:
            return None
        try:
            _, payload = split_data_url(url)
        except InvalidImageError:
            return None  # not a data URL: the ordinary path says so
        match = _TOKEN.match(payload)
        if match is None:
            return None
        image = self._images.pop(match.group(0), None)
        return None if image is None else (image, payload[match.end() :])

    @property
    def holds_images(self) -> bool:
        """Whether discard() has anything to drop (else it need not go to a worker)."""
        return bool(self._images)

    def discard(self) -> None:
        """Remove the temp files of every image not handed out by take(). Blocking."""
        images, self._images = list(self._images.values()), {}
        for image in images:
            image.discard()
