// The drawing pad: a canvas drawn on with pointer events (mouse, pen, touch), or filled from an
// image file. Its pixels are the single source of both predictions: the PNG sent to the service
// and the RGBA array preprocessed in the browser are the same pixels.

import { borderMedian, grayscale } from "./preprocess.js";

const INK_WIDTH = 20; // canvas pixels: a digit ~200 px tall gets an MNIST-like stroke width

export class DrawingPad {
  constructor(canvas, onChange) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d", { willReadFrequently: true });
    this.onChange = onChange;
    this.ink = "#000000";
    this.active = null; // {x, y, id} of the pointer drawing now
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    for (const type of ["pointerup", "pointercancel"]) canvas.addEventListener(type, (e) => this.up(e));
  }

  clear(paper = "#ffffff", ink = "#000000") {
    this.ctx.fillStyle = paper;
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.ink = ink;
  }

  pixels() {
    const { width, height } = this.canvas;
    return { rgba: this.ctx.getImageData(0, 0, width, height).data, width, height };
  }

  png() {
    return new Promise((resolve) => this.canvas.toBlob(resolve, "image/png"));
  }

  // Draw an image file into the pad. The paper colour is the image's own border colour, so the
  // border-based inversion sees the same background in the pad as in the photo, and new strokes
  // get the contrasting colour.
  async loadImage(file) {
    const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    const scratch = new OffscreenCanvas(bitmap.width, bitmap.height).getContext("2d", { willReadFrequently: true });
    scratch.fillStyle = "#ffffff"; // transparency composited on white, as the service does
    scratch.fillRect(0, 0, bitmap.width, bitmap.height);
    scratch.drawImage(bitmap, 0, 0);
    const rgba = scratch.getImageData(0, 0, bitmap.width, bitmap.height).data;
    const paper = Math.round(borderMedian(grayscale(rgba, bitmap.width, bitmap.height), bitmap.width, bitmap.height));
    this.clear(`#${paper.toString(16).padStart(2, "0").repeat(3)}`, paper > 127 ? "#000000" : "#ffffff");
    const fit = Math.min(this.canvas.width / bitmap.width, this.canvas.height / bitmap.height);
    const w = bitmap.width * fit, h = bitmap.height * fit;
    this.ctx.imageSmoothingQuality = "high";
    this.ctx.drawImage(scratch.canvas, (this.canvas.width - w) / 2, (this.canvas.height - h) / 2, w, h);
    bitmap.close();
    this.onChange();
  }

  point(event) {
    const rect = this.canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - rect.left) * this.canvas.width) / rect.width,
      y: ((event.clientY - rect.top) * this.canvas.height) / rect.height,
    };
  }

  stroke(from, to) {
    const ctx = this.ctx;
    ctx.strokeStyle = this.ink;
    ctx.lineWidth = INK_WIDTH;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x, to.y);
    ctx.stroke();
  }

  down(event) {
    if (event.button !== 0) return;
    event.preventDefault();
    this.canvas.setPointerCapture(event.pointerId);
    const p = this.point(event);
    this.active = { ...p, id: event.pointerId };
    this.stroke(p, p); // a tap leaves a dot
    this.onChange();
  }

  move(event) {
    if (!this.active || event.pointerId !== this.active.id) return;
    // Coalesced events keep fast strokes smooth where the browser batches pointer moves.
    const events = event.getCoalescedEvents?.() ?? [];
    for (const e of events.length ? events : [event]) {
      const p = this.point(e);
      this.stroke(this.active, p);
      Object.assign(this.active, p);
    }
    this.onChange();
  }

  up(event) {
    if (this.active && event.pointerId === this.active.id) this.active = null;
  }
}
