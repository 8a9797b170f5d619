"""The language-neutral latent rule "splitmix64-ppnd7-v1": seed -> latents that any language reproduces bit for bit.

numpy's PCG64 + ziggurat normal exists only in numpy, so a seed chosen in Python could not be redrawn in a browser.
This rule uses only 64-bit integer arithmetic and IEEE float32 +, -, *, / and sqrt (correctly rounded in every
language; JavaScript rounds each double result with Math.fround, which gives the same float32 for these five
operations), never a library log or cos. It is counter-based: entry e of image i is a pure function of (seed, i, e),
so any batch, slice or order gives the same numbers. The specification is docs/DESIGN.md ("Latent rule"); the
JavaScript twin is runtime/web/latents.js. numpy only.

Rule, per entry (i, e) and attempt a (a = 0 without truncation):
    K_i   = mix64(mix64(seed + GAMMA) + (i + 1) * GAMMA)                    (all mod 2**64)
    w     = mix64(K_i + (a * 2**32 + e // 2 + 1) * GAMMA)
    u     = (w >> 8) & 0xFFFFFF (even e) or w >> 40 (odd e)                a 24-bit integer
    q     = (float32(u) - 8388607.5) * 2**-24                               exact: (u + 0.5) / 2**24 - 0.5
    z     = Wichura's AS241 PPND7 inverse normal CDF at p = q + 0.5, in float32 (`_ppnd7`)
Truncation t: an entry with |z| > float32(t) takes attempt a + 1, until |z| <= float32(t).
"""

from __future__ import annotations

import numpy as np

__all__ = ["GAMMA", "RULE", "check_rule_seed", "mix64", "rule_normals", "rule_truncated"]

RULE = "splitmix64-ppnd7-v1"

_U64 = np.uint64
GAMMA = 0x9E3779B97F4A7C15  # SplitMix64's increment (2**64 / golden ratio)
_M1, _M2 = _U64(0xBF58476D1CE4E5B9), _U64(0x94D049BB133111EB)  # SplitMix64's finaliser (Stafford's mix 13)
_MASK24 = _U64(0xFFFFFF)
_ROWS_PER_CHUNK_ENTRIES = 1 << 16  # entries per working chunk: every temporary stays in L2 (~256 KiB float32)

_F = np.float32
# AS241 PPND7 (Wichura 1988), ~1e-7 relative: central |q| <= 0.425, tail r = sqrt(-ln(min(p, 1 - p))) <= 5 (our
# p >= 2**-25 keeps r <= 4.17, so the r > 5 branch of PPND7 is never needed).
_A = tuple(_F(c) for c in (3.3871327179, 50.434271938, 159.29113202, 59.109374720))
_B = tuple(_F(c) for c in (17.895169469, 78.757757664, 67.187563600))
_C = tuple(_F(c) for c in (1.4234372777, 2.7568153900, 1.3067284816, 0.17023821103))
_D = tuple(_F(c) for c in (0.73700164250, 0.12021132975))
_SPLIT, _CENTRE, _SHIFT = _F(0.425), _F(0.180625), _F(1.6)
_HALF, _ONE, _TWO = _F(0.5), _F(1.0), _F(2.0)
_SQRT_HALF, _LN2 = _F(0.70710678), _F(0.693147180559945)
_INV = tuple(_F(1.0 / k) for k in (9, 7, 5, 3))  # the atanh series of ln: 1/9, 1/7, 1/5, 1/3
_Q_OFFSET, _Q_SCALE = _F(8388607.5), _F(2.0**-24)


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 (in place, wrapping): x ^= x >> 30; x *= M1; x ^= x >> 27; x *= M2;
    x ^= x >> 31."""
    with np.errstate(over="ignore"):
        x ^= x >> _U64(30)
        x *= _M1
        x ^= x >> _U64(27)
        x *= _M2
        x ^= x >> _U64(31)
    return x


def check_rule_seed(seed: int) -> int:
    """The rule's seeds are 0 <= seed < 2**64 (a JavaScript caller passes them as BigInt or a safe integer)."""
    if not 0 <= int(seed) < 2**64:
        from edgegan.runtime.errors import GeneratorInputError

        raise GeneratorInputError(f"seed must be in [0, 2**64) for latent rule {RULE}, got {seed}")
    return int(seed)


def _image_keys(seed: int, start: int, stop: int) -> np.ndarray:
    """K_i for images start..stop-1: uint64 [stop - start]."""
    key = mix64(np.array([(check_rule_seed(seed) + GAMMA) % 2**64], np.uint64))
    with np.errstate(over="ignore"):
        keys = np.arange(start + 1, stop + 1, dtype=np.uint64) * _U64(GAMMA) + key  # [n]
    return mix64(keys)


def _uniform24(keys: np.ndarray, pairs: np.ndarray, attempt: int) -> np.ndarray:
    """The 24-bit integers u of both entries of pairs `pairs` (entries 2j, 2j + 1; int64 [m] or [J]) of images with
    keys `keys` (uint64 [m], or [n, 1] broadcasting against pairs [J]) at one attempt: uint32, the broadcast shape
    with a last axis of 2 (even entry, odd entry)."""
    with np.errstate(over="ignore"):
        counter = (pairs.astype(np.uint64) + _U64((attempt << 32) + 1)) * _U64(GAMMA)
        w = mix64(keys + counter)
    # Little-endian uint32 halves of w: [..., 0] = low 32 bits (even entry), [..., 1] = high 32 bits (odd entry).
    halves = w.astype("<u8", copy=False).view("<u4").reshape(*w.shape, 2)
    return halves >> np.uint32(8)


