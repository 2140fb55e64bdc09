#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# token_map_ref.py - an independent token map (Python's unicodedata, no ICU) and a generator
# of test tokenizers.
#
#   token_map_ref.py gen SEED OUT.json [N [bytelevel|spm]]
#                                              write a tokenizer.json of ~N tokens: byte-level BPE
#                                              (DeepSeek's kind) or SentencePiece-style (byte fallback)
#   token_map_ref.py map TOKENIZER.json        print the map as JSON {"map": [...], "keys": K}
#   token_map_ref.py check TOKENIZER.json MAP.npy   exit 0 when MAP.npy equals this map, 1 if not
#
# The rules are DeepSeek's Engram CompressedTokenizer: decode each id alone with the
# tokenizer's decoder, U+FFFD -> raw token, else NFKC, NFD, drop marks, lowercase per
# character, whitespace runs, lone-space sentinel (U+E000), strip White_Space, sentinel back.
import json
import random
import re
import struct
import sys
import unicodedata

SENTINEL = '\ue000'


def byte_alphabet():
    """GPT-2's bytes_to_unicode: byte -> the character that stands for it."""
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


B2C = byte_alphabet()
C2B = {c: b for b, c in B2C.items()}


def is_white_space(c):
    # Unicode White_Space = str.isspace() minus U+001C..U+001F (which Python counts as
    # separators but White_Space does not); U+FEFF is in neither.
    return c.isspace() and c not in '\x1c\x1d\x1e\x1f'


def normalize(text):
    s = unicodedata.normalize('NFKC', text)
    s = unicodedata.normalize('NFD', s)
    s = ''.join(c for c in s if not unicodedata.category(c).startswith('M'))
    s = ''.join(c.lower() for c in s)  # one character at a time: no final-sigma context
    s = re.sub('[ \t\r\n]+', ' ', s)
    if s == ' ':
        s = SENTINEL
    i, j = 0, len(s)
    while i < j and is_white_space(s[i]):
        i += 1
    while j > i and is_white_space(s[j - 1]):
        j -= 1
    return s[i:j].replace(SENTINEL, ' ')


def decoder_steps(d):
    if d is None:
        return None
    if d['type'] == 'Sequence':
        out = []
        for x in d['decoders']:
            out += decoder_steps(x)
        return out
    return [d]


def decode(steps, tokens):
    if steps is None:
        return ' '.join(tokens)
    for d in steps:
        t = d['type']
        if t == 'ByteLevel':
            bs = bytearray()
            for tok in tokens:
                if all(c in C2B for c in tok):
                    bs += bytes(C2B[c] for c in tok)
                else:
                    bs += tok.encode('utf-8')
            tokens = [bs.decode('utf-8', errors='replace')]
        elif t == 'ByteFallback':
            out, run = [], bytearray()

            def flush():
                if run:
                    try:
                        out.append(run.decode('utf-8'))
                    except UnicodeDecodeError:
                        out.extend(['\ufffd'] * len(run))
                    run.clear()
            for tok in tokens:
                m = re.fullmatch(r'<0x([0-9A-Fa-f]{2})>', tok)
                if m:
                    run.append(int(m.group(1), 16))
                    continue
                flush()
                out.append(tok)
            flush()
            tokens = out
        elif t == 'Fuse':
            tokens = [''.join(tokens)]
        elif t == 'Metaspace':
            rep = d.get('replacement', '\u2581')
            drop = d['prepend_scheme'] != 'never' if 'prepend_scheme' in d else d.get('add_prefix_space', True)
            tokens = [tok.replace(rep, '' if i == 0 and drop else ' ') for i, tok in enumerate(tokens)]
        elif t == 'Replace':
            tokens = [tok.replace(d['pattern']['String'], d['content']) for tok in tokens]
        elif t == 'Strip':
            c, a, z = d['content'], d.get('start', 0), d.get('stop', 0)
            out = []
            for tok in tokens:
                i = 0
                while i < len(tok) and i < a and tok[i] == c:
                    i += 1
                j, cut = len(tok), 0
                while j > i and cut < z and tok[j - 1] == c:
                    j -= 1
                    cut += 1
                out.append(tok[i:j])
            tokens = out
        else:
            raise SystemExit('unsupported decoder ' + t)
    return ''.join(tokens)


