// The framing of kmnist/preprocess.py `prepare` for canvas drawings, ported step by step so the browser
// feeds the model what the server would: ink map, crop to the ink, stroke width matched by a grey
// dilation or erosion with a disk, Pillow's LANCZOS resize (its 8-bit fixed-point two-pass algorithm),
// placement by centre of mass. Float32 steps are stored in Float32Arrays, as numpy computes them.
// tests/test_live_framing.py runs this file in Node against `prepare` on generated drawings.

export const SIZE = 28;
export const INK = 0.2;

// Python's round(): halves go to the even neighbour.
export function roundHalfEven(x) {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

// Grey 0..1 from canvas RGBA bytes (transparent = white paper), then ink as high values whichever the
// polarity: the border's median tells paper from ink (preprocess.to_gray and ink_map).
export function inkMap(rgba, width, height) {
  const n = width * height;
  const gray = new Float32Array(n);
  const f = Math.fround;
  const w0 = f(0.299), w1 = f(0.587), w2 = f(0.114);
  for (let i = 0; i < n; i++) {
    const a = f(rgba[4 * i + 3] / 255);
    const na = f(1 - a);
    const r = f(f(f(rgba[4 * i] / 255) * a) + na);
    const g = f(f(f(rgba[4 * i + 1] / 255) * a) + na);
    const b = f(f(f(rgba[4 * i + 2] / 255) * a) + na);
    gray[i] = f(f(f(r * w0) + f(g * w1)) + f(b * w2));
  }
  const border = [];
  for (let x = 0; x < width; x++) border.push(gray[x], gray[(height - 1) * width + x]);
  for (let y = 0; y < height; y++) border.push(gray[y * width], gray[y * width + width - 1]);
  border.sort((p, q) => p - q);
  const m = border.length;
  const median = m % 2 ? border[(m - 1) / 2] : (border[m / 2 - 1] + border[m / 2]) / 2;
  if (median > 0.5) for (let i = 0; i < n; i++) gray[i] = Math.fround(1 - gray[i]);
  return gray;
}

// preprocess.stroke_thickness: area over half the boundary (binary erosion, cross, outside = empty).
export function strokeThickness(mask, h, w) {
  let area = 0, boundary = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (!mask[y * w + x]) continue;
      area++;
      const inner = y > 0 && y < h - 1 && x > 0 && x < w - 1 && mask[(y - 1) * w + x] && mask[(y + 1) * w + x]
        && mask[y * w + x - 1] && mask[y * w + x + 1];
      if (!inner) boundary++;
    }
  }
  return area === 0 ? 0 : 2 * area / Math.max(boundary, 1);
}

// Pad by r, then grey dilation (grow) or erosion with a disk of radius r; outside the padded array
// reads as 0, which is what scipy's reflect mode gives there (it reflects the zero padding).
function morph(src, h, w, r, dilate) {
  const H = h + 2 * r, W = w + 2 * r;
  const padded = new Float32Array(H * W);
  for (let y = 0; y < h; y++) padded.set(src.subarray(y * w, y * w + w), (y + r) * W + r);
  const offsets = [];
  for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) if (dx * dx + dy * dy <= r * r) offsets.push([dy, dx]);
  const out = new Float32Array(H * W);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      let v = dilate ? -Infinity : Infinity;
      for (const [dy, dx] of offsets) {
        const yy = y + dy, xx = x + dx;
        const p = yy < 0 || yy >= H || xx < 0 || xx >= W ? 0 : padded[yy * W + xx];
        v = dilate ? Math.max(v, p) : Math.min(v, p);
      }
      out[y * W + x] = v;
    }
  }
  return [out, H, W];
}

// Pillow's Resample.c for 8-bit images: LANCZOS (support 3) weights normalised, then fixed point with
// 22 fractional bits, rounded to uint8 after each pass.
const PRECISION_BITS = 22;

function sinc(x) {
  if (x === 0) return 1;
  x *= Math.PI;
  return Math.sin(x) / x;
}

function lanczos(x) {
  return x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0;
}

function coefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 3 * filterscale;
  const out = [];
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    const k = [];
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const v = lanczos((x + xmin - center + 0.5) * ss);
      k.push(v);
      ww += v;
    }
    const fixed = k.map((v) => {
      const n = ww !== 0 ? v / ww : v;
      return n < 0 ? Math.trunc(-0.5 + n * (1 << PRECISION_BITS)) : Math.trunc(0.5 + n * (1 << PRECISION_BITS));
    });
    out.push([xmin, fixed]);
  }
  return out;
}

