"""Exporter: a trainer artifact -> a versioned, validated ONNX model repository entry."""

from exporter.errors import ExportError
from exporter.graph import build_model

__all__ = ["ExportError", "build_model"]
