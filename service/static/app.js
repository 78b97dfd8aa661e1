// deploy-anywhere web page: one drawing, two predictions.
// (a) the service: the canvas as a PNG to POST /v1/models/{name}/versions/{v}/image;
// (b) the browser: the same pixels preprocessed here exactly like service/images.py and run with
//     onnxruntime-web (WebAssembly) on model.onnx fetched from the service.
// Plain ES module, no build step; onnxruntime-web comes from the service (/ui/ort/), never a CDN.

import { borderMedian, grayscale, preprocess } from "./preprocess.js";

const ORT_BASE = "/ui/ort/";
const ORT_MODULE = ORT_BASE + "ort.wasm.min.mjs";
const DEBOUNCE_MS = 150;
const TOP_K = 3;
const INK_WIDTH = 20; // canvas pixels; a digit ~200 px tall then has MNIST-like stroke width

const $ = (id) => document.getElementById(id);

const state = {
  models: [],
  model: null, // entry of GET /api/models
  version: null, // string
  session: null, // ort.InferenceSession for model/version
  sessionKey: null,
  sessionLoading: null,
  ort: null,
  ortError: null,
  seq: 0, // drawing generation; responses for older generations are dropped
  blank: true,
  ink: "#000000",
  apiKey: sessionStorage.getItem("deploy-anywhere.apiKey") || "",
};

// ---------------------------------------------------------------- service calls

function authHeaders() {
  return state.apiKey ? { Authorization: `Bearer ${state.apiKey}` } : {};
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && typeof body.error === "string") return body.error;
    if (body && body.detail) return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch (_) {
    /* not JSON */
  }
  return `${response.status} ${response.statusText}`;
}

async function loadModels() {
  setNotice("");
  let response;
  try {
    response = await fetch("/api/models", { headers: authHeaders(), cache: "no-store" });
  } catch (e) {
    setNotice(`Cannot reach the service: ${e.message}`);
    return;
  }
  if (response.status === 401 || response.status === 403) {
    $("api-key-field").hidden = false;
    setNotice("This service needs an API key: enter it above (it stays in this browser tab).");
    return;
  }
  if (!response.ok) {
    setNotice(`GET /api/models failed: ${await errorMessage(response)}`);
    return;
  }
  const body = await response.json();
  state.models = (body.models || []).filter((m) => usableVersions(m).length > 0);
  const select = $("model-select");
  select.replaceChildren();
  if (state.models.length === 0) {
    select.append(new Option("no models", ""));
    select.disabled = true;
    $("version-select").replaceChildren();
    $("version-select").disabled = true;
    setNotice("The repository has no servable model yet: train and export one (make train export).");
    return;
  }
  const previous = state.model ? state.model.name : null;
  for (const m of state.models) select.append(new Option(m.name, m.name));
  select.disabled = false;
  const keep = state.models.find((m) => m.name === previous);
  selectModel(keep ? keep.name : state.models[0].name, keep ? state.version : null);
}

function usableVersions(model) {
  return (model.versions || []).filter((v) => String(v.state || "").toUpperCase() === "AVAILABLE");
}

function selectModel(name, version) {
  state.model = state.models.find((m) => m.name === name);
  $("model-select").value = name;
  const versions = $("version-select");
  versions.replaceChildren();
  for (const v of state.model.versions || []) {
    const ok = String(v.state || "").toUpperCase() === "AVAILABLE";
    const isDefault = String(v.version) === String(state.model.default_version);
    const option = new Option(`${v.version}${isDefault ? " (default)" : ""}${ok ? "" : ` – ${v.state}`}`, String(v.version));
    option.disabled = !ok;
    if (v.error) option.title = v.error;
    versions.append(option);
  }
  const wanted = usableVersions(state.model).some((v) => String(v.version) === String(version))
    ? String(version)
    : String(state.model.default_version ?? usableVersions(state.model).at(-1).version);
  versions.value = wanted;
  versions.disabled = false;
  selectVersion(wanted);
}