def token_map(tok):
    vocab = tok['model']['vocab']
    by_id = {}
    if isinstance(vocab, dict):
        for k, v in vocab.items():
            by_id[v] = k
    else:
        for i, (k, _) in enumerate(vocab):
            by_id[i] = k
    for a in tok.get('added_tokens') or []:
        by_id[a['id']] = a['content']
    n = max(by_id) + 1
    assert all(i in by_id for i in range(n)), 'gap in ids'
    steps = decoder_steps(tok.get('decoder'))
    keys, out = {}, []
    for i in range(n):
        raw = by_id[i]
        text = decode(steps, [raw])
        if '\ufffd' in text:
            key = raw
        else:
            norm = normalize(text)
            key = norm if norm else text
        out.append(keys.setdefault(key, len(keys)))
    return out, len(keys)


def read_npy_i8(path):
    b = open(path, 'rb').read()
    assert b[:6] == b'\x93NUMPY', path + ': not .npy'
    hl = struct.unpack('<H', b[8:10])[0] if b[6] == 1 else struct.unpack('<I', b[8:12])[0]
    off = (10 if b[6] == 1 else 12) + hl
    assert "'<i8'" in b[:off].decode('latin1'), path + ': not int64'
    n = (len(b) - off) // 8
    return list(struct.unpack('<%dq' % n, b[off:off + 8 * n]))


def assigned(rng, lo, hi):
    while True:
        c = chr(rng.randrange(lo, hi))
        if unicodedata.category(c) not in ('Cn', 'Cs'):
            return c


# Ranges to draw characters from: Latin with accents, Greek, Cyrillic, Armenian, Hebrew,
# Arabic, Devanagari, Thai, Hangul jamo, combining marks, general punctuation and spaces,
# letterlike and number forms, CJK, Hangul, compatibility/full-width forms, math
# alphanumerics, emoji, Turkish I, sigma, U+FEFF, private use.
RANGES = [(0x20, 0x7F), (0xA0, 0x250), (0x300, 0x370), (0x370, 0x400), (0x400, 0x530), (0x530, 0x590),
          (0x590, 0x600), (0x600, 0x700), (0x900, 0x980), (0xE00, 0xE80), (0x1100, 0x1200),
          (0x1AB0, 0x1ABF), (0x1E00, 0x1F00), (0x1F00, 0x2000), (0x2000, 0x2070), (0x2070, 0x2100),
          (0x2100, 0x2190), (0x2460, 0x2500), (0x3000, 0x3100), (0x3300, 0x3400), (0x4E00, 0x9FA0),
          (0xAC00, 0xD7A0), (0xF900, 0xFB50), (0xFE00, 0xFE70), (0xFF00, 0xFFF0), (0x1D400, 0x1D800),
          (0x1F300, 0x1F700), (0xE000, 0xE010)]
SPECIALS = ['\u0130', '\u03a3', '\u03c2', '\ufeff', '\u00a0', '\u3000', '\u200b', '\u0085', '\u2028', '\x1c',
            '\t', '\n', '\r', ' ', '\u0301', '\u20dd', '\u0903', 'ﬁ', 'Å', 'Ω', '½', '\ue000', '\ufffd']


def gen_spm(seed, n):
    """A Llama-style tokenizer: <0xNN> byte tokens, words with U+2581 for spaces, and the
    Replace / ByteFallback / Fuse / Strip decoder sequence."""
    rng = random.Random(seed)
    vocab = {'<unk>': 0, '<s>': 1, '</s>': 2}
    for b in range(256):
        vocab['<0x%02X>' % b] = len(vocab)
    while len(vocab) < n:
        lo, hi = rng.choice(RANGES)
        s = ''.join(assigned(rng, lo, hi) for _ in range(rng.randint(1, 3)))
        s = rng.choice(['', '\u2581', '\u2581\u2581']) + s.replace(' ', '\u2581')
        vocab.setdefault(s, len(vocab))
    added = [{'id': i, 'content': c, 'single_word': False, 'lstrip': False, 'rstrip': False,
              'normalized': False, 'special': True} for c, i in list(vocab.items())[:3]]
    return {
        'version': '1.0', 'truncation': None, 'padding': None, 'added_tokens': added,
        'normalizer': None, 'pre_tokenizer': None, 'post_processor': None,
        'decoder': {'type': 'Sequence', 'decoders': [
            {'type': 'Replace', 'pattern': {'String': '\u2581'}, 'content': ' '},
            {'type': 'ByteFallback'}, {'type': 'Fuse'},
            {'type': 'Strip', 'content': ' ', 'start': 1, 'stop': 0}]},
        'model': {'type': 'BPE', 'dropout': None, 'unk_token': '<unk>', 'continuing_subword_prefix': None,
                  'end_of_word_suffix': None, 'fuse_unk': True, 'byte_fallback': True, 'ignore_merges': False,
                  'vocab': vocab, 'merges': []},
    }


