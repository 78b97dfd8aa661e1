// Rendering of the two result panels ("rest", "browser"), the agreement line, the preview and
// notices. Each panel carries data-state (idle|pending|done|error), data-seq (the drawing it
// shows) and data-label, which the browser test waits on.

const $ = (id) => document.getElementById(id);

export function esc(text) {
  const entities = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  return String(text).replace(/[&<>"']/g, (c) => entities[c]);
}

export function setNotice(message) {
  const notice = $("service-status");
  notice.textContent = message;
  notice.hidden = !message;
}

export function setStatus(panel, message, isError = false) {
  const status = $(`${panel}-status`);
  status.textContent = message;
  status.classList.toggle("error", isError);
}

export function resetPanel(panel) {
  const el = $(`${panel}-panel`);
  el.dataset.state = "idle";
  delete el.dataset.seq;
  delete el.dataset.label;
  el.removeAttribute("aria-busy");
  $(`${panel}-label`).textContent = "–";
  $(`${panel}-label-name`).textContent = "";
  $(`${panel}-topk`).replaceChildren();
  $(`${panel}-latency`).textContent = "–";
}

export function setPending(panel, seq) {
  const el = $(`${panel}-panel`);
  el.dataset.state = "pending";
  el.dataset.seq = String(seq);
  el.setAttribute("aria-busy", "true");
}

// result: {label, name, top: [{label, name, p}], latency: "12.3 ms", detail}
export function showResult(panel, seq, result) {
  $(`${panel}-label`).textContent = String(result.label);
  $(`${panel}-label-name`).textContent = result.name !== String(result.label) ? result.name : "";
  $(`${panel}-topk`).replaceChildren(...result.top.map(topItem));
  $(`${panel}-latency`).textContent = result.latency;
  setStatus(panel, result.detail || "");
  finish(panel, seq, "done", String(result.label));
}

export function showError(panel, seq, message) {
  $(`${panel}-label`).textContent = "!";
  $(`${panel}-label-name`).textContent = "";
  $(`${panel}-topk`).replaceChildren();
  $(`${panel}-latency`).textContent = "–";
  setStatus(panel, message, true);
  finish(panel, seq, "error", null);
}

function finish(panel, seq, state, label) {
  const el = $(`${panel}-panel`);
  el.dataset.state = state;
  el.dataset.seq = String(seq);
  if (label === null) delete el.dataset.label;
  else el.dataset.label = label;
  el.removeAttribute("aria-busy");
}

function topItem(t) {
  const li = document.createElement("li");
  const percent = Math.max(0, Math.min(100, t.p * 100));
  li.innerHTML =
    `<span class="topk-name">${esc(t.name)}</span>` +
    `<span class="bar" aria-hidden="true"><span style="width:${percent}%"></span></span>` +
    `<span class="topk-p">${(t.p * 100).toFixed(1)}%</span>`;
  li.dataset.label = String(t.label);
  return li;
}

// Shown once both panels have a result for the same drawing.
export function showAgreement(restName) {
  const rest = $("rest-panel"), browser = $("browser-panel"), box = $("agreement");
  const ready = rest.dataset.state === "done" && browser.dataset.state === "done" && rest.dataset.seq === browser.dataset.seq;
  box.hidden = !ready;
  if (!ready) return;
  const same = rest.dataset.label === browser.dataset.label;
  box.textContent = same
    ? `Service and browser agree: ${restName || rest.dataset.label}.`
    : `Service says ${rest.dataset.label}, browser says ${browser.dataset.label}.`;
  box.classList.toggle("disagree", !same);
  box.dataset.agree = String(same);
}

export function hideAgreement() {
  $("agreement").hidden = true;
}

// The model's input as a grayscale image (null: black).
export function drawPreview(input, height = 28, width = 28) {
  const preview = $("preview-canvas");
  preview.width = width;
  preview.height = height;
  const ctx = preview.getContext("2d");
  const image = ctx.createImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    const v = input ? Math.round(input[i]) : 0;
    image.data.set([v, v, v, 255], i * 4);
  }
  ctx.putImageData(image, 0, 0);
}