function selectVersion(version) {
  state.version = String(version);
  const m = state.model;
  const shape = imageShape(m.input_shape);
  $("rest-endpoint").innerHTML = `<code>POST /v1/models/${esc(m.name)}/versions/${esc(state.version)}/image</code>`;
  $("browser-endpoint").innerHTML = `<code>/api/models/${esc(m.name)}/versions/${esc(state.version)}/files/model.onnx</code>`;
  $("preview-size").textContent = shape ? `${shape[0]}×${shape[1]}` : "n/a";
  const labels = m.labels || [];
  $("model-facts").textContent =
    `Model ${m.name}, version ${state.version} of ${usableVersions(m).length} available; ` +
    `input ${JSON.stringify(m.input_shape)}; ${labels.length} classes` +
    (labels.length ? ` (${labels.slice(0, 10).join(", ")}${labels.length > 10 ? ", …" : ""})` : "") + ".";
  state.session = null;
  state.sessionKey = null;
  ensureSession().catch(() => {}); // errors are shown in the panel
  schedulePredict(0);
}

// The model's image size [H, W] from its input shape (without batch), or null if it is not an image.
function imageShape(inputShape) {
  if (!Array.isArray(inputShape)) return null;
  const dims = inputShape.filter((d) => d !== 1);
  if (dims.length === 2 && dims.every((d) => Number.isInteger(d) && d > 0)) return dims;
  if (inputShape.length === 1 && Number.isInteger(inputShape[0])) {
    const side = Math.round(Math.sqrt(inputShape[0]));
    if (side * side === inputShape[0]) return [side, side]; // flat [batch, 784] models
  }
  return null;
}

async function predictRest(seq, pngBlob) {
  const panel = "rest";
  const m = state.model;
  const form = new FormData();
  form.append("file", pngBlob, "digit.png");
  const url =
    `/v1/models/${encodeURIComponent(m.name)}/versions/${encodeURIComponent(state.version)}/image` +
    `?top_k=${TOP_K}`;
  const started = performance.now();
  let response;
  try {
    response = await fetch(url, { method: "POST", body: form, headers: authHeaders() });
  } catch (e) {
    return showError(panel, seq, `Cannot reach the service: ${e.message}`);
  }
  if (!response.ok) return showError(panel, seq, await errorMessage(response));
  const body = await response.json();
  const elapsed = performance.now() - started;
  const top = (body.top_k || []).map((t) => ({ label: t.label, name: t.label_name, p: t.probability }));
  showResult(panel, seq, {
    label: body.label,
    name: body.label_name,
    top,
    latency: `${elapsed.toFixed(1)} ms`,
    detail: `version ${body.model_version}`,
  });
}

// ---------------------------------------------------------------- onnxruntime-web

async function loadOrt() {
  if (state.ort || state.ortError) return state.ort;
  try {
    const ort = await import(ORT_MODULE);
    ort.env.wasm.wasmPaths = ORT_BASE;
    ort.env.wasm.numThreads = 1; // no SharedArrayBuffer, so no cross-origin isolation needed
    ort.env.wasm.proxy = false;
    state.ort = ort;
  } catch (e) {
    state.ortError = `The browser runtime is unavailable: onnxruntime-web could not be loaded from ${ORT_BASE} (${e.message}). The service half still works.`;
  }
  return state.ort;
}

