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
export function normaliseDigit(gray, w, h, height, width) {
  const a = Float32Array.from(gray);
  // 2. invert when the border (median of the 1-pixel outer ring) is light.
  let background = borderMedian(a, w, h);
  if (background > 127.5) {
    for (let i = 0; i < a.length; i++) a[i] = 255 - a[i];
    background = 255 - background;
  }
  let top = 0;
  for (let i = 0; i < a.length; i++) if (a[i] > top) top = a[i];
  const out = new Float32Array(height * width);
  if (top - background < MIN_CONTRAST) return out;
  // 3. stretch: background -> 0, brightest ink -> 255.
  const gain = Math.fround(255 / (top - background));
  const bg = Math.fround(background);
  for (let i = 0; i < a.length; i++) a[i] = Math.min(255, Math.max(0, Math.fround(a[i] - bg) * gain));
  // 4. crop to the ink's bounding box.
  let r0 = h, r1 = -1, c0 = w, c1 = -1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (a[y * w + x] >= INK_THRESHOLD) {
        if (y < r0) r0 = y;
        if (y > r1) r1 = y;
        if (x < c0) c0 = x;
        if (x > c1) c1 = x;
      }
    }
  }
  const ch = r1 - r0 + 1, cw = c1 - c0 + 1;
  // 5. area-average resample so the longest side is 20/28 of the target, aspect kept.
  const scale = Math.min((height * DIGIT_FRACTION) / ch, (width * DIGIT_FRACTION) / cw);
  const nh = Math.max(1, Math.min(height, roundHalfUp(ch * scale)));
  const nw = Math.max(1, Math.min(width, roundHalfUp(cw * scale)));
  const wy = boxWeights(ch, nh), wx = boxWeights(cw, nw);
  const rows = new Float64Array(nh * cw); // wy @ crop
  for (let i = 0; i < nh; i++) {
    for (const [y, wgt] of wy[i]) {
      const src = (r0 + y) * w + c0;
      for (let x = 0; x < cw; x++) rows[i * cw + x] += wgt * a[src + x];
    }
  }
  const digit = new Float64Array(nh * nw); // (wy @ crop) @ wx.T
  for (let i = 0; i < nh; i++) {
    for (let j = 0; j < nw; j++) {
      let s = 0;
      for (const [x, wgt] of wx[j]) s += rows[i * cw + x] * wgt;
      digit[i * nw + j] = s;
    }
  }
  // 6. centre of mass on the frame's centre pixel, ink kept inside the frame.
  let mass = 0, my = 0, mx = 0;
  for (let i = 0; i < nh; i++) {
    for (let j = 0; j < nw; j++) {
      const v = digit[i * nw + j];
      mass += v;
      my += v * i;
      mx += v * j;
    }
  }
  if (mass <= 0) return out;
  const topRow = Math.min(Math.max(roundHalfUp((height - 1) / 2 - my / mass), 0), height - nh);
  const leftCol = Math.min(Math.max(roundHalfUp((width - 1) / 2 - mx / mass), 0), width - nw);
  for (let i = 0; i < nh; i++) {
    for (let j = 0; j < nw; j++) {
      out[(topRow + i) * width + leftCol + j] = Math.min(255, Math.max(0, digit[i * nw + j]));
    }
  }
  return out;
}

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
