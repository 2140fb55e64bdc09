#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# make_seeds.py - (re)generate the committed seed corpora under fuzz/corpus/ (deterministic).
import json
import os
import shutil
import struct
import sys

root = os.path.dirname(os.path.abspath(__file__))
corpus = os.path.join(root, "corpus")


def put(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- .npy -------------------------------------------------------------------------
def npy(descr, shape, payload, fortran=False, version=1):
    shp = "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
    d = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, "True" if fortran else "False", shp)
    pre = 10 if version == 1 else 12
    pad = (64 - (pre + len(d) + 1) % 64) % 64
    hdr = (d + " " * pad + "\n").encode()
    if version == 1:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr + payload
    return b"\x93NUMPY\x02\x00" + struct.pack("<I", len(hdr)) + hdr + payload


def with_last(payload, last):
    return payload[:-1] + bytes([last])


# fuzz_npy: the last byte picks the row format (fuzz/row_formats.hpp); 0x40 = rows from the file.
put("npy", "f4_3x4", npy("<f4", [3, 4], with_last(struct.pack("<12f", *range(12)), 0x40)))
put("npy", "bf16_2x8", npy("<u2", [2, 8], with_last(bytes(range(32)), 0x41)))
put("npy", "f2_3x4_align", npy("<f2", [3, 4], with_last(bytes(24), 0x42)))
put("npy", "fp8_scaled_2x32", npy("|u1", [2, 32], with_last(bytes(range(64)), 0xc3)))
put("npy", "packed_u1_2x34", npy("|u1", [2, 34], with_last(bytes(68), 0x43)))
put("npy", "fp8_4x16_rows4", npy("|u1", [4, 16], with_last(bytes(range(64)), 0x04)))
put("npy", "i8_vocab", npy("<i8", [6], struct.pack("<6q", 0, 1, 2, 1, 0, 2)))
put("npy", "i4_vocab", npy("<i4", [4], struct.pack("<4i", 3, 2, 1, 0)))
put("npy", "u4_v2", npy("<u4", [3], struct.pack("<3I", 0, 1, 2), version=2))
put("npy", "fortran", npy("<f4", [2, 4], bytes(32), fortran=True))
put("npy", "scalar", npy("<f8", [], bytes(8)))
put("npy", "truncated", npy("<f4", [100, 4], bytes(16)))
put("npy", "zero_rows", npy("<f4", [0, 4], b""))

# ---- .safetensors -----------------------------------------------------------------
def st(tensors, blobs, meta=None):
    h = {}
    if meta is not None:
        h["__metadata__"] = meta
    off = 0
    for (name, dtype, shape), blob in zip(tensors, blobs):
        h[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(blob)]}
        off += len(blob)
    text = json.dumps(h).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


# fuzz_safetensors input: [format selector, expected rows] + file.
put("safetensors", "f32_3x4", bytes([0x00, 0]) + st([("weight", "F32", [3, 4])], [bytes(48)]))
put("safetensors", "f32_3x4_named_rows", bytes([0x48, 3]) + st([("weight", "F32", [3, 4])], [bytes(48)],
                                                                 {"format": "pt"}))
put("safetensors", "bf16_2x8", bytes([0x01, 0]) + st([("w", "BF16", [2, 8])], [bytes(32)]))
put("safetensors", "fp8_scaled", bytes([0x13, 0]) + st(
    [("weight", "F8_E4M3", [2, 32]), ("weight_scale", "F8_E8M0", [2, 2])], [bytes(64), bytes(4)]))
put("safetensors", "fp8_scaled_u8", bytes([0x5b, 2]) + st(
    [("weight", "U8", [2, 32]), ("weight_scale", "U8", [2, 2])], [bytes(64), bytes(4)]))
put("safetensors", "packed_u8", bytes([0x03, 0]) + st([("weight", "U8", [2, 34])], [bytes(68)]))
put("safetensors", "bf16_scaled_align", bytes([0x16, 0]) + st(
    [("weight", "BF16", [3, 4]), ("weight_scale", "U8", [3, 2])], [bytes(24), bytes(6)]))
