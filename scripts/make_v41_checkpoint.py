#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# make_v41_checkpoint.py - a DeepSeek-V4.1-shaped Hugging Face checkpoint, small enough to import here.
#
# Real structure: config.json with V4.1's engram_* fields and quantization_config,
# a byte-level BPE tokenizer.json (synthetic: byte tokens, merged words with case and
# accent variants that share a compressed key, added/special tokens), and
# model.safetensors.index.json over two shards that hold layers.{L}.engram.embed.weight
# (F8_E4M3 [rows, 256]) and .scale (F8_E8M0 [rows, 8]) plus a non-Engram tensor.
# engram_vocab_size is scaled down (default 40000 per order: ~1M rows per layer, ~250 MB).
# engram_num_embeddings and engram_compressed_vocab_size are computed with the
# engrampool CLI (`model` for the prime sums, `tokenmap` for the map), so they agree
# with what an import checks. python3 + numpy only.
#
#   make_v41_checkpoint.py OUT_DIR [--cli build/pool_manager/engrampool] [--vocab 40000]
#       [--seed 1] [--layers 1,14] [--scale-name scale|weight_scale_inv]
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from byte_level import byte_alphabet  # noqa: E402

HEAD_DIM = 256
HEADS = 8
MAX_NGRAM = 4
BLOCK = 32


def make_tokenizer(rng, n_words):
    alpha = byte_alphabet()
    enc = lambda s: "".join(alpha[b] for b in s.encode("utf-8"))  # noqa: E731
    specials = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>"]
    vocab = {}

    def add(tok):
        if tok not in vocab:
            vocab[tok] = len(vocab) + len(specials)
    for b in range(256):
        add(alpha[b])
    letters = "abcdefghijklmnopqrstuvwxyz"
    accents = ["é", "è", "ü", "ñ", "ç", "å", "ø", "ß", "ﬁ", "Ａ", "ｂ", "Ω", "İ"]
    words = set()
    while len(words) < n_words:
        w = "".join(rng.choice(list(letters), size=int(rng.integers(2, 8))))
        if rng.random() < 0.15:
            w = w[: len(w) // 2] + str(rng.choice(accents)) + w[len(w) // 2:]
        words.add(w)
    for w in sorted(words):
        add(enc(w))
        add(enc(" " + w))          # Ġword
        if rng.random() < 0.3:
            add(enc(" " + w.capitalize()))   # shares the key of " word"
        if rng.random() < 0.1:
            add(enc(w.upper()))
    for ws in ["  ", "\n", "\n\n", "\t", " \n ", "\u3000"]:
        add(enc(ws))
    added = [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, s in enumerate(specials)]
    # Added, non-special tokens after the base vocabulary (image placeholders etc.).
    for s in ["<image>", "<｜User｜>", "<｜Assistant｜>"]:
        added.append({"id": len(vocab) + len(added), "content": s,
                      "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
                      "special": False})
    merges = []
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                          "use_regex": False},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "vocab": vocab, "merges": merges},
    }


