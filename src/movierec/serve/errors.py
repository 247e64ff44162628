"""How refusals answer: an unknown id 404, a bad value 422, a body that is not JSON 400; each a JSON ``detail``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from movierec.errors import MovierecError
from movierec.recommend import UnknownIdError
from movierec.serve.responses import json_response


def add_handlers(app: FastAPI) -> None:
    """Answer the package's errors and FastAPI's validation errors as documented."""

    @app.exception_handler(UnknownIdError)
    def unknown_id(_request: Request, exc: UnknownIdError) -> Response:
        return json_response({"detail": str(exc)}, status_code=404)

    @app.exception_handler(MovierecError)
    def bad_input(_request: Request, exc: MovierecError) -> Response:
        return json_response({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, exc: RequestValidationError) -> Response:
        return _invalid(request, exc)


def _invalid(request: Request, exc: RequestValidationError) -> Response:
    # FastAPI's own handler, minus the echoed input, which may not be JSON-safe (NaN, bytes).
    errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
    if any(e.get("type") == "json_invalid" for e in errors):  # not JSON at all: 400, as documented
        return json_response({"detail": f"the body is not valid JSON: {errors[0].get('msg', '')}"}, status_code=400)
    if any(e.get("type") == "missing" and tuple(e.get("loc", ())) == ("body",) for e in errors):
        return json_response({"detail": "the body is empty; send a JSON object"}, status_code=400)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method == "POST" and not (kind == "application/json" or kind.endswith("+json")):
        # FastAPI reads such a body as text ("Input should be a valid dictionary"); curl -d sends a form.
        return json_response(
            {"detail": f"the body is sent as {kind or 'no content type'}; send JSON with "
             "Content-Type: application/json (curl: -H 'content-type: application/json')"},
            status_code=400,
        )  # fmt: skip
    return json_response({"detail": errors}, status_code=422)