async function ensureSession() {
  const key = `${state.model.name}/${state.version}`;
  if (state.session && state.sessionKey === key) return state.session;
  if (state.sessionLoading && state.sessionLoading.key === key) return state.sessionLoading.promise;
  const promise = (async () => {
    setStatus("browser", "Loading onnxruntime-web and the model…");
    const ort = await loadOrt();
    if (!ort) throw new Error(state.ortError);
    const url = `/api/models/${encodeURIComponent(state.model.name)}/versions/${encodeURIComponent(state.version)}/files/model.onnx`;
    const response = await fetch(url, { headers: authHeaders() });
    if (!response.ok) throw new Error(`GET model.onnx failed: ${await errorMessage(response)}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
    if (`${state.model.name}/${state.version}` === key) {
      state.session = session;
      state.sessionKey = key;
      setStatus("browser", `Model loaded in the browser (${(bytes.length / 1024).toFixed(0)} KiB).`);
    }
    return session;
  })();
  state.sessionLoading = { key, promise };
  try {
    return await promise;
  } catch (e) {
    showError("browser", state.seq, e.message);
    throw e;
  } finally {
    if (state.sessionLoading && state.sessionLoading.key === key) state.sessionLoading = null;
  }
}

async function predictBrowser(seq, pixels, width, height) {
  const panel = "browser";
  const shape = imageShape(state.model.input_shape);
  if (!shape) return showError(panel, seq, `The model's input ${JSON.stringify(state.model.input_shape)} is not an image.`);
  const t0 = performance.now();
  const input = preprocess(pixels, width, height, shape[0], shape[1]);
  const t1 = performance.now();
  drawPreview(input, shape[0], shape[1]);
  state.lastInput = input; // what the model sees (tests compare it with service/images.py)
  let session;
  try {
    session = await ensureSession();
  } catch (e) {
    return showError(panel, seq, e.message);
  }
  const t2 = performance.now();
  const ort = state.ort;
  const dims = [1, ...state.model.input_shape];
  let outputs;
  try {
    const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", input, dims) };
    outputs = await session.run(feeds);
  } catch (e) {
    return showError(panel, seq, `Inference failed: ${e.message}`);
  }
  const t3 = performance.now();
  const probs = probabilities(session, outputs);
  const labels = state.model.labels || [];
  const order = [...probs.keys()].sort((a, b) => probs[b] - probs[a]);
  const label = order[0];
  showResult(panel, seq, {
    label,
    name: labels[label] ?? String(label),
    top: order.slice(0, TOP_K).map((i) => ({ label: i, name: labels[i] ?? String(i), p: probs[i] })),
    latency: `${(t3 - t2).toFixed(1)} ms`,
    detail: `preprocessing ${(t1 - t0).toFixed(1)} ms, WebAssembly, 1 thread`,
  });
}

// Class probabilities from our signature's "probabilities" output, or from a foreign model's
// first float output (softmax applied when it does not already sum to 1, i.e. logits).
function probabilities(session, outputs) {
  const name = session.outputNames.includes("probabilities")
    ? "probabilities"
    : session.outputNames.find((n) => outputs[n].type === "float32");
  const values = Array.from(outputs[name].data);
  const sum = values.reduce((a, b) => a + b, 0);
  if (values.every((v) => v >= 0 && v <= 1) && Math.abs(sum - 1) < 1e-3) return values;
  const top = Math.max(...values);
  const exps = values.map((v) => Math.exp(v - top));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((v) => v / total);
}

// ---------------------------------------------------------------- drawing

const canvas = $("draw-canvas");
const ctx = canvas.getContext("2d", { willReadFrequently: true });
let drawing = null; // {x, y, id} of the active pointer

function clearCanvas(paper = "#ffffff", ink = "#000000") {
  ctx.fillStyle = paper;
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  state.ink = ink;
  state.blank = true;
  state.seq++;
  for (const panel of ["rest", "browser"]) resetPanel(panel);
  $("agreement").hidden = true;
  drawPreview(null);
}

function canvasPoint(event) {
  const rect = canvas.getBoundingClientRect();
  return {
    x: ((event.clientX - rect.left) * canvas.width) / rect.width,
    y: ((event.clientY - rect.top) * canvas.height) / rect.height,
  };
}

function strokeTo(from, to) {
  ctx.strokeStyle = state.ink;
  ctx.fillStyle = state.ink;
  ctx.lineWidth = INK_WIDTH;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(from.x, from.y);
  ctx.lineTo(to.x, to.y);
  ctx.stroke();
}

canvas.addEventListener("pointerdown", (event) => {
  if (event.button !== 0) return;
  event.preventDefault();
  canvas.setPointerCapture(event.pointerId);
  const p = canvasPoint(event);
  drawing = { ...p, id: event.pointerId };
  strokeTo(p, p); // a dot for a tap
  changed();
});
canvas.addEventListener("pointermove", (event) => {
  if (!drawing || event.pointerId !== drawing.id) return;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const e of events.length ? events : [event]) {
    const p = canvasPoint(e);
    strokeTo(drawing, p);
    drawing.x = p.x;
    drawing.y = p.y;
  }
  changed();
});
for (const type of ["pointerup", "pointercancel"]) {
  canvas.addEventListener(type, (event) => {
    if (drawing && event.pointerId === drawing.id) drawing = null;
  });
}

function changed() {
  state.blank = false;
  state.seq++;
  schedulePredict(DEBOUNCE_MS);
}

// ---------------------------------------------------------------- images from files

async function loadImageFile(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith("image/")) {
    setNotice(`${file.name} is not an image (${file.type}); choose a PNG or JPEG.`);
    return;
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch (e) {
    setNotice(`Cannot read ${file.name} as an image: ${e.message || e}`);
    return;
  }
  setNotice("");
  // Paper colour = the image's own border, so the border-based inversion sees the same background
  // whether it looks at the photo or the canvas; strokes drawn on top use the contrasting colour.
  const scratch = new OffscreenCanvas(bitmap.width, bitmap.height).getContext("2d", { willReadFrequently: true });
  scratch.fillStyle = "#ffffff"; // transparency composited on white, like the service
  scratch.fillRect(0, 0, bitmap.width, bitmap.height);
  scratch.drawImage(bitmap, 0, 0);
  const pixels = scratch.getImageData(0, 0, bitmap.width, bitmap.height).data;
  const gray = grayscale(pixels, bitmap.width, bitmap.height);
  const paper = Math.round(borderMedian(gray, bitmap.width, bitmap.height));
  const hex = (v) => `#${v.toString(16).padStart(2, "0").repeat(3)}`;
  clearCanvas(hex(paper), paper > 127 ? "#000000" : "#ffffff");
  const fit = Math.min(canvas.width / bitmap.width, canvas.height / bitmap.height);
  const dw = bitmap.width * fit, dh = bitmap.height * fit;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(scratch.canvas, (canvas.width - dw) / 2, (canvas.height - dh) / 2, dw, dh);
  bitmap.close();
  changed();
}

$("file-input").addEventListener("change", (event) => {
  loadImageFile(event.target.files[0]);
  event.target.value = ""; // choosing the same file again is a change too
});
const dropZone = $("drop-zone");
dropZone.addEventListener("dragover", (event) => {
  event.preventDefault();
  dropZone.classList.add("dragging");
});
dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropZone.classList.remove("dragging");
  loadImageFile(event.dataTransfer.files[0]);
});

