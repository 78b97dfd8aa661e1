"""Errors the service answers with; each carries its HTTP status, one handler renders them all
as ``{"error": "<message>"}`` (the error body of both TF Serving REST and the V2 protocol).

* ServiceError              (500; never raised for a client mistake)
  + InvalidInputError            (400: malformed body, wrong shape, dtype, values, batch too large)
  + UnauthorizedError            (401: missing or wrong bearer API key)
  + ModelNotFoundError           (404: unknown model or version)
  + PayloadTooLargeError         (413: body over ``max_body_bytes``)
  + UnsupportedMediaTypeError    (415: a content type the route cannot read)
  + ModelNotReadyError           (503: the model exists but no version is loaded yet)
  + InferenceTimeoutError        (504: the inference did not finish within ``request_timeout``)
"""

from __future__ import annotations

from collections.abc import Iterable


class ServiceError(Exception):
    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInputError(ServiceError):
    status_code = 400


class UnauthorizedError(ServiceError):
    status_code = 401


class ModelNotFoundError(ServiceError):
    status_code = 404

    @classmethod
    def model(cls, name: str, available: Iterable[str]) -> ModelNotFoundError:
        names = ", ".join(sorted(available)) or "none"
        return cls(f"model {name!r} not found; available models: {names}")

    @classmethod
    def version(cls, name: str, version: object, available: Iterable[int]) -> ModelNotFoundError:
        versions = ", ".join(str(v) for v in sorted(available)) or "none"
        return cls(f"model {name!r} has no version {version}; available versions: {versions}")


class PayloadTooLargeError(ServiceError):
    status_code = 413


class UnsupportedMediaTypeError(ServiceError):
    status_code = 415


class ModelNotReadyError(ServiceError):
    status_code = 503


class InferenceTimeoutError(ServiceError):
    status_code = 504
