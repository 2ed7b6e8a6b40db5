"""Reading one answer's body within a size cap, and decoding it as JSON whatever it holds.

- `read_body` reads the body of a streamed httpx response, inflating gzip or deflate itself so
  that the cap counts the bytes as they inflate (a small compressed answer cannot become a
  huge one in memory): at most `limit` bytes are ever held, and one more than that raises
  `TooLarge` with how much was seen. A declared `Content-Length` over the cap is refused
  before any of the body is read.
- `decode_json` turns bytes into JSON values. Bytes that are not UTF-8 inside a string do not
  fail the answer: they become lone surrogates (`surrogateescape`), which `wire` treats as
  text that cannot be read, so one bad item does not hide the others. Anything else that
  stops the decoder (bad syntax, nesting deeper than Python recurses, a number of more than
  4,300 digits) raises `Unreadable`.
"""

from __future__ import annotations

import json
import re
import zlib

import httpx

_BOM = b"\xef\xbb\xbf"
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
_AUTO_ZLIB = zlib.MAX_WBITS | 32  # accept a gzip or a zlib header
_DECODED = ("", "identity")
_INFLATED = ("gzip", "x-gzip", "deflate")
ACCEPT_ENCODING = "gzip, deflate"
"""What the client asks for: the encodings `read_body` inflates itself."""


class TooLarge(Exception):
    """An answer over the size cap: `size` bytes seen so far (or declared), `limit` the cap."""

    def __init__(self, size: int, limit: int, *, declared: bool) -> None:
        self.size, self.limit, self.declared = size, limit, declared
        how = "declared" if declared else "at least"
        super().__init__(f"the answer is larger than {limit:,} bytes ({how} {size:,} bytes)")


class Unreadable(Exception):
    """A body that cannot be decoded (an encoding not asked for, broken compression, not JSON)."""


async def read_body(response: httpx.Response, limit: int) -> bytes:
    """The whole body, decoded from its content encoding; `TooLarge` past `limit` bytes."""
    declared = _content_length(response)
    if declared is not None and declared > limit:
        raise TooLarge(declared, limit, declared=True)
    if response.is_stream_consumed:  # a transport that hands over the whole body (a test's)
        if len(response.content) > limit:
            raise TooLarge(len(response.content), limit, declared=False)
        return response.content
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding not in _DECODED + _INFLATED:
        raise Unreadable(f"content-encoding {encoding[:40]!r} was not asked for")
    inflate = zlib.decompressobj(_AUTO_ZLIB) if encoding in _INFLATED else None
    body = bytearray()
    async for chunk in response.aiter_raw():
        if inflate is None:
            body += chunk
        else:
            _inflate_into(body, inflate, chunk, limit)
        if len(body) > limit:
            raise TooLarge(len(body), limit, declared=False)
    return bytes(body)


def _inflate_into(body: bytearray, inflate: zlib._Decompress, data: bytes, limit: int) -> None:
    """Inflate `data` into `body`, never more than one byte past `limit` at a time."""
    try:
        while data and len(body) <= limit:
            body += inflate.decompress(data, limit + 1 - len(body))
            data = inflate.unconsumed_tail
    except zlib.error as exc:
        raise Unreadable(f"the compressed body is broken ({exc})") from exc


def _content_length(response: httpx.Response) -> int | None:
    raw = response.headers.get("content-length", "").strip()
    return int(raw) if raw.isdigit() and len(raw) < 20 else None


def decode_json(content: bytes) -> object:
    """The JSON value of a body; invalid UTF-8 in strings survives as lone surrogates.

    Raises `Unreadable` for anything the decoder refuses, whatever the exception it raised.
    """
    text = content.removeprefix(_BOM).decode("utf-8", "surrogateescape")
    try:
        return json.loads(text)
    except Exception as exc:  # RecursionError, ValueError, MemoryError...: all unreadable
        raise Unreadable(f"not JSON ({type(exc).__name__}: {str(exc)[:120]})") from exc


def may_hold_bad_text(content: bytes) -> bool:
    """Whether a body may hold text that cannot be read: bytes that are not UTF-8, or an
    escaped surrogate (most are halves of a valid pair, e.g. an emoji: a closer look decides).
    Two scans in C; the close look (`wire.unreadable_text`) is only for the rare body that
    needs it."""
    if _ESCAPED_SURROGATE.search(content):
        return True
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False