// ---------------------------------------------------------------- prediction loop

let timer = null;
function schedulePredict(delay) {
  clearTimeout(timer);
  timer = setTimeout(predict, delay);
}

async function predict() {
  if (!state.model || state.blank) return;
  const seq = state.seq;
  const { width, height } = canvas;
  const pixels = ctx.getImageData(0, 0, width, height).data;
  for (const panel of ["rest", "browser"]) setPending(panel, seq);
  $("agreement").hidden = true;
  const png = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  await Promise.all([predictRest(seq, png), predictBrowser(seq, pixels, width, height)]);
  updateAgreement(seq);
}

// ---------------------------------------------------------------- rendering

function panelEl(panel) {
  return $(`${panel}-panel`);
}

function resetPanel(panel) {
  const el = panelEl(panel);
  el.dataset.state = "idle";
  delete el.dataset.seq;
  $(`${panel}-label`).textContent = "–";
  $(`${panel}-label-name`).textContent = "";
  $(`${panel}-topk`).replaceChildren();
  $(`${panel}-latency`).textContent = "–";
}

function setPending(panel, seq) {
  const el = panelEl(panel);
  el.dataset.state = "pending";
  el.dataset.seq = String(seq);
  el.setAttribute("aria-busy", "true");
}

function setStatus(panel, message, isError = false) {
  const status = $(`${panel}-status`);
  status.textContent = message;
  status.classList.toggle("error", isError);
}

