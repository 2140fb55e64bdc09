#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""make_trace.py - a token trace (docs/TRACE.md) from text files and a tokenizer.json.

    scripts/make_trace.py --tokenizer tokenizer.json --out trace.jsonl FILE|DIR...
    scripts/make_trace.py --byte-level --out trace.jsonl FILE|DIR...

Writes one JSON line per sequence, {"tokens": [ids...]}. A sequence is one text file, or
one paragraph-sized slice of it (--split, default: blank-line separated blocks, merged
until --min-tokens). Encoding:
  * the Hugging Face `tokenizers` package, when installed: exact ids of that tokenizer;
  * else node with the npm package `tokenizers` (the same Rust library; NODE_PATH=
    DIR/node_modules), through scripts/hf_encode.js: exact ids too;
  * else, for a byte-level BPE tokenizer.json (GPT-2, Llama 3, DeepSeek, Qwen): its vocab
    and merges applied here (pre-tokenizer split regex taken from the file when it holds
    one, else GPT-2's), close to the exact ids (special/added tokens are not matched);
  * --byte-level: no tokenizer at all, id = byte value (0..255): a demo fallback.
Ids must lie below the model's tokenizer_vocab_size; --vocab-size N checks it here.
"""
import argparse
import gzip
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from byte_level import byte_alphabet  # noqa: E402

GPT2_SPLIT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def split_patterns(pre):
    """Split regexes of a tokenizer.json pre_tokenizer (Sequence / Split / ByteLevel)."""
    if not pre:
        return []
    if pre.get("type") == "Sequence":
        out = []
        for p in pre.get("pretokenizers", []):
            out += split_patterns(p)
        return out
    if pre.get("type") == "Split":
        pat = pre.get("pattern", {})
        return [pat.get("Regex") or __import__("regex").escape(pat.get("String", ""))]
    if pre.get("type") == "ByteLevel" and pre.get("use_regex", True):
        return [GPT2_SPLIT]
    return []


class ByteLevelBPE:
    def __init__(self, doc):
        import regex
        model = doc.get("model", {})
        if model.get("type") != "BPE":
            sys.exit("make_trace: %s model is not BPE; install the `tokenizers` package" % model.get("type"))
        self.vocab = model["vocab"]
        merges = model.get("merges", [])
        self.ranks = {}
        for i, m in enumerate(merges):
            a, b = m.split(" ", 1) if isinstance(m, str) else m
            self.ranks[(a, b)] = i
        pats = split_patterns(doc.get("pre_tokenizer")) or [GPT2_SPLIT]
        self.splits = [regex.compile(p) for p in pats]
        self.b2u = byte_alphabet()
        self.cache = {}

    def _pieces(self, text):
        pieces = [text]
        for rx in self.splits:
            nxt = []
            for p in pieces:
                last = 0
                for m in rx.finditer(p):
                    if m.start() > last:
                        nxt.append(p[last:m.start()])
                    if m.group(0):
                        nxt.append(m.group(0))
                    last = m.end()
                if last < len(p):
                    nxt.append(p[last:])
            pieces = nxt
        return pieces

    def _bpe(self, word):
        if word in self.cache:
            return self.cache[word]
        parts = list(word)
        while len(parts) > 1:
            best = None
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            i = best[1]
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        ids = []
        for p in parts:
            if p in self.vocab:
                ids.append(self.vocab[p])
            else:  # not in the vocabulary: its bytes one by one
                ids += [self.vocab[c] for c in p if c in self.vocab]
        self.cache[word] = ids
        return ids

    def encode(self, text):
        ids = []
        for piece in self._pieces(text):
            ids += self._bpe("".join(self.b2u[b] for b in piece.encode("utf-8")))
        return ids


def node_encoder(tokenizer):
    """An encoder backed by node + the npm `tokenizers` (scripts/hf_encode.js), or None."""
    import shutil
    import subprocess
    if not shutil.which("node"):
        return None
    if subprocess.run(["node", "-e", "require('tokenizers')"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL).returncode != 0:
        return None
    proc = subprocess.Popen(["node", os.path.join(os.path.dirname(os.path.abspath(__file__)), "hf_encode.js"),
                             tokenizer], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            encoding="utf-8")

    def encode(text):
        proc.stdin.write(json.dumps(text) + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:
            sys.exit("make_trace: scripts/hf_encode.js stopped (exit %s)" % proc.poll())
        return json.loads(line)
    return encode


def make_encoder(a):
    if a.byte_level:
        return lambda text: list(text.encode("utf-8"))
    if not a.tokenizer:
        sys.exit("make_trace: give --tokenizer tokenizer.json or --byte-level")
    try:
        from tokenizers import Tokenizer  # exact, when available
        tok = Tokenizer.from_file(a.tokenizer)
        print("make_trace: encoding with the tokenizers package", file=sys.stderr)
        return lambda text: tok.encode(text, add_special_tokens=False).ids
    except ImportError:
        pass
    node = node_encoder(a.tokenizer)
    if node:
        print("make_trace: encoding with the npm package tokenizers (node)", file=sys.stderr)
        return node
    try:
        with open(a.tokenizer, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit("make_trace: %s: %s" % (a.tokenizer, e))
    print("make_trace: `tokenizers` not installed: byte-level BPE of %s applied here (close to exact)"
          % a.tokenizer, file=sys.stderr)
    return ByteLevelBPE(doc).encode


def text_files(paths):
    for p in paths:
        if os.path.isdir(p):
            for root, _, files in sorted(os.walk(p)):
                for f in sorted(files):
                    yield os.path.join(root, f)
        else:
            yield p


def blocks(text, mode):
    if mode == "file":
        yield text
        return
    for b in text.split("\n\n"):
        if b.strip():
            yield b + "\n\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+",
                    help="text files or directories (UTF-8, undecodable bytes replaced; *.gz decompressed)")
    ap.add_argument("--tokenizer", help="tokenizer.json (Hugging Face format)")
    ap.add_argument("--byte-level", action="store_true", help="no tokenizer: id = byte value")
    ap.add_argument("--out", required=True, help="trace file to write (JSON lines)")
    ap.add_argument("--split", choices=["paragraphs", "file"], default="paragraphs",
                    help="sequence = blank-line separated blocks merged up to --min-tokens, or a whole file")
    ap.add_argument("--min-tokens", type=int, default=256, help="merge blocks until a sequence has this many")
    ap.add_argument("--max-tokens", type=int, default=4096, help="cut sequences longer than this")
    ap.add_argument("--limit-tokens", type=int, default=0, help="stop after this many tokens (0 = all)")
    ap.add_argument("--vocab-size", type=int, default=0, help="refuse ids >= this (the model's tokenizer_vocab_size)")
    ap.add_argument("--max-file-bytes", type=int, default=16 << 20, help="skip larger input files")
    a = ap.parse_args()
    encode = make_encoder(a)
    seqs = tokens = files = 0
    with open(a.out, "w", encoding="utf-8") as out:
        def emit(ids):
            nonlocal seqs, tokens
            for i in range(0, len(ids), a.max_tokens):
                chunk = ids[i:i + a.max_tokens]
                if a.vocab_size and max(chunk) >= a.vocab_size:
                    sys.exit("make_trace: token id %d >= --vocab-size %d" % (max(chunk), a.vocab_size))
                out.write(json.dumps({"tokens": chunk}, separators=(",", ":")) + "\n")
                seqs += 1
                tokens += len(chunk)
        for path in text_files(a.inputs):
            try:
                if os.path.getsize(path) > a.max_file_bytes:
                    continue
                with (gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")) as f:
                    text = f.read().decode("utf-8", errors="replace")
            except (OSError, EOFError) as e:
                print("make_trace: skipped %s: %s" % (path, e), file=sys.stderr)
                continue
            files += 1
            pending = []
            for b in blocks(text, a.split):
                pending += encode(b)
                if a.split == "file" or len(pending) >= a.min_tokens:
                    emit(pending)
                    pending = []
            if pending:
                emit(pending)
            if a.limit_tokens and tokens >= a.limit_tokens:
                break
    if not tokens:
        sys.exit("make_trace: no token from %s" % " ".join(a.inputs))
    print("make_trace: %d sequences, %d tokens from %d files -> %s" % (seqs, tokens, files, a.out), file=sys.stderr)


if __name__ == "__main__":
    main()
