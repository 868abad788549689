"""Pickles whose arrays are read back as views of the file, shared by every process that reads it.

A pickle of protocol 5 can keep large buffers (numpy arrays, Arrow columns)
out of band, after the pickle stream itself. :func:`dump` writes them into
the same file, aligned; :func:`load` maps the file copy-on-write and hands
the unpickler views of the mapping, so loading copies no array. Several
processes loading the same file (a monthly run's workers and notebook
kernels) then share one copy of its arrays in the page cache, and a process
that writes into an array gets a private copy of that page only.

:class:`MappedPickler` also sends date and duration arrays out of band, as
int64 views: numpy keeps them in the pickle stream, which would give each
reader a private copy of every date column. It writes pandas' Arrow-backed
columns chunk by chunk, each shared Arrow buffer once, where pandas would
first join the chunks into a copy.

Pickle runs code when loaded: only ever load files this package wrote into a
private folder.

A file is ``MAGIC``, the header's length (8 bytes, little-endian), a JSON
header with where each part lies, then the parts, each starting on a
multiple of 64 bytes.
"""

from __future__ import annotations

import io
import json
import os
import pickle
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from pandas.arrays import ArrowExtensionArray

from crm_analysis.exceptions import CrmAnalysisError

__all__ = ["MappedPickler", "dump", "load", "pickle_parts", "write_parts", "map_file", "unpickle_parts", "MAGIC"]

#: The first bytes of a file written by :func:`dump`.
MAGIC = b"CRMMAP01"
#: Parts start on multiples of this, so arrays read back are aligned.
ALIGN = 64


