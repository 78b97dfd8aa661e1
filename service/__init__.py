"""The service: a FastAPI + onnxruntime server speaking TF Serving REST and the Open Inference Protocol."""

from service.app import create_app
from service.config import Settings

__all__ = ["Settings", "create_app"]
