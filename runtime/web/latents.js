// edgegan's latent rule "splitmix64-ppnd7-v1" in JavaScript: the same float32 latents as Python's
// edgegan.runtime.latent_rule for the same seed, bit for bit. Dependency-free ES module (browser and node).
//
// Only 64-bit integer arithmetic (BigInt) and float32 +, -, *, /, sqrt: each double result is rounded with
// Math.fround, which for these five operations on float32 inputs is exactly IEEE float32 arithmetic (a double
// carries more than 2 * 24 + 2 bits), so no engine's Math.log or Math.cos is involved. Specification:
// docs/DESIGN.md, "Latent rule".

export const RULE = "splitmix64-ppnd7-v1";

const MASK64 = (1n << 64n) - 1n;
const GAMMA = 0x9e3779b97f4a7c15n;
const M1 = 0xbf58476d1ce4e5b9n;
const M2 = 0x94d049bb133111ebn;
const f = Math.fround;

// AS241 PPND7 (Wichura 1988), float32; the same decimal literals as latent_rule.py, rounded the same way.
const A = [3.3871327179, 50.434271938, 159.29113202, 59.10937472].map(f);
const B = [17.895169469, 78.757757664, 67.1875636].map(f);
const C = [1.4234372777, 2.75681539, 1.3067284816, 0.17023821103].map(f);
const D = [0.7370016425, 0.12021132975].map(f);
const SPLIT = f(0.425), CENTRE = f(0.180625), SHIFT = f(1.6);
const SQRT_HALF = f(0.70710678), LN2 = f(0.693147180559945);
const INV = [1 / 9, 1 / 7, 1 / 5, 1 / 3].map(f);
const Q_OFFSET = f(8388607.5), Q_SCALE = f(2 ** -24);

/** SplitMix64's finaliser on a BigInt in [0, 2**64). */
export function mix64(x) {
  x = ((x ^ (x >> 30n)) * M1) & MASK64;
  x = ((x ^ (x >> 27n)) * M2) & MASK64;
  return x ^ (x >> 31n);
}

function seedBig(seed) {
  const s = typeof seed === "bigint" ? seed : BigInt(seed);  // BigInt(1.5) throws: seeds are integers
  if (s < 0n || s > MASK64) throw new RangeError(`seed must be in [0, 2**64), got ${seed}`);
  return s;
}

/** K_i of images start..stop-1 for a seed (BigInt[]). */
function imageKeys(seed, start, stop) {
  const key = mix64((seedBig(seed) + GAMMA) & MASK64);
  const keys = [];
  for (let i = start; i < stop; i++) keys.push(mix64((key + BigInt(i + 1) * GAMMA) & MASK64));
  return keys;
}