put("safetensors", "sniffed", bytes([0x80, 0]) + st([("weight", "F32", [2, 4])], [bytes(32)]))
put("safetensors", "two_candidates", bytes([0x00, 0]) + st(
    [("a", "F32", [1, 4]), ("b", "F32", [1, 4])], [bytes(16), bytes(16)]))
put("safetensors", "unknown_dtype", bytes([0x00, 0]) + st([("weight", "C64", [2, 4])], [bytes(64)]))

# ---- model files --------------------------------------------------------------------
ex = os.path.join(os.path.dirname(root), "examples", "models")
if os.path.isdir(ex):
    for f in sorted(os.listdir(ex)):
        if f.endswith(".json"):
            put("model", "example_" + f[:-5], open(os.path.join(ex, f), "rb").read())
small = {"name": "m", "engram_vocab_size": [61, 67], "max_ngram_size": 3, "n_embed_per_ngram": 8,
         "n_head_per_ngram": 2, "layer_ids": [1, 2], "pad_id": 0, "seed": 7, "tokenizer_vocab_size": 100,
         "compressed_vocab_size": 100, "dtype": "fp32"}
# With a vocab map the compressed size comes from the map: no compressed_vocab_size.
mapped = {k: v for k, v in small.items() if k != "compressed_vocab_size"}
put("model", "small", json.dumps(small).encode())
put("model", "small_identity", json.dumps(dict(mapped, identity_vocab=True)).encode())
put("model", "small_fp8_scaled", json.dumps(dict(small, n_embed_per_ngram=64, dtype="fp8-e4m3",
                                                 scale={"dtype": "e8m0", "block": 16}, row_align=64)).encode())
put("model", "small_bf16_clip", json.dumps(dict(small, engram_vocab_size=1000, max_ngram_size=4, dtype="bf16",
                                                out_of_vocab="clip", seed=2**40)).encode())
vmap = [i % 50 for i in range(100)]
put("model", "vocab_map", json.dumps(dict(mapped, vocab_map="vocab.npy", pad_id=3)).encode() + b"\0" +
    npy("<i8", [100], struct.pack("<100q", *vmap)))
put("model", "vocab_map_i4", json.dumps(dict(mapped, vocab_map="vocab.npy", tokenizer_vocab_size=4)).encode() +
    b"\0" + npy("<i4", [4], struct.pack("<4i", 1, 0, 1, 2)))
put("model", "order8", json.dumps(dict(small, max_ngram_size=8, engram_vocab_size=[11, 13, 17, 19, 23, 29, 31],
                                       n_head_per_ngram=1, layer_ids=[0])).encode())

# ---- pool open ------------------------------------------------------------------------
# Flags (u16) and ops as fuzz_pool_open.cpp reads them. The fixture pool's catalog:
# slot 0 m/layer1, slot 1 model m, slot 2 old m/layer2 (removed, pending), slot 3 m/layer2.
WRITER, IMPORT, REPLACE, REMOVE, RECLAIM, TAKE = 1, 2, 4, 8, 16, 32
FIX_SB, FIX_MASTER, FIX_ENTRIES, FIX_HOSTS, ATTACH, REMOVE2 = 64, 128, 256, 512, 1024, 2048
u8 = lambda v: struct.pack("<B", v)
u16 = lambda v: struct.pack("<H", v)
u40 = lambda v: struct.pack("<Q", v)[:5]
u64 = lambda v: struct.pack("<Q", v)


def raw(off, data):
    return u8(0) + struct.pack("<I", off)[:3] + u8(len(data)) + data


def gen(g):
    return u8(1) + u40(g)


def state(slot, kind, g):
    return u8(2) + u16(slot) + u8(kind) + u40(g)


def removed(slot, g):
    return u8(3) + u16(slot) + u40(g)


def entry(slot, off, data):
    return u8(4) + u16(slot) + u16(off) + u8(len(data)) + data


def host(slot, off, data):
    return u8(5) + u8(slot) + u16(off) + u8(len(data)) + data


def master(rec, off, data):
    return u8(6) + u8(rec) + u8(off) + u8(len(data)) + data


