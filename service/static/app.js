// deploy-anywhere web page: one drawing, two predictions side by side.
// (a) the service: the pad as a PNG to POST /v1/models/{name}/versions/{v}/image;
// (b) the browser: the same pixels preprocessed like service/images.py (preprocess.js) and run
//     with onnxruntime-web on model.onnx fetched from the service.
// Plain ES modules, no build step. Model, version and labels come from GET /api/models.

import { ServiceClient, ServiceError } from "./api.js";
import { DrawingPad } from "./pad.js";
import * as panels from "./panels.js";
import { preprocess } from "./preprocess.js";
import { classify, createSession, loadRuntime } from "./runtime.js";

const DEBOUNCE_MS = 150;
const TOP_K = 3;
const KEY_STORAGE = "deploy-anywhere.apiKey";
const $ = (id) => document.getElementById(id);

const state = {
  models: [],
  model: null, // the entry of GET /api/models shown now
  version: null, // string
  session: null, // Promise of the onnxruntime-web session for sessionKey
  sessionKey: null,
  seq: 0, // drawing generation: answers for an older drawing are dropped
  blank: true,
  lastInput: null, // what the browser's model saw (the browser test compares it with the service's)
};
const service = new ServiceClient(sessionStorage.getItem(KEY_STORAGE) || "");
const pad = new DrawingPad($("draw-canvas"), changed);

// ---------------------------------------------------------------- models and versions

const isAvailable = (v) => String(v.state || "").toUpperCase() === "AVAILABLE";

async function loadModels() {
  panels.setNotice("");
  try {
    state.models = (await service.models()).filter((m) => (m.versions || []).some(isAvailable));
  } catch (e) {
    if (e instanceof ServiceError && (e.status === 401 || e.status === 403)) {
      $("api-key-field").hidden = false;
      panels.setNotice("This service needs an API key: enter it above (it stays in this browser tab).");
    } else {
      panels.setNotice(`Cannot list the models: ${e.message}`);
    }
    return;
  }
  const select = $("model-select");
  select.replaceChildren(...state.models.map((m) => new Option(m.name, m.name)));
  select.disabled = state.models.length === 0;
  if (state.models.length === 0) {
    select.append(new Option("no models", ""));
    $("version-select").replaceChildren();
    $("version-select").disabled = true;
    panels.setNotice("The repository has no servable model yet: train and export one (make train export).");
    return;
  }
  const kept = state.models.find((m) => m.name === state.model?.name);
  selectModel(kept ? kept.name : state.models[0].name, kept ? state.version : null);
}

function selectModel(name, version) {
  const model = state.models.find((m) => m.name === name);
  state.model = model;
  $("model-select").value = name;
  const select = $("version-select");
  select.replaceChildren(...(model.versions || []).map((v) => versionOption(model, v)));
  const available = model.versions.filter(isAvailable).map((v) => String(v.version));
  const fallback = available.includes(String(model.default_version)) ? String(model.default_version) : available.at(-1);
  select.value = available.includes(String(version)) ? String(version) : fallback;
  select.disabled = false;
  selectVersion(select.value);
}

function versionOption(model, v) {
  const isDefault = String(v.version) === String(model.default_version);
  const text = `${v.version}${isDefault ? " (default)" : ""}${isAvailable(v) ? "" : ` – ${v.state}`}`;
  const option = new Option(text, String(v.version));
  option.disabled = !isAvailable(v);
  if (v.error) option.title = v.error;
  return option;
}

function selectVersion(version) {
  state.version = String(version);
  const m = state.model;
  const shape = imageShape(m.input_shape);
  $("rest-endpoint").innerHTML = endpoint(`POST /v1/models/${m.name}/versions/${version}/image`);
  $("browser-endpoint").innerHTML = endpoint(`/api/models/${m.name}/versions/${version}/files/model.onnx`);
  $("preview-size").textContent = shape ? `${shape[0]}×${shape[1]}` : "n/a";
  const labels = m.labels || [];
  // Top-k rows size their name column to the longest label (within reason), so names line up.
  const longest = Math.max(2, ...labels.map((l) => String(l).length));
  document.documentElement.style.setProperty("--label-width", `${Math.min(longest, 14) + 1}ch`);
  const shown = labels.slice(0, 10).join(", ") + (labels.length > 10 ? ", …" : "");
  $("model-facts").textContent =
    `Model ${m.name}, version ${version} of ${m.versions.filter(isAvailable).length} available; ` +
    `input ${JSON.stringify(m.input_shape)}; ${labels.length} classes${labels.length ? ` (${shown})` : ""}.`;
  session().catch((e) => panels.setStatus("browser", e.message, true)); // start the download now
  schedulePredict(0);
}

// A URL as code that line-breaks only after its slashes.
function endpoint(text) {
  return `<code>${panels.esc(text).replaceAll("/", "/<wbr>")}</code>`;
}

// The model's image size [H, W] from its input shape (without batch), or null if not an image.
function imageShape(inputShape) {
  if (!Array.isArray(inputShape)) return null;
  const dims = inputShape.filter((d) => d !== 1);
  if (dims.length === 2 && dims.every((d) => Number.isInteger(d) && d > 0)) return dims;
  const side = Math.round(Math.sqrt(inputShape[0]));
  if (inputShape.length === 1 && side * side === inputShape[0]) return [side, side]; // flat [batch, 784]
  return null;
}

