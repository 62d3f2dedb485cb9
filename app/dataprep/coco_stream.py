"""Stream a COCO JSON file element by element, in bounded memory.

A COCO instances file is one JSON object whose ``images``, ``annotations`` and ``categories`` arrays can hold
millions of elements; ``json.load`` would hold all of them as Python objects at once (several GB at 1M boxes).
Here the file is read in chunks and each array element is decoded on its own (the standard library's C decoder,
``raw_decode``), handed to the caller and dropped, so memory is bounded by the chunk and the largest element.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from app.dataprep.errors import DataprepError

CHUNK_CHARS = 4 * 1024 * 1024
MAX_ELEMENT_CHARS = 256 * 1024 * 1024  # one element larger than this is a broken file, not a big one
STREAMED_ARRAYS = frozenset({"images", "annotations", "categories"})
WHOLE = -1  # the index given with a top-level value that is not a streamed array

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class _Reader:
    """A sliding text window over the file; ``pos`` indexes ``buf``."""

    def __init__(self, path: Path, handle: IO[str], chunk: int) -> None:
        self.path = path
        self.handle = handle
        self.chunk = chunk
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.lines_before = 0  # newlines in the text already dropped from the window

    def fill(self) -> bool:
        """Drop what was consumed, append the next chunk; False at the end of the file."""
        if self.eof:
            return False
        data = self.handle.read(self.chunk)
        if not data:
            self.eof = True
            return False  # the window stays as it is, so positions in it still name the right place
        self.lines_before += self.buf.count("\n", 0, self.pos)
        self.buf = self.buf[self.pos :] + data
        self.pos = 0
        return True

    def peek(self) -> str:
        """The next non-blank character ('' at the end of the file)."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf) or not self.fill():
                return self.buf[self.pos : self.pos + 1]

    def expect(self, chars: str, what: str) -> str:
        found = self.peek()
        if not found or found not in chars:
            raise self.error(self.pos, f"expected {what}, found {found or 'the end of the file'!r}")
        self.pos += 1
        return found

    def value(self) -> object:
        """Decode the next JSON value, reading more of the file while it is incomplete."""
        self.peek()
        while True:
            try:
                obj, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if len(self.buf) - self.pos < MAX_ELEMENT_CHARS and self.fill():
                    continue
                raise self.error(exc.pos, exc.msg) from None
            if end >= len(self.buf) and not self.eof and self.fill():
                continue  # a number cut by the chunk end ("12" of "1234") decodes: read on and decode again
            self.pos = end
            return obj

    def error(self, pos: int, message: str) -> DataprepError:
        line = self.lines_before + self.buf.count("\n", 0, pos) + 1
        column = pos - (self.buf.rfind("\n", 0, pos) + 1) + 1
        return DataprepError(
            f"{self.path}: line {line} column {column}: not valid JSON ({message}); expected a COCO detection "
            "JSON object with 'images', 'annotations' and 'categories'"
        )


def iter_coco(path: Path, chunk: int = CHUNK_CHARS) -> Iterator[tuple[str, int, object]]:
    """Yield ``(key, index, element)`` for each element of the top-level ``images``/``annotations``/``categories``
    arrays, in file order, and ``(key, WHOLE, value)`` for any other top-level value (one of those keys when it is
    not an array, or an empty one). Raise DataprepError, naming line and column, when the file is not one JSON object."""
    with open(path, encoding="utf-8", errors="strict") as handle:
        reader = _Reader(path, handle, chunk)
        try:
            yield from _walk(reader)
        except UnicodeDecodeError as exc:
            raise DataprepError(
                f"{path}: not UTF-8 text ({exc.reason}); expected a COCO detection JSON"
            ) from None


_SEPARATOR = re.compile(r"[ \t\n\r]*([,\]])[ \t\n\r]*")


def _elements(reader: _Reader, key: str) -> Iterator[object]:
    """The elements of an array whose '[' was consumed, up to and including its ']'.

    Fast path (almost every element): decode it and its separator straight from the window; anything else (an
    element cut by the chunk end, an error) goes through the reader's general steps, which read on or report."""
    decode = _DECODER.raw_decode
    separator = _SEPARATOR.match
    index = 0
    while True:
        buf, pos = reader.buf, reader.pos
        try:
            element, end = decode(buf, pos)
            found = separator(buf, end)
        except json.JSONDecodeError:
            found = None
        if found is None or found.end() >= len(buf):  # incomplete or odd: the careful way
            yield reader.value()
            closing = reader.expect(",]", f"',' or ']' after element {index} of '{key}'")
        else:
            reader.pos = found.end()
            yield element
            closing = found.group(1)
        index += 1
        if closing == "]":
            return


def _walk(reader: _Reader) -> Iterator[tuple[str, int, object]]:
    reader.expect("{", "a JSON object ('{')")
    if reader.peek() == "}":
        reader.pos += 1
    else:
        while True:
            start = reader.pos
            key = reader.value()
            if not isinstance(key, str):
                raise reader.error(start, "expected a string key")
            reader.expect(":", "':'")
            if key in STREAMED_ARRAYS and reader.peek() == "[":
                reader.pos += 1
                index = 0
                if reader.peek() == "]":
                    reader.pos += 1
                    yield key, WHOLE, []
                else:
                    for index, element in enumerate(_elements(reader, key)):
                        yield key, index, element
            else:
                yield key, WHOLE, reader.value()
            if reader.expect(",}", "',' or '}'") == "}":
                break
    if reader.peek():
        raise reader.error(reader.pos, "extra data after the top-level object")