def _view_as(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Undo :class:`MappedPickler`: the int64 array as the dates it holds (a view: no copy)."""
    return values.view(dtype)


def _arrow_backed(cls: type, state: dict, arrow_type, parents: list, pieces: list) -> Any:
    """Undo :class:`MappedPickler` for a pandas Arrow-backed array: its chunks as slices of `parents`, the
    rest of its state as pandas' own ``__setstate__`` sets it."""
    import pyarrow as pa

    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    obj._pa_array = pa.chunked_array([parents[i].slice(offset, length) for i, offset, length in pieces],
                                     type=arrow_type)
    return obj


def _parents_and_pieces(chunked) -> tuple[list, list]:
    """The arrays to write for the chunks of `chunked` (each shared buffer once), and each chunk as
    ``(parent, offset, length)``.

    Arrow pickles a slice with its whole buffers, and Parquet readers hand back text columns as chunks
    sliced from a few shared buffers: text chunks over the same buffers are written once, as one array the
    chunks are slices of, when they use at least half of those buffers. Any other sliced chunk is copied
    to its own rows; an unsliced one is written as it is.
    """
    import pyarrow as pa

    groups: dict[tuple, list[int]] = {}
    for i, chunk in enumerate(chunked.chunks):
        groups.setdefault(tuple(b.address if b is not None else 0 for b in chunk.buffers()), []).append(i)
    parents, pieces = [], [None] * chunked.num_chunks
    for members in groups.values():
        chunks = [chunked.chunk(i) for i in members]
        buffers = chunks[0].buffers()
        whole = sum(b.size for b in buffers if b is not None)
        used = sum(c.nbytes for c in chunks)
        text = pa.types.is_string(chunked.type) or pa.types.is_large_string(chunked.type)
        if text and used * 2 >= whole and (len(chunks) > 1 or chunks[0].offset):
            parents.append(pa.Array.from_buffers(chunked.type, max(c.offset + len(c) for c in chunks), buffers))
            for i, c in zip(members, chunks):
                pieces[i] = (len(parents) - 1, c.offset, len(c))
            continue
        for i, c in zip(members, chunks):
            sliced = c.get_total_buffer_size() > 2 * c.nbytes + ALIGN
            parents.append(pa.concat_arrays([c]) if sliced else c)
            pieces[i] = (len(parents) - 1, 0, len(c))
    return parents, pieces


class MappedPickler(pickle.Pickler):
    """A protocol-5 pickler that also sends date and duration arrays out of band, as int64 views, and pandas'
    Arrow-backed arrays chunk by chunk: pandas' own pickling joins the chunks first, a copy of every text
    column (1.7 GiB for a million patients' clinic)."""

    def reducer_override(self, obj):
        if type(obj) is np.ndarray and obj.dtype.kind in "mM" and obj.flags.c_contiguous and obj.size:
            values = obj.view(np.int64)
            # a read-only array would be read back read-only (protocol 5 keeps that): a copy is written instead
            return _view_as, (values if values.flags.writeable else values.copy(), obj.dtype)
        if isinstance(obj, ArrowExtensionArray):
            state = {k: v for k, v in obj.__dict__.items() if k != "_pa_array"}
            return _arrow_backed, (type(obj), state, obj._pa_array.type, *_parents_and_pieces(obj._pa_array))
        return NotImplemented


def pickle_parts(obj: Any, pickler: type[pickle.Pickler] = MappedPickler) -> list[memoryview]:
    """The pickle stream of `obj`, then its out-of-band buffers, as byte views (nothing copied twice)."""
    buffers: list[pickle.PickleBuffer] = []
    stream = io.BytesIO()
    pickler(stream, protocol=5, buffer_callback=buffers.append).dump(obj)
    return [stream.getbuffer(), *(buffer.raw() for buffer in buffers)]


def _layout(sizes: Iterable[int], start: int) -> list[list[int]]:
    """Each part's ``[offset, size]`` when parts of `sizes` are written from offset `start`, each aligned."""
    layout, position = [], start
    for size in sizes:
        position += -position % ALIGN
        layout.append([position, size])
        position += size
    return layout


def write_parts(parts: list[memoryview], out, start: int = 0) -> list[list[int]]:
    """Write `parts` to the binary file `out` (now at offset `start`), each aligned to :data:`ALIGN`; returns
    each part's ``[offset, size]``."""
    layout = _layout([part.nbytes for part in parts], start)
    position = start
    for part, (offset, _) in zip(parts, layout):
        out.write(b"\0" * (offset - position))
        out.write(part)
        position = offset + part.nbytes
    return layout


def map_file(path: str | Path) -> np.ndarray:
    """The whole file mapped copy-on-write: its pages are shared with every other process mapping it (and the
    page cache) until one writes into them, and stay writable, as arrays read into memory would be."""
    if Path(path).stat().st_size == 0:
        return np.empty(0, dtype=np.uint8)
    return np.memmap(path, dtype=np.uint8, mode="c")


def unpickle_parts(payload: np.ndarray, layout: list[list[int]]) -> Any:
    """Unpickle the parts of `payload` at `layout` (the stream first, then its buffers), arrays as views."""
    view = memoryview(payload)
    stream, *buffers = [view[start:start + size] for start, size in layout]
    return pickle.loads(stream, buffers=buffers)  # noqa: S301 - the caller's own private file


def dump(obj: Any, path: str | Path, pickler: type[pickle.Pickler] = MappedPickler) -> Path:
    """Write `obj` to `path` (created 0600, replacing it only when complete) so that :func:`load` maps its arrays.

    Returns
    -------
    Path
    """
    path = Path(path)
    parts = pickle_parts(obj, pickler)
    sizes = [part.nbytes for part in parts]
    # the header holds the layout, so its length is settled before writing: offsets follow from the sizes
    header_size = 0
    while True:
        layout = _layout(sizes, len(MAGIC) + 8 + header_size)
        header = json.dumps({"parts": layout}).encode()
        if len(header) == header_size:
            break
        header_size = len(header)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        out.write(MAGIC + len(header).to_bytes(8, "little") + header)
        written = write_parts(parts, out, start=len(MAGIC) + 8 + len(header))
    assert written == layout, "the header's layout differs from the file's"
    os.replace(partial, path)
    return path


def load(path: str | Path) -> Any:
    """Read a file written by :func:`dump`; its arrays are views of the file mapped copy-on-write.

    Raises
    ------
    CrmAnalysisError
        The file was not written by :func:`dump`, or is cut short.
    """
    payload = map_file(path)
    head = len(MAGIC) + 8
    if payload[:len(MAGIC)].tobytes() != MAGIC:
        raise CrmAnalysisError(f"{path} was not written by crm_analysis.io.mapped.dump")
    header_size = int.from_bytes(payload[len(MAGIC):head].tobytes(), "little")
    layout = json.loads(payload[head:head + header_size].tobytes())["parts"]
    if layout and layout[-1][0] + layout[-1][1] > len(payload):
        raise CrmAnalysisError(f"{path} is cut short ({len(payload):,} bytes; its header needs "
                               f"{layout[-1][0] + layout[-1][1]:,})")
    return unpickle_parts(payload, layout)