def gen(seed, n):
    rng = random.Random(seed)
    seen = set()
    vocab = {}

    def add(bs):
        if bs and bs not in seen:
            seen.add(bs)
            vocab[''.join(B2C[x] for x in bs)] = len(vocab)
    specials = ['<｜begin▁of▁sentence｜>', '<｜end▁of▁sentence｜>', '<｜▁pad▁｜>']
    for s in specials:
        vocab[s] = len(vocab)
    for b in range(256):  # every single byte: the partial UTF-8 tokens
        add(bytes([b]))
    while len(vocab) < n:
        r = rng.random()
        if r < 0.6:
            lo, hi = rng.choice(RANGES)
            s = ''.join(assigned(rng, lo, hi) for _ in range(rng.randint(1, 4)))
        elif r < 0.75:
            s = ''.join(rng.choice(SPECIALS + ['a', 'I', 'E']) for _ in range(rng.randint(1, 3)))
        elif r < 0.85:
            s = rng.choice(['', ' ', '  ', '\n', ' \t']) + rng.choice(['Hello', 'hello', 'HELLO', 'Héllo', 'ＨＥＬＬＯ', 'straße', 'ΣΑΣ', 'İstanbul'])
        else:
            s = None
        if s is None:  # a multi-byte character cut short, or its tail
            c = assigned(rng, 0x80, 0x30000).encode('utf-8')
            k = rng.randint(1, len(c) - 1) if len(c) > 1 else 1
            add(c[:k] if rng.random() < 0.5 else c[k:])
        else:
            add(s.encode('utf-8'))
    added = []
    for i, s in enumerate(specials):
        added.append({'id': i, 'content': s, 'single_word': False, 'lstrip': False, 'rstrip': False,
                      'normalized': False, 'special': True})
    extra = ['<think>', '</think>', '<｜User｜>', '<｜Assistant｜>', '<|EOT|>', '  <pad>  ', 'ĠHello', 'ÃĦ', '\ufeff<bom>', 'İ']
    for s in extra:
        if s in vocab:
            continue
        added.append({'id': len(vocab) + len(added) - len(specials), 'content': s, 'single_word': False,
                      'lstrip': False, 'rstrip': False, 'normalized': rng.random() < 0.5, 'special': rng.random() < 0.5})
    return {
        'version': '1.0', 'truncation': None, 'padding': None, 'added_tokens': added, 'normalizer': None,
        'pre_tokenizer': {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': True},
        'post_processor': None,
        'decoder': {'type': 'ByteLevel', 'add_prefix_space': True, 'trim_offsets': True, 'use_regex': True},
        'model': {'type': 'BPE', 'dropout': None, 'unk_token': None, 'continuing_subword_prefix': None,
                  'end_of_word_suffix': None, 'fuse_unk': False, 'byte_fallback': False, 'ignore_merges': False,
                  'vocab': vocab, 'merges': []},
    }


def main(argv):
    if len(argv) >= 3 and argv[0] == 'gen':
        n = int(argv[3]) if len(argv) > 3 else 3000
        style = argv[4] if len(argv) > 4 else 'bytelevel'
        doc = gen_spm(int(argv[1]), n) if style == 'spm' else gen(int(argv[1]), n)
        with open(argv[2], 'w', encoding='utf-8') as f:
            json.dump(doc, f, ensure_ascii=False)
        return 0
    if len(argv) == 2 and argv[0] == 'map':
        m, k = token_map(json.load(open(argv[1], encoding='utf-8')))
        print(json.dumps({'map': m, 'keys': k}))
        return 0
    if len(argv) == 3 and argv[0] == 'check':
        tok = json.load(open(argv[1], encoding='utf-8'))
        m, k = token_map(tok)
        ours = read_npy_i8(argv[2])
        if ours == m:
            print('OK: %d ids, %d keys' % (len(m), k))
            return 0
        print('DIFFER: %d ids here, %d in %s' % (len(m), len(ours), argv[2]))
        by_id = {v: kk for kk, v in tok['model']['vocab'].items()} if isinstance(tok['model']['vocab'], dict) else {}
        for a in tok.get('added_tokens') or []:
            by_id[a['id']] = a['content']
        bad = [i for i in range(min(len(m), len(ours))) if m[i] != ours[i]]
        for i in bad[:10]:
            print('  id %d: map %d here, %d there; token %r' % (i, m[i], ours[i], by_id.get(i)))
        print('%d ids differ' % len(bad))
        return 1
    print(__doc__ or 'usage: gen SEED OUT.json [N] | map TOKENIZER.json | check TOKENIZER.json MAP.npy', file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
