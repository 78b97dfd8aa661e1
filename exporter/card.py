"""The model card (``README.md`` in each version folder), rendered from the manifest content.

Everything on the card is measured by the export that wrote it; nothing is typed by hand.
"""

from __future__ import annotations

import json
from typing import Any

from contracts import INPUT_NAME, INT8_ONNX, LABEL_NAME, MODEL_ONNX, MODEL_ORT, PROBABILITIES_NAME

CONFUSION_PNG = "confusion.png"


def render_card(content: dict[str, Any], *, has_confusion: bool) -> str:
    model = content["model"]
    sections = [
        _header(content),
        _input_spec(content),
        _metrics(content),
        _confusion(has_confusion),
        _python(content),
        _mobile(content),
        _browser(content),
        _files(),
    ]
    return f"# {model['name']}, version {model['version']}\n\n" + "\n".join(sections)


def _header(content: dict[str, Any]) -> str:
    labels = content["labels"]
    arch = " -> ".join(content["training"]["architecture"])
    return f"""## Intended use
Classifies an image of shape {content["signature"]["input_shape"]} into one of {len(labels)} classes
({", ".join(labels[:12])}{", ..." if len(labels) > 12 else ""}). It is a dense network ({arch}) trained on
`{content["training"]["dataset"]}`; expect its accuracy only on images like those (centred, same size, same
polarity). It is not meant for decisions about people or for inputs unlike its training data.
Produced by {content["model"]["producer"]} from `{content["model"]["artifact"]}` on {content["model"]["created"]}.
"""


def _input_spec(content: dict[str, Any]) -> str:
    name, version = content["model"]["name"], content["model"]["version"]
    shape = content["signature"]["input_shape"]
    pre = content["preprocessing"]
    zeros = f"[0.0] * {shape[-1]}"
    for d in reversed(shape[:-1]):
        zeros = f"[{zeros}] * {d}"
    flat = 1
    for d in shape:
        flat *= d
    v2 = json.dumps({"inputs": [{"name": INPUT_NAME, "shape": [1, *shape], "datatype": "FP32", "data": "DATA"}]})
    v2 = v2.replace('"DATA"', f"[0.0] * {flat}")
    return f"""## Input and output
- input `{INPUT_NAME}`: float32 `[batch, {", ".join(map(str, shape))}]`, raw intensities 0..255. The model applies
  `(x * {pre["scale"]:.6g} - {pre["mean"]:.6g}) / {pre["std"]:.6g}` itself; do not normalise before sending.
- output `{PROBABILITIES_NAME}`: float32 `[batch, {len(content["labels"])}]`, softmax over the classes in label order.
- output `{LABEL_NAME}`: int64 `[batch]`, the index of the largest probability; the class names are in the model's
  `labels` metadata and in `manifest.json`.

Example requests to the project's service (`python -m service --repository <repo>`), one all-black image:
```bash
# TF Serving REST: row format
python -c 'import json; print(json.dumps({{"instances": [{zeros}]}}))' > predict.json
curl -s -X POST http://localhost:8000/v1/models/{name}/versions/{version}:predict -d @predict.json
# -> {{"predictions": [{{"{PROBABILITIES_NAME}": [...], "{LABEL_NAME}": ...}}]}}

# Open Inference Protocol (KServe V2, also Triton with ../config.pbtxt)
python -c 'import json; print(json.dumps({v2}))' > infer.json
curl -s -X POST http://localhost:8000/v2/models/{name}/versions/{version}/infer \\
     -H 'Content-Type: application/json' -d @infer.json
```
"""


def _metrics(content: dict[str, Any]) -> str:
    variants, evaluation = content["variants"], content["evaluation"]
    checks = content["checks"]
    rows = "\n".join(
        f"| `{file}` | {_pct(v.get('accuracy'))} | {v['bytes']:,} |" for file, v in variants.items() if "bytes" in v
    )
    q = content["quantization"]
    chosen = next(c for c in q["candidates"] if c["method"] == q["chosen"])
    others = "; ".join(f"{c['method']} {_pct(c['accuracy'])}" for c in q["candidates"])
    trainer, ref = checks["parity_trainer"], checks["reference_evaluator"]
    training = ", ".join(f"{k} {v:.4g}" for k, v in sorted(content["training"]["metrics"].items())) or "none recorded"
    return f"""## Metrics
Measured by the export on `{evaluation["dataset"]}` ({evaluation["images"]:,} images), each file loaded in onnxruntime:

| file | accuracy | bytes |
|---|---|---|
{rows}

- int8: {q["chosen"]} quantization ({chosen["settings"]}); measured: {others}.
- parity with the numpy trainer: max |diff| of probabilities {trainer["max_abs_diff"]:.2g} over
  {trainer["images"]:,} images, {trainer["label_mismatches"]} different labels (allowed {trainer["atol"]:g}, 0).
- ONNX reference evaluator vs onnxruntime: max |diff| {ref["max_abs_diff"]:.2g} on {ref["images"]} images
  including all-0, all-255 and huge (+-1e6) inputs.
- metrics recorded by the trainer (artifact): {training}.
"""