// The browser session for the selected model and version, created once per version.
function session() {
  const key = `${state.model.name}/${state.version}`;
  if (state.sessionKey !== key) {
    state.sessionKey = key;
    panels.setStatus("browser", "Loading onnxruntime-web and the model…");
    const { name } = state.model, version = state.version;
    // The runtime first: without it there is no point downloading the model (again).
    state.session = loadRuntime().then(async () => {
      const bytes = await service.modelFile(name, version, "model.onnx");
      const created = await createSession(bytes);
      if (state.sessionKey === key) panels.setStatus("browser", `Model loaded in the browser (${(bytes.length / 1024).toFixed(0)} KiB).`);
      return created;
    });
    state.session.catch(() => {
      if (state.sessionKey === key) state.sessionKey = null; // retry on the next drawing
    });
  }
  return state.session;
}

// ---------------------------------------------------------------- predictions

function changed() {
  state.blank = false;
  state.seq++;
  schedulePredict(DEBOUNCE_MS);
}

let timer = null;
function schedulePredict(delay) {
  clearTimeout(timer);
  timer = setTimeout(predict, delay);
}

async function predict() {
  if (!state.model || state.blank) return;
  const seq = state.seq;
  const { rgba, width, height } = pad.pixels();
  for (const panel of ["rest", "browser"]) panels.setPending(panel, seq);
  panels.hideAgreement();
  const png = await pad.png();
  await Promise.all([
    predictRest(png).then(...report("rest", seq)),
    predictBrowser(rgba, width, height).then(...report("browser", seq)),
  ]);
  if (seq === state.seq) panels.showAgreement($("rest-label-name").textContent);
}

// [onResult, onError] for one panel, both ignoring answers to an older drawing.
function report(panel, seq) {
  return [
    (result) => seq === state.seq && panels.showResult(panel, seq, result),
    (error) => seq === state.seq && panels.showError(panel, seq, error.message),
  ];
}

async function predictRest(png) {
  const started = performance.now();
  const body = await service.classifyImage(state.model.name, state.version, png, TOP_K);
  const elapsed = performance.now() - started;
  return {
    label: body.label,
    name: body.label_name,
    top: (body.top_k || []).map((t) => ({ label: t.label, name: t.label_name, p: t.probability })),
    latency: `${elapsed.toFixed(1)} ms`,
    detail: `version ${body.model_version}`,
  };
}

async function predictBrowser(rgba, width, height) {
  const { model } = state;
  const shape = imageShape(model.input_shape);
  if (!shape) throw new Error(`The model's input ${JSON.stringify(model.input_shape)} is not an image.`);
  const started = performance.now();
  const input = preprocess(rgba, width, height, shape[0], shape[1]);
  const preprocessMs = performance.now() - started;
  panels.drawPreview(input, shape[0], shape[1]);
  state.lastInput = input;
  const { probabilities, ms } = await classify(await session(), input, [1, ...model.input_shape]);
  const labels = model.labels || [];
  const order = [...probabilities.keys()].sort((a, b) => probabilities[b] - probabilities[a]);
  const name = (i) => labels[i] ?? String(i);
  return {
    label: order[0],
    name: name(order[0]),
    top: order.slice(0, TOP_K).map((i) => ({ label: i, name: name(i), p: probabilities[i] })),
    latency: `${ms.toFixed(1)} ms`,
    detail: `preprocessing ${preprocessMs.toFixed(1)} ms, WebAssembly, 1 thread`,
  };
}

// ---------------------------------------------------------------- wiring

function clear() {
  pad.clear();
  state.blank = true;
  state.seq++;
  for (const panel of ["rest", "browser"]) panels.resetPanel(panel);
  panels.hideAgreement();
  panels.drawPreview(null);
}

async function loadFile(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith("image/")) {
    panels.setNotice(`${file.name} is not an image (${file.type}); choose a PNG or JPEG.`);
    return;
  }
  try {
    await pad.loadImage(file);
    panels.setNotice("");
  } catch (e) {
    panels.setNotice(`Cannot read ${file.name} as an image: ${e.message || e}`);
  }
}

function wire() {
  $("clear-button").addEventListener("click", clear);
  $("model-select").addEventListener("change", (e) => selectModel(e.target.value, null));
  $("version-select").addEventListener("change", (e) => selectVersion(e.target.value));
  $("refresh-button").addEventListener("click", loadModels);
  $("file-input").addEventListener("change", (e) => {
    loadFile(e.target.files[0]);
    e.target.value = ""; // choosing the same file again is a change too
  });
  const drop = $("drop-zone");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("dragging");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("dragging"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("dragging");
    loadFile(e.dataTransfer.files[0]);
  });
  const key = $("api-key-input");
  key.value = service.apiKey;
  $("api-key-field").hidden = !service.apiKey;
  key.addEventListener("change", () => {
    service.apiKey = key.value.trim();
    sessionStorage.setItem(KEY_STORAGE, service.apiKey);
    state.sessionKey = null; // the model download needs the key too
    loadModels();
  });
}

wire();
clear();
loadModels();
loadRuntime().then(
  () => ($("browser-panel").dataset.runtime = "ready"),
  (e) => {
    $("browser-panel").dataset.runtime = "unavailable";
    panels.setStatus("browser", e.message, true);
  },
);
// A hook for tests and the curious: the page's state and its preprocessing.
window.deployAnywhere = { state, preprocess };