function showResult(panel, seq, result) {
  if (seq !== state.seq) return; // a newer drawing is on its way
  const el = panelEl(panel);
  $(`${panel}-label`).textContent = String(result.label);
  $(`${panel}-label-name`).textContent = result.name !== String(result.label) ? result.name : "";
  const list = $(`${panel}-topk`);
  list.replaceChildren(
    ...result.top.map((t) => {
      const li = document.createElement("li");
      const pct = (t.p * 100).toFixed(1);
      li.innerHTML =
        `<span class="topk-name">${esc(t.name)}</span>` +
        `<span class="bar" aria-hidden="true"><span style="width:${Math.max(0, Math.min(100, t.p * 100))}%"></span></span>` +
        `<span class="topk-p">${pct}%</span>`;
      li.dataset.label = String(t.label);
      return li;
    }),
  );
  $(`${panel}-latency`).textContent = result.latency;
  setStatus(panel, result.detail || "");
  el.dataset.state = "done";
  el.dataset.seq = String(seq);
  el.dataset.label = String(result.label);
  el.removeAttribute("aria-busy");
}

function showError(panel, seq, message) {
  if (seq !== state.seq) return;
  const el = panelEl(panel);
  $(`${panel}-label`).textContent = "!";
  $(`${panel}-label-name`).textContent = "";
  $(`${panel}-topk`).replaceChildren();
  $(`${panel}-latency`).textContent = "–";
  setStatus(panel, message, true);
  el.dataset.state = "error";
  el.dataset.seq = String(seq);
  delete el.dataset.label;
  el.removeAttribute("aria-busy");
}

function updateAgreement(seq) {
  if (seq !== state.seq) return;
  const rest = panelEl("rest"), browser = panelEl("browser");
  const box = $("agreement");
  if (rest.dataset.state !== "done" || browser.dataset.state !== "done") {
    box.hidden = true;
    return;
  }
  const same = rest.dataset.label === browser.dataset.label;
  box.textContent = same
    ? `Service and browser agree: ${$("rest-label-name").textContent || rest.dataset.label}.`
    : `Service says ${rest.dataset.label}, browser says ${browser.dataset.label}.`;
  box.classList.toggle("disagree", !same);
  box.dataset.agree = String(same);
  box.hidden = false;
}

function drawPreview(input, height = 28, width = 28) {
  const preview = $("preview-canvas");
  preview.width = width;
  preview.height = height;
  const pctx = preview.getContext("2d");
  const image = pctx.createImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    const v = input ? Math.round(input[i]) : 0;
    image.data.set([v, v, v, 255], i * 4);
  }
  pctx.putImageData(image, 0, 0);
}

function setNotice(message) {
  const notice = $("service-status");
  notice.textContent = message;
  notice.hidden = !message;
}

function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// ---------------------------------------------------------------- start

$("clear-button").addEventListener("click", () => clearCanvas());
$("model-select").addEventListener("change", (event) => selectModel(event.target.value, null));
$("version-select").addEventListener("change", (event) => selectVersion(event.target.value));
$("refresh-button").addEventListener("click", () => loadModels());
$("api-key-input").value = state.apiKey;
$("api-key-input").addEventListener("change", (event) => {
  state.apiKey = event.target.value.trim();
  sessionStorage.setItem("deploy-anywhere.apiKey", state.apiKey);
  state.session = null;
  state.sessionKey = null;
  loadModels();
});
if (state.apiKey) $("api-key-field").hidden = false;

clearCanvas();
loadModels();
loadOrt().then((ort) => {
  panelEl("browser").dataset.runtime = ort ? "ready" : "unavailable";
  if (!ort) setStatus("browser", state.ortError, true);
});
// A hook for tests and the curious: the preprocessing the browser panel uses.
window.deployAnywhere = { preprocess, state };