def _ln(p: np.ndarray) -> np.ndarray:
    """ln(p) for float32 p > 0 (normal), in float32 from +, -, *, / only: p = m * 2**E (frexp, exact), m moved into
    [sqrt(1/2), sqrt(2)), ln m = 2t(1 + t^2/3 + t^4/5 + t^6/7 + t^8/9) with t = (m - 1)/(m + 1), |t| <= 0.172."""
    m, e = np.frexp(p)  # m float32 in [0.5, 1), e int32
    low = m < _SQRT_HALF
    m = np.where(low, m * _TWO, m)
    e = (e - low).astype(np.float32)
    t = (m - _ONE) / (m + _ONE)
    t2 = t * t
    poly = (((_INV[0] * t2 + _INV[1]) * t2 + _INV[2]) * t2 + _INV[3]) * t2 + _ONE
    return e * _LN2 + (t + t) * poly


def _ppnd7(u: np.ndarray) -> np.ndarray:
    """24-bit integers u (any unsigned dtype) -> float32 standard normals (same shape), the rule's normal.

    In-place float32 operations in exactly the order the specification states (the JavaScript twin rounds after
    each of the same operations), so the result is the same bits."""
    q = u.astype(np.float32)
    q -= _Q_OFFSET
    q *= _Q_SCALE  # exact: p - 0.5 with p = (u + 0.5) / 2**24
    r = q * q
    np.subtract(_CENTRE, r, out=r)
    num = _A[3] * r
    for c in (_A[2], _A[1]):
        num += c
        num *= r
    num += _A[0]
    den = _B[2] * r
    for c in (_B[1], _B[0]):
        den += c
        den *= r
    den += _ONE
    num /= den
    num *= q  # z = q * (A(r) / B(r))
    flat_q, z = q.reshape(-1), num.reshape(-1)
    tail = np.flatnonzero(np.abs(flat_q) > _SPLIT)  # ~15% of entries
    if len(tail):
        qt = flat_q[tail]
        s = np.sqrt(-_ln(_HALF - np.abs(qt))) - _SHIFT  # 0.5 - |q| is exact (Sterbenz): min(p, 1 - p) >= 2**-25
        zt = (((_C[3] * s + _C[2]) * s + _C[1]) * s + _C[0]) / ((_D[1] * s + _D[0]) * s + _ONE)
        z[tail] = np.where(qt < 0, -zt, zt)
    return num


def _entries(halves: np.ndarray, nz: int) -> np.ndarray:
    """[..., J, 2] pair halves -> [..., nz] entries (entry 2j + k is halves[..., j, k])."""
    return halves.reshape(*halves.shape[:-2], -1)[..., :nz]


def rule_normals(seed: int, start: int, stop: int, nz: int) -> np.ndarray:
    """The rule's latents (attempt 0) of images start..stop-1: float32 [stop - start, nz].

    Rows are computed in chunks of ~64k entries so every temporary stays in cache (the speed of numpy's own
    standard_normal at n = 10,000, nz = 100; README "In the browser and in JavaScript" gives the measurement).
    """
    out = np.empty((stop - start, nz), np.float32)
    pairs = np.arange((nz + 1) // 2, dtype=np.int64)
    keys = _image_keys(seed, start, stop)[:, None]  # [n, 1]
    step = max(1, _ROWS_PER_CHUNK_ENTRIES // max(nz, 1))
    for a in range(0, stop - start, step):
        b = min(a + step, stop - start)
        out[a:b] = _ppnd7(_entries(_uniform24(keys[a:b], pairs, 0), nz))
    return out


def _redraw_outside(flat: np.ndarray, keys: np.ndarray, nz: int, threshold: np.float32) -> None:
    """Truncate one chunk in place: flat is float32 [rows * nz] (row-major), keys uint64 [rows] their K_i."""
    index = np.flatnonzero(np.abs(flat) > threshold)  # [m] entries still outside
    keys = keys[index // nz]  # [m] each entry's K_i
    entry = index % nz
    pair, odd = (entry // 2).astype(np.uint64), (entry % 2).astype(bool)
    attempt = 0
    while len(index):
        attempt += 1
        with np.errstate(over="ignore"):
            w = mix64(keys + (pair + _U64((attempt << 32) + 1)) * _U64(GAMMA))  # [m], as _uniform24
        redrawn = _ppnd7(np.where(odd, w >> _U64(40), (w >> _U64(8)) & _MASK24))  # [m]
        flat[index] = redrawn
        keep = np.abs(redrawn) > threshold
        index, keys, pair, odd = index[keep], keys[keep], pair[keep], odd[keep]


def rule_truncated(seed: int, start: int, stop: int, nz: int, truncation: float) -> np.ndarray:
    """The rule's latents of images start..stop-1 with every |z| <= float32(truncation): an entry outside takes
    its next attempt (a = 1, 2, ...) until it falls inside; entries inside keep attempt 0. float32 [stop - start, nz].

    In chunks of rows, as rule_normals, so the redraws of each chunk stay in cache.
    """
    z = rule_normals(seed, start, stop, nz)
    threshold = np.float32(truncation)
    keys = _image_keys(seed, start, stop)  # [n]
    step = max(1, _ROWS_PER_CHUNK_ENTRIES // max(nz, 1))
    for a in range(0, stop - start, step):
        b = min(a + step, stop - start)
        _redraw_outside(z[a:b].reshape(-1), keys[a:b], nz, threshold)  # z[a:b] is contiguous: a view
    return z