def _confusion(has_confusion: bool) -> str:
    if not has_confusion:
        return "## Confusion matrix\nThe training artifact did not include a confusion matrix image.\n"
    return f"## Confusion matrix\nOn the trainer's test split:\n\n![confusion matrix]({CONFUSION_PNG})\n"


def _python(content: dict[str, Any]) -> str:
    shape = content["signature"]["input_shape"]
    return f"""## Run it in Python
```python
import numpy as np, onnxruntime as ort
session = ort.InferenceSession("{MODEL_ONNX}", providers=["CPUExecutionProvider"])  # or "{INT8_ONNX}"
images = np.zeros((1, {", ".join(map(str, shape))}), dtype=np.float32)  # raw 0..255 pixels
probabilities, label = session.run(["{PROBABILITIES_NAME}", "{LABEL_NAME}"], {{"{INPUT_NAME}": images}})
```
"""


def _mobile(content: dict[str, Any]) -> str:
    shape = content["signature"]["input_shape"]
    dims = ", ".join(f"{d}L" for d in [1, *shape])
    mobile = content["mobile"]
    return f"""## Run it on Android and iOS (onnxruntime mobile)
`{MODEL_ORT}` is the ORT format that onnxruntime's mobile packages load (Android `onnxruntime-android`,
iOS pod `onnxruntime-c`/`onnxruntime-objc`, same release as the converter: onnxruntime {mobile["onnxruntime"]}).
```kotlin
// Android (Kotlin): ai.onnxruntime
val env = OrtEnvironment.getEnvironment()
val session = env.createSession(assets.open("{MODEL_ORT}").readBytes())
val input = OnnxTensor.createTensor(env, FloatBuffer.wrap(pixels), longArrayOf({dims}))
val label = (session.run(mapOf("{INPUT_NAME}" to input))["{LABEL_NAME}"].get().value as LongArray)[0]
```
```swift
// iOS (Swift, onnxruntime-objc)
let session = try ORTSession(env: ORTEnv(loggingLevel: .warning), modelPath: path, sessionOptions: nil)
let shape: [NSNumber] = [{", ".join(map(str, [1, *shape]))}]
let input = try ORTValue(tensorData: NSMutableData(data: pixelData), elementType: .float, shape: shape)
let outputs = try session.run(withInputs: ["{INPUT_NAME}": input], outputNames: ["{LABEL_NAME}"], runOptions: nil)
```
For a reduced-size build that contains only the operators this model needs, build onnxruntime from source with
`--minimal_build --include_ops_by_config {mobile["operator_config"]}`; the config lists:
```
{mobile["operators"]}
```
"""


def _browser(content: dict[str, Any]) -> str:
    shape = content["signature"]["input_shape"]
    return f"""## Run it in a browser (onnxruntime-web)
```js
import * as ort from "onnxruntime-web";
const session = await ort.InferenceSession.create("{MODEL_ORT}");  // "{MODEL_ONNX}" works too
const images = new ort.Tensor("float32", pixels /* Float32Array of raw 0..255 */, [1, {", ".join(map(str, shape))}]);
const {{ {PROBABILITIES_NAME}, {LABEL_NAME} }} = await session.run({{ {INPUT_NAME}: images }});
console.log(Number({LABEL_NAME}.data[0]), {PROBABILITIES_NAME}.data);  // label is a BigInt64Array
```
"""


def _files() -> str:
    return f"""## Files
`{MODEL_ONNX}` (float32 reference), `{INT8_ONNX}`, `{MODEL_ORT}`, the mobile operator config, this card and
`manifest.json` (sha256 and size of every file, every check above with its numbers).
"""


def _pct(value: float | None) -> str:
    return "n/a (no labels)" if value is None else f"{100 * value:.2f}%"
