// MNIST-style preprocessing in the browser: a line-by-line mirror of service/images.py, so the
// page's in-browser prediction sees the same 28x28 input as the service's image route.
// tests/e2e/test_edge_snippets.py runs this module in Node and compares it with the Python.
// A change to either file must be made in both (the constants too).

export const DIGIT_FRACTION = 20 / 28;
export const INK_THRESHOLD = 51.0;
export const MIN_CONTRAST = 16.0;

// RGBA bytes (opaque: composite transparency on white first) -> Float32Array [height * width], 0..255.
export function preprocess(rgba, w, h, height, width) {
  return normaliseDigit(grayscale(rgba, w, h), w, h, height, width);
}

// Step 1: grayscale with Pillow's integer ITU-R 601-2 weights, as Image.convert("L") does.
export function grayscale(rgba, w, h) {
  const gray = new Float32Array(w * h);
  for (let i = 0, p = 0; i < gray.length; i++, p += 4) {
    gray[i] = (rgba[p] * 19595 + rgba[p + 1] * 38470 + rgba[p + 2] * 7471 + 0x8000) >>> 16;
  }
  return gray;
}

// Steps 2-6 (normalise_digit in service/images.py) on grayscale [h * w]; all zeros when blank.
// Images are {data, w, h} with data row-major.
export function normaliseDigit(gray, w, h, height, width) {
  const a = whiteOnBlack({ data: Float32Array.from(gray), w, h });
  if (a === null) return new Float32Array(height * width);
  return placeByCentreOfMass(resampleToBox(cropToInk(a), height, width), height, width);
}

// Steps 2-3: invert a light background, stretch background..brightest to 0..255; null if blank.
function whiteOnBlack(a) {
  const data = a.data;
  let background = borderMedian(data, a.w, a.h);
  if (background > 127.5) {
    for (let i = 0; i < data.length; i++) data[i] = 255 - data[i];
    background = 255 - background;
  }
  let top = 0;
  for (let i = 0; i < data.length; i++) if (data[i] > top) top = data[i];
  if (top - background < MIN_CONTRAST) return null;
  // float32 arithmetic, as numpy does it on float32 arrays
  const gain = Math.fround(255 / (top - background));
  const bg = Math.fround(background);
  for (let i = 0; i < data.length; i++) data[i] = Math.min(255, Math.max(0, Math.fround(data[i] - bg) * gain));
  return a;
}

// Step 4: the bounding box of the pixels at or above INK_THRESHOLD (there is one after the stretch).
function cropToInk(a) {
  let r0 = a.h, r1 = -1, c0 = a.w, c1 = -1;
  for (let y = 0; y < a.h; y++) {
    for (let x = 0; x < a.w; x++) {
      if (a.data[y * a.w + x] < INK_THRESHOLD) continue;
      r0 = Math.min(r0, y), r1 = Math.max(r1, y), c0 = Math.min(c0, x), c1 = Math.max(c1, x);
    }
  }
  const w = c1 - c0 + 1, h = r1 - r0 + 1;
  const data = new Float32Array(w * h);
  for (let y = 0; y < h; y++) data.set(a.data.subarray((r0 + y) * a.w + c0, (r0 + y) * a.w + c1 + 1), y * w);
  return { data, w, h };
}

// Step 5: area-average so the longest side is DIGIT_FRACTION of the frame's, aspect kept.
function resampleToBox(a, height, width) {
  const scale = Math.min((height * DIGIT_FRACTION) / a.h, (width * DIGIT_FRACTION) / a.w);
  const h = Math.max(1, Math.min(height, roundHalfUp(a.h * scale)));
  const w = Math.max(1, Math.min(width, roundHalfUp(a.w * scale)));
  const wy = boxWeights(a.h, h), wx = boxWeights(a.w, w);
  const rows = new Float64Array(h * a.w); // wy @ a
  for (let i = 0; i < h; i++) {
    for (const [y, weight] of wy[i]) {
      for (let x = 0; x < a.w; x++) rows[i * a.w + x] += weight * a.data[y * a.w + x];
    }
  }
  const data = new Float64Array(h * w); // (wy @ a) @ wx.T
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      for (const [x, weight] of wx[j]) data[i * w + j] += rows[i * a.w + x] * weight;
    }
  }
  return { data, w, h };
}

// Step 6: paste into the frame with the centre of mass on the centre pixel, never pushing ink out.
function placeByCentreOfMass(digit, height, width) {
  const out = new Float32Array(height * width);
  let mass = 0, my = 0, mx = 0;
  for (let i = 0; i < digit.h; i++) {
    for (let j = 0; j < digit.w; j++) {
      const v = digit.data[i * digit.w + j];
      mass += v, my += v * i, mx += v * j;
    }
  }
  if (mass <= 0) return out;
  const top = Math.min(Math.max(roundHalfUp((height - 1) / 2 - my / mass), 0), height - digit.h);
  const left = Math.min(Math.max(roundHalfUp((width - 1) / 2 - mx / mass), 0), width - digit.w);
  for (let i = 0; i < digit.h; i++) {
    for (let j = 0; j < digit.w; j++) {
      out[(top + i) * width + left + j] = Math.min(255, Math.max(0, digit.data[i * digit.w + j]));
    }
  }
  return out;
}

// The background level: median of the 1-pixel outer ring, each pixel once.
export function borderMedian(a, w, h) {
  let ring;
  if (h <= 2 || w <= 2) {
    ring = Float64Array.from(a);
  } else {
    ring = new Float64Array(2 * w + 2 * (h - 2));
    let k = 0;
    for (let x = 0; x < w; x++) ring[k++] = a[x];
    for (let x = 0; x < w; x++) ring[k++] = a[(h - 1) * w + x];
    for (let y = 1; y < h - 1; y++) ring[k++] = a[y * w];
    for (let y = 1; y < h - 1; y++) ring[k++] = a[y * w + w - 1];
  }
  ring.sort();
  const n = ring.length, mid = n >> 1;
  return n % 2 ? ring[mid] : (ring[mid - 1] + ring[mid]) / 2;
}

// Per output pixel, the [input index, weight] pairs of an area average over [i*s, (i+1)*s), s = in/out.
function boxWeights(sizeIn, sizeOut) {
  const step = sizeIn / sizeOut;
  const weights = [];
  for (let i = 0; i < sizeOut; i++) {
    const start = i * step, end = (i + 1) * step;
    const row = [];
    for (let j = Math.floor(start); j < Math.min(Math.ceil(end), sizeIn); j++) {
      row.push([j, Math.fround((Math.min(end, j + 1) - Math.max(start, j)) / (end - start))]);
    }
    weights.push(row);
  }
  return weights;
}

const roundHalfUp = (x) => Math.floor(x + 0.5);