/** The 24-bit integer of entry e at attempt a under image key k. */
function uniform24(k, e, a) {
  const counter = (BigInt(a) << 32n) + BigInt(e >> 1) + 1n;
  const w = mix64((k + counter * GAMMA) & MASK64);
  return Number(e & 1 ? w >> 40n : (w >> 8n) & 0xffffffn);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** ln(p) for a float32 p > 0, exactly as latent_rule._ln: frexp, m into [sqrt(1/2), sqrt(2)), atanh series. */
function ln(p) {
  f32[0] = p;
  const bits = u32[0];
  let e = ((bits >>> 23) & 0xff) - 126;
  u32[0] = (bits & 0x807fffff) | (126 << 23);
  let m = f32[0];  // p = m * 2**e, m in [0.5, 1)
  if (m < SQRT_HALF) { m = f(m * 2); e -= 1; }
  const t = f(f(m - 1) / f(m + 1));
  const t2 = f(t * t);
  let poly = f(f(INV[0] * t2) + INV[1]);
  poly = f(f(poly * t2) + INV[2]);
  poly = f(f(poly * t2) + INV[3]);
  poly = f(f(poly * t2) + 1);
  return f(f(e * LN2) + f(f(t + t) * poly));
}

/** The rule's normal for a 24-bit integer u (float32, as a JS number). */
export function ppnd7(u) {
  const q = f(f(u - Q_OFFSET) * Q_SCALE);  // exact: p - 0.5, p = (u + 0.5) / 2**24
  if (Math.abs(q) <= SPLIT) {
    const r = f(CENTRE - f(q * q));
    let num = f(f(A[3] * r) + A[2]);
    num = f(f(num * r) + A[1]);
    num = f(f(num * r) + A[0]);
    let den = f(f(B[2] * r) + B[1]);
    den = f(f(den * r) + B[0]);
    den = f(f(den * r) + 1);
    return f(f(num / den) * q);
  }
  const s = f(f(Math.sqrt(-ln(f(0.5 - Math.abs(q))))) - SHIFT);
  let num = f(f(C[3] * s) + C[2]);
  num = f(f(num * s) + C[1]);
  num = f(f(num * s) + C[0]);
  const den = f(f(f(f(D[1] * s) + D[0]) * s) + 1);
  const z = f(num / den);
  return q < 0 ? -z : z;
}

/**
 * Latents of images start..stop-1 by the rule: a Float32Array of (stop - start) * nz, row-major [image, entry].
 *
 * @param {number|bigint} seed  0 <= seed < 2**64 (a Number must be a safe integer)
 * @param {number} start  first image index
 * @param {number} stop   one past the last image index
 * @param {number} nz     latent size
 * @param {number|null} truncation  null, or t: an entry with |z| > fround(t) takes its next attempt until inside
 */
export function latents(seed, start, stop, nz, truncation = null) {
  const out = new Float32Array((stop - start) * nz);
  const keys = imageKeys(seed, start, stop);
  const t = truncation === null || truncation === undefined ? Infinity : f(truncation);
  for (let i = 0; i < keys.length; i++) {
    for (let e = 0; e < nz; e++) {
      let a = 0;
      let z = ppnd7(uniform24(keys[i], e, a));
      while (Math.abs(z) > t) z = ppnd7(uniform24(keys[i], e, ++a));
      out[i * nz + e] = z;
    }
  }
  return out;
}

/** Spherical interpolation from latent a to b (Float32Array nz each) in `steps` points, ends exact. */
export function slerp(a, b, steps) {
  const nz = a.length;
  let dot = 0, na = 0, nb = 0;
  for (let k = 0; k < nz; k++) { dot += a[k] * b[k]; na += a[k] * a[k]; nb += b[k] * b[k]; }
  const omega = Math.acos(Math.min(1, Math.max(-1, dot / Math.max(Math.sqrt(na) * Math.sqrt(nb), 1e-12))));
  const out = new Float32Array(steps * nz);
  for (let s = 0; s < steps; s++) {
    const t = steps === 1 ? 0 : s / (steps - 1);
    const wa = Math.sin(omega) < 1e-6 ? 1 - t : Math.sin((1 - t) * omega) / Math.sin(omega);
    const wb = Math.sin(omega) < 1e-6 ? t : Math.sin(t * omega) / Math.sin(omega);
    for (let k = 0; k < nz; k++) out[s * nz + k] = wa * a[k] + wb * b[k];
  }
  out.set(a, 0);
  out.set(b, (steps - 1) * nz);
  return out;
}

/** float [N, C, H, W] in [-1, 1] -> uint8 [N, H, W, C]: round half to even of (x + 1) * 127.5, clipped (the
 *  contract's to_uint8_nhwc, computed in float32 as numpy does). */
export function toUint8NHWC(data, n, c, h, w) {
  const out = new Uint8Array(n * h * w * c);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const v = f(f(data[((b * c + ch) * h + y) * w + x] + 1) * 127.5);
          let r = Math.round(v);
          if (r - v === 0.5 && r % 2 !== 0) r -= 1;  // Math.round rounds halves up; numpy rounds them to even
          out[((b * h + y) * w + x) * c + ch] = Math.min(255, Math.max(0, r));
        }
  return out;
}
