"""The print run's PDFs put together with pypdf: address pages stamped with what they share,
each followed by the edition's pages; label sheets one after another.

Nothing is laid out twice. The edition's PDF is read once and the same page objects are
added behind every address page: the writer copies their streams (content, fonts,
images) the first time only, so each further copy costs its page objects, a few hundred
bytes. What every address page shares (the return address, the fold marks) is laid out
once as a page with no background, turned into a form XObject, and drawn over each
address page by two shared content streams around the page's own: ``q`` before it and
``Q q /DigestShared Do Q`` after (the page's content changes the graphics state and
paints its white background, so the stamp goes last, from a clean state).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import BinaryIO

from pypdf import PageObject, PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
)

STAMP = NameObject("/DigestShared")
PRODUCER = "digest print-run (pypdf)"


def interleave(
    shared: bytes, fronts: Iterable[bytes], edition: bytes, out: BinaryIO, *, title: str
) -> int:
    """Each address page (from several PDFs), stamped with the ``shared`` page, then the
    edition's pages; the pages written."""
    body = PdfReader(io.BytesIO(edition))
    writer = PdfWriter()
    stamp = _Stamp(writer, PdfReader(io.BytesIO(shared)).pages[0])
    for part in fronts:
        for front in PdfReader(io.BytesIO(part)).pages:
            stamp.on(writer.add_page(front))
            for page in body.pages:
                writer.add_page(page)
    return _finish(writer, out, title)


def concatenate(parts: Iterable[bytes], out: BinaryIO, *, title: str) -> int:
    """The pages of several PDFs as one; the pages written."""
    writer = PdfWriter()
    for part in parts:
        for page in PdfReader(io.BytesIO(part)).pages:
            writer.add_page(page)
    return _finish(writer, out, title)


def _finish(writer: PdfWriter, out: BinaryIO, title: str) -> int:
    writer.add_metadata({"/Title": title, "/Producer": PRODUCER})
    writer.write(out)
    return len(writer.pages)


class _Stamp:
    """One page as a form XObject in ``writer``, drawn over other pages' content."""

    def __init__(self, writer: PdfWriter, page: PageObject) -> None:
        form = DecodedStreamObject()
        contents = page.get_contents()  # a stream object: empty as a dict, so not "if"
        form.set_data(contents.get_data() if contents is not None else b"")
        form.update(
            {
                NameObject("/Type"): NameObject("/XObject"),
                NameObject("/Subtype"): NameObject("/Form"),
                NameObject("/BBox"): ArrayObject(page.mediabox),
                NameObject("/Resources"): _dictionary(page, "/Resources").clone(writer),
            }
        )
        # pypdf has no public call that adds a new object to a writer; _add_object has
        # been there, unchanged, since PyPDF2.
        self.form = writer._add_object(form.flate_encode())
        self.before = writer._add_object(_stream(b"q\n"))
        self.after = writer._add_object(_stream(b"Q\nq " + STAMP.encode() + b" Do Q\n"))

    def on(self, page: PageObject) -> None:
        """Draw the stamp over ``page`` (already in the writer)."""
        resources = _dictionary(page, "/Resources")
        if "/XObject" not in resources:
            resources[NameObject("/XObject")] = DictionaryObject()
        _dictionary(resources, "/XObject")[STAMP] = self.form
        # A stream (always indirect) or an array of them; raw_get, as [] would resolve it.
        contents = page.raw_get("/Contents")
        own = contents.get_object()
        streams = list(own) if isinstance(own, ArrayObject) else [contents]
        page[NameObject("/Contents")] = ArrayObject([self.before, *streams, self.after])


def _stream(data: bytes) -> DecodedStreamObject:
    stream = DecodedStreamObject()
    stream.set_data(data)
    return stream


def _dictionary(holder: DictionaryObject, key: str) -> DictionaryObject:
    value = holder[key].get_object()
    if not isinstance(value, DictionaryObject):
        raise TypeError(f"{key} is a {type(value).__name__}, not a dictionary")
    return value
