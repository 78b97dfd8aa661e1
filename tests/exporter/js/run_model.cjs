// Runs an exported model in a JavaScript onnxruntime and prints its outputs as JSON.
//
//   node run_model.cjs <node|web> <model.onnx|model.ort> <images.f32> <dim0,dim1,...>
//
// <images.f32> holds raw little-endian float32 pixels; dims include the batch dimension.
// "node" is onnxruntime-node (native CPU), "web" is onnxruntime-web's WebAssembly backend,
// the one browsers use. Prints {"runtime", "version", "probabilities": [[...]], "label": [...]}.
"use strict";
const fs = require("fs");
const path = require("path");

async function main() {
  const [runtime, modelPath, inputPath, dimsText] = process.argv.slice(2);
  if (!runtime || !modelPath || !inputPath || !dimsText) {
    throw new Error("usage: node run_model.cjs <node|web> <model> <images.f32> <dims>");
  }
  const packageName = runtime === "web" ? "onnxruntime-web" : "onnxruntime-node";
  const ort = require(packageName);
  if (runtime === "web") ort.env.wasm.numThreads = 1; // no worker threads outside a browser
  const dims = dimsText.split(",").map(Number);
  const bytes = fs.readFileSync(inputPath);
  const pixels = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const session = await ort.InferenceSession.create(new Uint8Array(fs.readFileSync(modelPath)));
  const outputs = await session.run({ images: new ort.Tensor("float32", pixels, dims) });
  const [batch, classes] = outputs.probabilities.dims;
  const probabilities = [];
  for (let i = 0; i < batch; i++) {
    probabilities.push(Array.from(outputs.probabilities.data.subarray(i * classes, (i + 1) * classes)));
  }
  // The package root is the folder above dist/, where require.resolve points.
  const packageRoot = require.resolve(packageName).split(`${path.sep}dist${path.sep}`)[0];
  const version = require(path.join(packageRoot, "package.json")).version;
  process.stdout.write(JSON.stringify({
    runtime: `onnxruntime-${runtime}`,
    version,
    inputs: session.inputNames,
    outputs: session.outputNames,
    probabilities,
    label: Array.from(outputs.label.data, Number),
    label_type: outputs.label.type,
  }));
}

main().catch((error) => {
  process.stderr.write(`run_model.cjs: ${error.stack || error}\n`);
  process.exit(1);
});
