"""The baseline of issue 5: how a FastAPI + onnxruntime service is typically written.

A pydantic ``instances`` model, a sync endpoint (FastAPI runs it in its thread pool), one
``session.run`` per request, ``.tolist()`` into the JSON answer, one uvicorn worker with the
plain asyncio loop and h11 and uvicorn's default access log. It answers TF Serving's
``:predict`` with the same body as the service (``predictions``: one object per row), so both
do the same work for the client. The model is ``$BENCH_MODEL`` (a ``model.onnx`` path).

Run: ``uvicorn baseline_app:app --app-dir bench --loop asyncio --http h11``
"""

import os
from typing import List  # noqa: UP035 - written the way the typical tutorial app is

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI
from pydantic import BaseModel

session = ort.InferenceSession(os.environ["BENCH_MODEL"], providers=["CPUExecutionProvider"])
input_name = session.get_inputs()[0].name
output_names = [o.name for o in session.get_outputs()]
app = FastAPI()


class PredictRequest(BaseModel):
    instances: List[List[List[float]]]  # noqa: UP006


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}


@app.post("/v1/models/{name}:predict")
def predict(name: str, request: PredictRequest) -> dict:
    x = np.array(request.instances, dtype=np.float32)
    outputs = session.run(None, {input_name: x})
    columns = [o.tolist() for o in outputs]
    return {"predictions": [dict(zip(output_names, row, strict=True)) for row in zip(*columns, strict=True)]}