def run(cli, *args):
    r = subprocess.run([cli, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"make_v41_checkpoint: {cli} {' '.join(args)} failed: {r.stderr.strip()}")
    return json.loads(r.stdout)


def write_safetensors(path, tensors):
    """tensors: list of (name, dtype, shape, bytes-like)."""
    header, off = {}, 0
    for name, dtype, shape, data in tensors:
        n = len(data) if isinstance(data, (bytes, bytearray)) else data.nbytes
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for _, _, _, data in tensors:
            f.write(data if isinstance(data, (bytes, bytearray)) else data.tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out")
    ap.add_argument("--cli", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build",
                                                  "pool_manager", "engrampool"))
    ap.add_argument("--vocab", type=int, default=40000, help="engram_vocab_size (one for every order)")
    ap.add_argument("--words", type=int, default=1500, help="merged words in the tokenizer")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--layers", default="1,14")
    ap.add_argument("--scale-name", default="scale", choices=["scale", "weight_scale_inv"])
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    layers = [int(x) for x in a.layers.split(",")]
    os.makedirs(a.out, exist_ok=True)

    tok = make_tokenizer(rng, a.words)
    tok_path = os.path.join(a.out, "tokenizer.json")
    with open(tok_path, "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    n_ids = len(tok["model"]["vocab"]) + len(tok["added_tokens"])

    with tempfile.TemporaryDirectory() as tmp:
        tm = run(a.cli, "tokenmap", tok_path, "--out", os.path.join(tmp, "map.npy"), "--json")
        model = {"name": "probe", "engram_vocab_size": a.vocab, "max_ngram_size": MAX_NGRAM,
                 "n_embed_per_ngram": HEAD_DIM * HEADS, "n_head_per_ngram": HEADS, "layer_ids": layers,
                 "pad_id": 2, "seed": 0, "tokenizer_vocab_size": n_ids, "compressed_vocab_size": n_ids,
                 "dtype": "fp8-e4m3", "scale": {"dtype": "e8m0", "block": BLOCK}}
        mp = os.path.join(tmp, "probe.json")
        with open(mp, "w") as f:
            json.dump(model, f)
        lay = run(a.cli, "model", mp, "--json")
    compressed = tm.get("compressed_size", tm.get("compressed_vocab_size"))
    rows = [L["rows"] for L in lay["layers"]]

    config = {
        "architectures": ["DeepseekV41ForCausalLM"],
        "model_type": "deepseek_v41",
        "hidden_size": 1024,
        "num_hidden_layers": max(layers) + 2,
        "vocab_size": n_ids + 61,            # the embedding is padded past the tokenizer, as in V4.1
        "engram_layer_ids": layers,
        "engram_max_ngram_size": MAX_NGRAM,
        "engram_n_heads": HEADS,
        "engram_vocab_size": a.vocab,
        "engram_num_embeddings": rows,
        "engram_head_dim": HEAD_DIM,
        "engram_compressed_vocab_size": compressed,
        "engram_pad_token_id": 2,
        "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                                "scale_fmt": "ue8m0", "weight_block_size": [BLOCK, BLOCK]},
        "torch_dtype": "bfloat16",
    }
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)

    # Layer i's tables go to shard i+1 (the last shards, as in V4.1); the scale of the
    # last layer sits in the first shard so one layer spans two shards.
    weight_map, shards = {}, {}
    shard_names = [f"model-{i + 1:05d}-of-{len(layers):05d}.safetensors" for i in range(len(layers))]
    for s in shard_names:
        shards[s] = []
    shards[shard_names[0]].append(("embed.weight", "BF16", [16, 8], np.zeros((16, 8), dtype=np.uint16)))
    for i, L in enumerate(layers):
        w = rng.integers(0, 256, size=(rows[i], HEAD_DIM), dtype=np.uint8)
        w[(w & 0x7F) == 0x7F] = 0   # no e4m3 NaNs
        sc = rng.integers(120, 135, size=(rows[i], HEAD_DIM // BLOCK), dtype=np.uint8)
        ws = shard_names[i]
        ss = shard_names[0] if i == len(layers) - 1 else ws
        shards[ws].append((f"layers.{L}.engram.embed.weight", "F8_E4M3", w.shape, w))
        shards[ss].append((f"layers.{L}.engram.embed.{a.scale_name}", "F8_E8M0", sc.shape, sc))
        shards[ws].append((f"layers.{L}.engram.wkv.weight", "BF16", [4, 4], np.ones((4, 4), dtype=np.uint16)))
    for s, ts in shards.items():
        write_safetensors(os.path.join(a.out, s), ts)
        for name, *_ in ts:
            weight_map[name] = s
    total = sum(os.path.getsize(os.path.join(a.out, s)) for s in shards)
    with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    print(json.dumps({"dir": a.out, "tokenizer_ids": n_ids, "compressed_vocab_size": compressed,
                      "engram_num_embeddings": rows, "shards": list(shards), "bytes": total}))


if __name__ == "__main__":
    main()