def word(slot, idx, v):
    return u8(7) + u16(slot) + u8(idx) + u64(v)


# CatalogEntry table body words: rows 23, dataOffset 24, extentBytes 25, dataBytes 26.
MIB = 1 << 20
pool = {
    "plain": u16(0),
    "attach": u16(ATTACH),
    "writer_import_reclaim": u16(WRITER | IMPORT | RECLAIM),
    "writer_replace_remove": u16(WRITER | REPLACE | REMOVE | REMOVE2),
    "overlap_extent": u16(WRITER | IMPORT | FIX_ENTRIES) + word(0, 24, 6 * MIB),
    "huge_rows": u16(FIX_ENTRIES) + word(0, 23, 1 << 40),
    "extent_past_end": u16(WRITER | IMPORT | FIX_ENTRIES) + word(3, 24, 10 * MIB) + word(3, 25, 8 * MIB),
    "removed_garbage_extent": u16(WRITER | IMPORT) + word(2, 24, 1 << 62) + word(2, 25, 1 << 61),
    "gen_rollback": u16(WRITER) + gen(3),
    "gen_ahead": u16(WRITER | IMPORT) + gen(1000),
    "remove_layer1": u16(WRITER | RECLAIM | FIX_ENTRIES) + removed(0, 2),
    "table_state_on_zero_body": u16(FIX_ENTRIES) + state(5, 2, 2),
    "model_renamed": u16(WRITER | IMPORT | FIX_ENTRIES) + entry(1, 32, b"x\0"),
    "host_odd_seq": u16(FIX_HOSTS | ATTACH) + host(0, 0, b"\x03"),
    "host_live_gen0": u16(WRITER | RECLAIM | FIX_HOSTS) + host(2, 92, struct.pack("<IQQQQ", 1, 0, 1 << 62, 0, 1)),
    "master_epoch0": u16(WRITER | TAKE | FIX_MASTER) + master(0, 16, u64(0)),
    "master_other_host": u16(WRITER | FIX_MASTER) + master(0, 0, b"\x01" * 16),
    "sb_pool_size": u16(FIX_SB) + raw(32, u64(4 * MIB)) + raw(88, u64(2 * MIB)),
    "sb_magic": u16(0) + raw(0, b"ENGRPOOX"),
    "sb_lease": u16(FIX_SB | WRITER | RECLAIM) + raw(124, struct.pack("<I", 0xffffffff)),
    "entry_crc_bad": u16(WRITER) + entry(3, 40, b"zz"),
}
for name, data in pool.items():
    put("pool_open", name, data)

if "--list" in sys.argv:
    for t in sorted(os.listdir(corpus)):
        print(t, len(os.listdir(os.path.join(corpus, t))))

# ---- reproducers of open library bugs (fuzz/crashes/<target>/, replayed by run.sh) -----
def crash(target, name, data):
    d = os.path.join(root, "crashes", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# parseModelJson sizes a vector by the largest vocab-map id before checking it is dense.
one = {"engram_vocab_size": 5, "max_ngram_size": 2, "n_embed_per_ngram": 1, "n_head_per_ngram": 1,
       "layer_ids": [0], "pad_id": 0, "seed": 0, "tokenizer_vocab_size": 1, "vocab_map": "vocab.npy"}
crash("fuzz_model", "vocab_map_id_2e40", json.dumps(one).encode() + b"\0" + npy("<i8", [1], struct.pack("<q", 1 << 40)))
crash("fuzz_model", "vocab_map_id_int64_max", json.dumps(one).encode() + b"\0" +
      npy("<i8", [1], struct.pack("<q", (1 << 63) - 1)))
# ModelLayout::create sums 2^62-sized head primes into a uint64 row count that wraps.
crash("fuzz_model", "layer_rows_overflow", json.dumps(
    {"engram_vocab_size": 1 << 62, "max_ngram_size": 3, "n_embed_per_ngram": 8, "n_head_per_ngram": 8,
     "layer_ids": [0], "pad_id": 0, "seed": 0, "tokenizer_vocab_size": 100, "compressed_vocab_size": 100}).encode())
