#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# engram_numpy.py - straightforward numpy Engram hashing, as the reference computes it.
#
# Used by tests/hashing (independent cross-check of multipliers, primes and hashes)
# and by scripts/bench_hashing.py (the numpy baseline). Restates ENGRAM_HASHING.md
# with whole-array numpy operations; nothing here is tuned.
#
#   engram_numpy.py REQUEST.json  ->  prints the result JSON on stdout
#   request: {"config": {...model fields...}, "sequences": [[ids...], ...],
#             optional "dead": [[0/1 per token] per sequence]}
#   result:  {"prime_source", "layers": [{"layer_id", "multipliers", "primes", "offsets",
#             "hash_ids": [[[...J] per token] per sequence]}]}
#
# Dead tokens follow DEEPSEEK_V41.md (Addressing 4-6): lookback k of position t is
# blocked when lookback k-1 is, when t-k < 0 or when token t-k is dead (k = 0: the
# position itself); a blocked lookback reads pad'. Written from that text as a mask
# per lookback, not as a state machine.
import json
import sys

import numpy as np

try:  # an independent prime test where Debian's python3-sympy is installed
    import sympy
except ImportError:
    sympy = None


def is_prime(n):
    if sympy is not None:
        return bool(sympy.isprime(n))
    if n < 2:
        return False
    small = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)
    for p in small:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for a in small:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


class EngramNumpy:
    def __init__(self, cfg, lookup=None):
        n = cfg["max_ngram_size"]
        ev = cfg["engram_vocab_size"]
        if not isinstance(ev, list):
            ev = [ev] * (n - 1)
        self.n = n
        self.heads = cfg["n_head_per_ngram"]
        self.layer_ids = list(cfg["layer_ids"])
        self.lookup = None if lookup is None else np.asarray(lookup, dtype=np.int64)
        vocab = cfg["tokenizer_vocab_size"] if self.lookup is None else int(self.lookup.max()) + 1
        pad = cfg["pad_id"]
        self.pad = pad if self.lookup is None or pad < 0 else int(self.lookup[pad])

        max_mult = (2**63 - 1) // vocab
        half = max(1, max_mult // 2)
        self.multipliers = {}
        for lid in self.layer_ids:
            rng = np.random.default_rng(cfg["seed"] + 10007 * lid)
            r = rng.integers(0, half, size=n, dtype=np.int64)
            self.multipliers[lid] = r * 2 + 1

        seen = set()
        self.primes = {}
        for lid in self.layer_ids:
            per_layer = []
            for order in range(2, n + 1):
                start = ev[order - 2] - 1
                for _ in range(self.heads):
                    c = start + 1
                    while not is_prime(c) or c in seen:
                        c += 1
                    seen.add(c)
                    per_layer.append(c)
                    start = c
            self.primes[lid] = per_layer
        self.offsets = {lid: [int(v) for v in np.concatenate([[0], np.cumsum(p)[:-1]])]
                        for lid, p in self.primes.items()}

    def hash(self, x, dead=None):
        """x: int64 [B, T] raw ids, dead: bool [B, T] or None -> {layer_id: int64 [B, T, J] hash ids}."""
        x = np.asarray(x, dtype=np.int64)
        dead = np.zeros(x.shape, dtype=bool) if dead is None else np.asarray(dead, dtype=bool)
        x = np.where(dead, 0, x)  # a dead token's id is never used
        if self.lookup is not None:
            x = np.where(x >= 0, self.lookup[np.maximum(x, 0)], x)
        B, T = x.shape
        blocked = dead.copy()  # lookback 0 is blocked when the position itself is dead
        shifted = [np.where(blocked, self.pad, x)]
        for k in range(1, self.n):
            s = np.pad(x, ((0, 0), (k, 0)), mode="constant", constant_values=self.pad)[:, :T]
            gone = np.pad(dead, ((0, 0), (k, 0)), mode="constant", constant_values=True)[:, :T]
            blocked = blocked | gone  # t-k < 0 or token t-k dead, or an earlier lookback blocked
            shifted.append(np.where(blocked, self.pad, s))
        out = {}
        with np.errstate(over="ignore"):
            for lid in self.layer_ids:
                m = self.multipliers[lid]
                mix = shifted[0] * m[0]
                heads = []
                for order in range(2, self.n + 1):
                    mix = np.bitwise_xor(mix, shifted[order - 1] * m[order - 1])
                    for j in range(self.heads):
                        p = self.primes[lid][(order - 2) * self.heads + j]
                        heads.append(mix % p)
                out[lid] = np.stack(heads, axis=2)
        return out


def main():
    with open(sys.argv[1]) as f:
        req = json.load(f)
    e = EngramNumpy(req["config"], req.get("vocab_map"))
    hashes = {lid: [] for lid in e.layer_ids}
    seqs = req.get("sequences", [])
    deads = req.get("dead") or [None] * len(seqs)
    for seq, dead in zip(seqs, deads):
        if not seq:
            for lid in e.layer_ids:
                hashes[lid].append([])
            continue
        h = e.hash(np.array([seq], dtype=np.int64), None if dead is None else np.array([dead], dtype=bool))
        for lid in e.layer_ids:
            hashes[lid].append(h[lid][0].tolist())
    print(json.dumps({"prime_source": "sympy" if sympy is not None else "miller-rabin", "layers": [{
        "layer_id": lid,
        "multipliers": [int(v) for v in e.multipliers[lid]],
        "primes": e.primes[lid],
        "offsets": e.offsets[lid],
        "hash_ids": hashes[lid],
    } for lid in e.layer_ids]}))


if __name__ == "__main__":
    main()
