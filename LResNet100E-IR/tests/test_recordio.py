"""RecordIO chunks and headers checked against bytes written out by hand."""

import numpy as np
import pytest
from face_arcface.recordio import IndexedRecordReader, IndexedRecordWriter, RecordIOError, encode_record, pack, unpack

MAGIC = bytes([0x0A, 0x23, 0xD7, 0xCE])  # 0xced7230a little-endian


def test_header_single_label_by_hand():
    # flag=0 | label 3.0f = 0x40400000 | id=7 | id2=0 | image bytes
    raw = bytes(4) + bytes([0, 0, 0x40, 0x40]) + bytes([7]) + bytes(7) + bytes(8) + b"JPEG"
    h, payload = unpack(raw)
    assert (h.flag, h.label, h.id, h.id2) == (0, 3.0, 7, 0)
    assert payload == b"JPEG"
    assert pack(3.0, b"JPEG", id=7) == raw


def test_header_multi_label_flag_by_hand():
    # record 0 of faces_emore: flag=2, label field unused, then float32 [5.0, 9.0] (0x40a00000, 0x41100000)
    raw = bytes([2, 0, 0, 0]) + bytes(4) + bytes(16) + bytes([0, 0, 0xA0, 0x40, 0, 0, 0x10, 0x41]) + b"x"
    h, payload = unpack(raw)
    assert h.flag == 2 and list(h.label) == [5.0, 9.0]
    assert payload == b"x"
    assert pack([5, 9], b"x") == raw


def test_chunk_layout_and_padding_by_hand():
    # magic | lrec = 5 (cflag 0) | 'abcde' | 3 zero bytes to a 4-byte boundary
    assert encode_record(b"abcde") == MAGIC + bytes([5, 0, 0, 0]) + b"abcde" + bytes(3)


def test_record_split_at_aligned_magic_by_hand(tmp_path):
    payload = b"AAAA" + MAGIC + b"BB"
    # part 1: cflag 1 -> lrec = 1<<29 | 4 = 0x20000004; part 2: cflag 3 -> 3<<29 | 2 = 0x60000002
    expected = (MAGIC + bytes([4, 0, 0, 0x20]) + b"AAAA" + MAGIC + bytes([2, 0, 0, 0x60]) + b"BB" + bytes(2))
    assert encode_record(payload) == expected
    # a magic word at an unaligned offset is not split
    assert encode_record(b"A" + MAGIC + b"AAA")[4:8] == bytes([8, 0, 0, 0])
    rec, idx = tmp_path / "t.rec", tmp_path / "t.idx"
    first = MAGIC + bytes([1, 0, 0, 0]) + b"z" + bytes(3)  # a whole 1-byte record before it
    rec.write_bytes(first + expected)
    idx.write_text(f"0\t0\n1\t{len(first)}\n")
    reader = IndexedRecordReader(idx, rec)
    assert reader.read_idx(0) == b"z"
    assert reader.read_idx(1) == payload  # parts rejoined with the magic re-inserted


def test_writer_reader_roundtrip(tmp_path):
    rec, idx = tmp_path / "t.rec", tmp_path / "t.idx"
    payloads = [pack(float(i), bytes([i]) * (i + 1) + MAGIC * i) for i in range(6)]
    with IndexedRecordWriter(idx, rec) as w:
        for i, p in enumerate(payloads):
            w.write_idx(i, p)
    offsets = [int(line.split("\t")[1]) for line in idx.read_text().splitlines()]
    assert offsets[0] == 0 and all(o % 4 == 0 for o in offsets)
    reader = IndexedRecordReader(idx, rec)
    for i, p in enumerate(payloads):
        assert reader.read_idx(i) == p
        assert reader.read_header(i).label == float(i)


def test_truncated_rec_is_one_clear_error(tmp_path):
    rec, idx = tmp_path / "t.rec", tmp_path / "t.idx"
    with IndexedRecordWriter(idx, rec) as w:
        w.write_idx(0, b"a" * 40)
        w.write_idx(1, b"b" * 40)
    rec.write_bytes(rec.read_bytes()[:-10])
    reader = IndexedRecordReader(idx, rec)
    with pytest.raises(RecordIOError, match="truncated"):
        reader.check_last_record()
    bad = tmp_path / "bad.idx"
    bad.write_text("not an index\n")
    with pytest.raises(RecordIOError, match="key<TAB>offset"):
        IndexedRecordReader(bad, rec)


def test_unpack_rejects_short_record():
    with pytest.raises(RecordIOError):
        unpack(b"\0" * 10)
    with pytest.raises(RecordIOError):
        unpack(np.array([3, 0, 0, 0], np.uint8).tobytes() + bytes(20) + b"\0" * 4)
