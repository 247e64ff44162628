"""JSON answers: encoded once, strictly, and what ``GET /model`` tells about the training run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from fastapi.responses import Response

from movierec import manifest as manifest_file
from movierec import persist


def json_response(content: dict, status_code: int = 200) -> Response:
    """``content`` as strict JSON (no NaN), ASCII with ``\\u`` escapes."""
    # Encoded directly: the rows are already plain JSON types, and FastAPI's response-model
    # pass would re-validate every item of every list (tests check them against the models).
    # ASCII with \u escapes: an id sent with a lone surrogate ("\ud800", valid JSON, not
    # valid UTF-8) is echoed back in an error or "ignored" list, and must not be a 500.
    return raw_json(json.dumps(content, allow_nan=False, separators=(",", ":")).encode(), status_code)


def raw_json(body: bytes, status_code: int = 200) -> Response:
    """Bytes already encoded as JSON."""
    return Response(content=body, media_type="application/json", status_code=status_code)


def model_info(model_dir: Path) -> dict:
    """The manifest without its long lists, plus metrics.json when the run wrote one."""
    manifest = persist.read_manifest(model_dir)
    info = {k: v for k, v in manifest.items() if k not in ("user_ids", "item_ids", "titles")}
    info["metrics"] = manifest_file.read_metrics(model_dir)
    return _finite(info)


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None: strict JSON has no place for them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
