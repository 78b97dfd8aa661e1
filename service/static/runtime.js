// onnxruntime-web in the page: loaded from the service (/ui/ort/, the pinned npm install), never
// from a CDN, so the page works offline. WebAssembly backend, one thread: no SharedArrayBuffer,
// hence no cross-origin isolation headers needed.

export const ORT_BASE = "/ui/ort/";
const ORT_MODULE = ORT_BASE + "ort.wasm.min.mjs";

let loading = null; // Promise of the ort module, shared by every caller

export function loadRuntime() {
  loading ??= import(ORT_MODULE).then(
    (ort) => {
      ort.env.wasm.wasmPaths = ORT_BASE;
      ort.env.wasm.numThreads = 1;
      ort.env.wasm.proxy = false;
      return ort;
    },
    (e) => {
      throw new Error(
        `The browser runtime is unavailable: onnxruntime-web could not be loaded from ${ORT_BASE} ` +
          `(${e.message}). The service half still works.`,
      );
    },
  );
  return loading;
}

export async function createSession(bytes) {
  const ort = await loadRuntime();
  return ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
}

// One image through the session: {probabilities: number[], ms: inference time}.
export async function classify(session, input, dims) {
  const ort = await loadRuntime();
  const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", input, dims) };
  const started = performance.now();
  const outputs = await session.run(feeds);
  const ms = performance.now() - started;
  return { probabilities: toProbabilities(session, outputs), ms };
}

// Class probabilities from our signature's "probabilities" output, or from a foreign model's
// first float output, with a softmax when it is not already a distribution (logits).
function toProbabilities(session, outputs) {
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