function clip8(ss) {
  const v = Math.floor(ss / (1 << PRECISION_BITS));  // C's arithmetic >> on the int sum
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

// One pass along rows (horizontal) or columns (vertical) of a uint8 image.
function pass(src, h, w, outSize, horizontal) {
  const coeffs = coefficients(horizontal ? w : h, outSize);
  const oh = horizontal ? h : outSize, ow = horizontal ? outSize : w;
  const out = new Uint8Array(oh * ow);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const [min, k] = coeffs[horizontal ? x : y];
      let ss = 1 << (PRECISION_BITS - 1);
      for (let i = 0; i < k.length; i++) {
        ss += (horizontal ? src[y * w + min + i] : src[(min + i) * w + x]) * k[i];
      }
      out[y * ow + x] = clip8(ss);
    }
  }
  return out;
}

// Image.resize((w, h), LANCZOS) of a uint8 grey image. Pillow 13 does the vertical pass first when a
// shrinking image is over twice as tall as wide (found by comparing both orders against Pillow).
export function resizeLanczos(src, h, w, oh, ow) {
  let img = src, ch = h, cw = w;
  const verticalFirst = h > 2 * w && oh < h;
  const steps = verticalFirst ? ["v", "h"] : ["h", "v"];
  for (const s of steps) {
    if (s === "h" && ow !== cw) { img = pass(img, ch, cw, ow, true); cw = ow; }
    if (s === "v" && oh !== ch) { img = pass(img, ch, cw, oh, false); ch = oh; }
  }
  return img;
}

// preprocess.frame: a uint8 28x28 dataset-style image from an ink map, or null when there is no ink.
export function frame(ink, height, width, framing) {
  let count = 0, y0 = height, y1 = -1, x0 = width, x1 = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = ink[y * width + x];
      if (v > INK) {
        count++;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
      }
    }
  }
  if (count < 3) return null;
  let h = y1 - y0 + 1, w = x1 - x0 + 1;
  let crop = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) crop[y * w + x] = Math.min(Math.max(ink[(y + y0) * width + x + x0], 0), 1);
  }
  let scale = framing.box / Math.max(h, w);
  const target = framing.stroke / scale;
  const mask = crop.map((v) => (v > 0.5 ? 1 : 0));
  const grow = roundHalfEven((target - strokeThickness(mask, h, w)) / 2);
  if (grow) [crop, h, w] = morph(crop, h, w, Math.abs(grow), grow > 0);
  scale = framing.box / Math.max(h, w);
  const oh = Math.max(1, roundHalfEven(h * scale)), ow = Math.max(1, roundHalfEven(w * scale));
  const bytes = new Uint8Array(h * w);
  for (let i = 0; i < h * w; i++) bytes[i] = Math.trunc(Math.fround(crop[i] * 255));
  const resized = resizeLanczos(bytes, h, w, oh, ow);
  const small = new Float32Array(oh * ow);
  let max = 0;
  for (let i = 0; i < small.length; i++) {
    small[i] = Math.min(Math.max(Math.fround(resized[i] / 255), 0), 1);
    max = Math.max(max, small[i]);
  }
  if (max > 0) for (let i = 0; i < small.length; i++) small[i] = Math.fround(small[i] / max);
  let total = 0, sy = 0, sx = 0;
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const v = small[y * ow + x];
      total += v; sy += v * y; sx += v * x;
    }
  }
  const cy = sy / total, cx = sx / total;
  const pad = SIZE;
  let top = roundHalfEven(pad + framing.com_y - cy), left = roundHalfEven(pad + framing.com_x - cx);
  top = Math.min(Math.max(top, pad), pad + Math.max(SIZE - oh, 0)) - pad;
  left = Math.min(Math.max(left, pad), pad + Math.max(SIZE - ow, 0)) - pad;
  const out = new Uint8Array(SIZE * SIZE);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const yy = top + y, xx = left + x;
      if (yy < SIZE && xx < SIZE) out[yy * SIZE + xx] = roundHalfEven(Math.fround(small[y * ow + x] * 255));
    }
  }
  return out;
}

// The whole canvas path: RGBA pixels of the drawing to the model's 28x28 input, or null when empty.
export function prepareCanvas(rgba, width, height, framing) {
  return frame(inkMap(rgba, width, height), height, width, framing);
}
