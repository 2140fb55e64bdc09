# SPDX-License-Identifier: Apache-2.0
"""Dequantize packed rows in numpy (the agent's packed output), per the row format:
fp32 as is, fp16/bf16 widened, fp8-e4m3 values times 2^(e8m0 - 127) per block of
32 values (an e8m0 byte of 255 is NaN, fp8 0x7f/0xff are NaN)."""
import numpy as np


def _e4m3_table():
    b = np.arange(256, dtype=np.int64)
    sign = np.where(b & 0x80, -1.0, 1.0)
    exp = (b >> 3) & 0xF
    man = (b & 0x7).astype(np.float64)
    normal = np.ldexp(1.0 + man / 8.0, exp - 7)
    sub = np.ldexp(man / 8.0, -6)
    v = sign * np.where(exp == 0, sub, normal)
    v[(b & 0x7F) == 0x7F] = np.nan
    return v.astype(np.float32)


E4M3 = _e4m3_table()
_E8M0 = np.append(np.ldexp(1.0, np.arange(255) - 127), np.nan).astype(np.float32)


def dequantize(packed, fmt):
    """packed: uint8 [..., row_bytes]; fmt: Agent.row_format dict. -> float32 [..., D]."""
    d = fmt["values_per_row"]
    dtype = fmt["dtype"]
    lead = packed.shape[:-1]
    flat = np.ascontiguousarray(packed).reshape(-1, packed.shape[-1])
    if dtype == "fp32":
        out = flat[:, :4 * d].copy().view(np.float32)
    elif dtype == "fp16":
        out = flat[:, :2 * d].copy().view(np.float16).astype(np.float32)
    elif dtype == "bf16":
        out = (flat[:, :2 * d].copy().view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    elif dtype == "fp8-e4m3":
        out = E4M3[flat[:, :d]]
        s = fmt["scales_per_row"]
        if s:
            scale = _E8M0[flat[:, d:d + s]]
            out = (out.reshape(-1, s, d // s) * scale[:, :, None]).reshape(-1, d)
    else:
        raise ValueError("dequantize: unsupported dtype %r" % dtype)
    return out.reshape(lead + (d,))
