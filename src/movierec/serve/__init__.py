"""The HTTP service: ``app`` (endpoints and guards), ``schemas`` (the bodies), ``run`` (uvicorn)."""

from movierec.serve.app import create_app
from movierec.serve.run import serve

__all__ = ["create_app", "serve"]
