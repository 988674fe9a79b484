"""MXNet RecordIO (`train.rec` + `train.idx`) without mxnet.

Chunk layout (dmlc-core recordio.h): u32 magic 0xced7230a, u32 lrec, payload, zero pad to 4 bytes;
cflag = lrec >> 29 (0 whole record, 1/2/3 start/middle/end of a record split where the payload
held the magic at a 4-aligned offset), length = lrec & (2**29 - 1).
Payload (mxnet recordio.pack): struct 'IfQQ' = flag, label, id, id2 (24 bytes); when flag > 0 the
next 4*flag bytes are a float32 label array replacing `label`; the rest is the encoded image.
"""
import mmap
import os
import struct
from typing import NamedTuple

import numpy as np

from common.errors import UserError

MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)
_CHUNK = struct.Struct("<II")
_IR = struct.Struct("<IfQQ")
LEN_MASK = (1 << 29) - 1


class RecordIOError(UserError):
    pass


class Header(NamedTuple):
    flag: int
    label: float | np.ndarray
    id: int
    id2: int


def pack(label, payload: bytes, id: int = 0, id2: int = 0) -> bytes:
    """Header + payload as mxnet.recordio.pack writes it (a sequence label sets flag=len)."""
    if np.ndim(label) == 0:
        return _IR.pack(0, float(label), id, id2) + payload
    arr = np.asarray(label, dtype=np.float32).ravel()
    return _IR.pack(arr.size, 0.0, id, id2) + arr.tobytes() + payload


def unpack(record: bytes) -> tuple[Header, bytes]:
    if len(record) < _IR.size:
        raise RecordIOError(f"record of {len(record)} bytes is shorter than the 24-byte header")
    flag, label, id_, id2 = _IR.unpack_from(record, 0)
    rest = memoryview(record)[_IR.size:]
    if flag > 0:
        if len(rest) < 4 * flag:
            raise RecordIOError(f"record header announces {flag} labels but holds {len(rest)} bytes")
        label = np.frombuffer(rest[:4 * flag], dtype=np.float32).copy()
        rest = rest[4 * flag:]
    return Header(flag, label, id_, id2), bytes(rest)


def encode_record(payload: bytes) -> bytes:
    """One logical record as dmlc's RecordIOWriter writes it (split at 4-aligned magic words)."""
    out = []
    n = len(payload)
    start = 0
    for i in range(0, n - n % 4, 4):
        if payload[i:i + 4] == MAGIC_BYTES:
            out.append(_CHUNK.pack(MAGIC, ((1 if start == 0 else 2) << 29) | (i - start)))
            out.append(payload[start:i])
            start = i + 4
    out.append(_CHUNK.pack(MAGIC, ((3 if start else 0) << 29) | (n - start)))
    out.append(payload[start:])
    out.append(b"\0" * (-n % 4))
    return b"".join(out)


class IndexedRecordWriter:
    """Writes `.rec` and its `.idx` (`key\\toffset` lines) like MXIndexedRecordIO('w')."""

    def __init__(self, idx_path, rec_path):
        self._rec = open(rec_path, "wb")
        self._idx = open(idx_path, "w")

    def write_idx(self, key: int, payload: bytes) -> None:
        self._idx.write(f"{key}\t{self._rec.tell()}\n")
        self._rec.write(encode_record(payload))

    def close(self):
        self._rec.close()
        self._idx.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_idx_file(idx_path) -> dict[int, int]:
    index = {}
    try:
        with open(idx_path) as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                parts = line.split("\t")
                if len(parts) != 2:
                    raise ValueError(f"line {lineno}")
                index[int(parts[0])] = int(parts[1])
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordIOError(f"{idx_path} is not a RecordIO index (expected 'key<TAB>offset' lines): {exc}") from None
    if not index:
        raise RecordIOError(f"{idx_path} is empty: expected 'key<TAB>offset' lines")
    return index


class IndexedRecordReader:
    """Random access to records by key through an mmap of the .rec (shared by forked workers)."""

    def __init__(self, idx_path, rec_path):
        self.idx_path, self.rec_path = os.fspath(idx_path), os.fspath(rec_path)
        self.index = read_idx_file(self.idx_path)
        self.size = os.path.getsize(self.rec_path)
        self._mm = None
        if self.size == 0:
            raise RecordIOError(f"{self.rec_path} is empty")

    def __getstate__(self):  # mmap objects do not pickle (spawned workers reopen)
        state = dict(self.__dict__)
        state["_mm"] = None
        return state

    @property
    def mm(self):
        if self._mm is None:
            with open(self.rec_path, "rb") as f:
                self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        return self._mm

    def keys(self):
        return self.index.keys()

    def _truncated(self, key, pos, need):
        return RecordIOError(f"{self.rec_path} is truncated or does not match {self.idx_path}: record {key} at "
                             f"offset {pos} needs {need} bytes but the file has {self.size}")

    def read_at(self, pos: int, key=None) -> bytes:
        mm, parts = self.mm, []
        while True:
            if pos + 8 > self.size:
                raise self._truncated(key, pos, pos + 8)
            magic, lrec = _CHUNK.unpack_from(mm, pos)
            if magic != MAGIC:
                raise RecordIOError(f"{self.rec_path}: no RecordIO magic at offset {pos} (record {key}); "
                                    f"the .rec is corrupt or the .idx belongs to another file")
            cflag, length = lrec >> 29, lrec & LEN_MASK
            start = pos + 8
            if start + length > self.size:
                raise self._truncated(key, pos, start + length)
            parts.append(mm[start:start + length])
            pos = start + ((length + 3) & ~3)
            if cflag in (0, 3):
                return b"".join(parts) if len(parts) > 1 else parts[0]
            parts.append(MAGIC_BYTES)

    def read_idx(self, key: int) -> bytes:
        try:
            pos = self.index[key]
        except KeyError:
            raise RecordIOError(f"{self.idx_path} has no record {key}") from None
        return self.read_at(pos, key)

    def read_header(self, key: int) -> Header:
        return unpack(self.read_idx(key))[0]

    def check_last_record(self) -> None:
        """Catch a truncated copy up front: the record at the largest offset must fit in the file."""
        key = max(self.index, key=self.index.get)
        self.read_at(self.index[key], key)
