# SPDX-License-Identifier: Apache-2.0
# byte_level.py - the byte-level BPE alphabet shared by the repo's tokenizer scripts
# (make_v41_checkpoint.py, make_trace.py). tests/tokenizer/token_map_ref.py keeps its own
# copy on purpose: it is the independent reference the C++ token map is checked against.


def byte_alphabet():
    """GPT-2's reversible byte-level alphabet: byte b -> the printable character that stands for it."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}
