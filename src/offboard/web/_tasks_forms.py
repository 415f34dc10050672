"""What the task and approval pages share: refusals (a page for a browser, JSON otherwise), bounded form
reading, and uploaded files kept beside the case with their SHA-256."""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.datastructures import FormData, UploadFile

from ..intake._bodies import read_bounded
from ._auditor import HEADERS
from ._tasks_html import error_page

__all__ = ["PageRefused", "refused", "read_form", "text_field", "stored_upload", "html", "UPLOAD_MAX_BYTES"]

#: The largest photo or handover file a page accepts (a phone photo is 2 to 6 MB).
UPLOAD_MAX_BYTES = 8 * 1024 * 1024
FORM_SLACK_BYTES = 64 * 1024  # the form's other fields and multipart framing
MAX_FIELD_CHARS = 2000
IMAGE_TYPES = {b"\xff\xd8\xff": ".jpg", b"\x89PNG\r\n\x1a\n": ".png"}
TITLES = {
    400: "Something in the form is not right",
    403: "This link does not open anything",
    404: "Not found",
    405: "Not allowed",
    408: "Too slow",
    409: "Already done",
    410: "This link has expired",
    413: "Too large",
    415: "Not accepted",
    503: "Sign-in is unavailable",
}


class PageRefused(Exception):
    """A refusal of a task or approval page: ``status`` 4xx, a ``code`` and a message for people."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=HEADERS)


def refused(request: Request, exc: PageRefused) -> Response:
    """A page for a browser (it asks for text/html), the server's JSON refusal for anything else."""
    headers = {**HEADERS, **exc.headers}
    if "text/html" in request.headers.get("accept", ""):
        title = TITLES.get(exc.status, "Refused")
        return HTMLResponse(error_page(title, exc.message), status_code=exc.status, headers=headers)
    return JSONResponse({"error": exc.code, "message": exc.message}, status_code=exc.status, headers=headers)


async def read_form(request: Request, timeout: float, uploads: bool) -> FormData:
    """The posted form, read within ``timeout`` and a size bound; PageRefused (4xx) for anything malformed."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    accepted = ["application/x-www-form-urlencoded", *(["multipart/form-data"] if uploads else [])]
    if kind not in accepted:
        raise PageRefused(415, "unsupported_media_type", f"send the form as {' or '.join(accepted)}")
    limit = (UPLOAD_MAX_BYTES if uploads else 0) + FORM_SLACK_BYTES
    # starlette reads the form from the cached body
    request._body = await read_bounded(
        request,
        limit,
        timeout,
        PageRefused,
        what="the form",
        disconnected="the browser disconnected before the form was sent",
    )
    try:
        return await request.form(max_files=2, max_fields=20, max_part_size=FORM_SLACK_BYTES)
    except Exception as exc:  # python-multipart and starlette raise several kinds for malformed input
        message = getattr(exc, "detail", None) or type(exc).__name__
        raise PageRefused(400, "malformed_form", f"the form cannot be read: {message}") from None


def text_field(form: FormData, name: str, *, required: str = "", limit: int = MAX_FIELD_CHARS) -> str:
    """A text field, stripped; PageRefused (400) naming the field when it is missing (``required`` says why),
    too long, not text, or holds control characters."""
    value = form.get(name)
    if value is None or value == "":
        if required:
            raise PageRefused(400, "missing_field", f"{name}: {required}")
        return ""
    if not isinstance(value, str):
        raise PageRefused(400, "bad_field", f"{name}: expected text, not a file")
    if len(value) > limit:
        raise PageRefused(400, "bad_field", f"{name}: at most {limit} characters (got {len(value)})")
    if re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]", value):
        raise PageRefused(400, "bad_field", f"{name}: holds control or direction-changing characters")
    return value.strip()


def _kind_of_image(head: bytes) -> str | None:
    for magic, suffix in IMAGE_TYPES.items():
        if head.startswith(magic):
            return suffix
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    return None


async def stored_upload(form: FormData, name: str, directory: Path, stem: str, *, image: bool) -> dict[str, Any] | None:
    """Keep the uploaded file ``name`` (if one was sent) as ``directory/<stem>-<sha256 prefix><suffix>``;
    its path (relative to the data directory's ``cases``), size and SHA-256, or None when nothing was sent."""
    value = form.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, UploadFile):
        raise PageRefused(400, "bad_field", f"{name}: expected a file")
    data = await value.read(UPLOAD_MAX_BYTES + 1)
    if not data:
        return None  # a browser sends an empty part when no file was chosen
    if len(data) > UPLOAD_MAX_BYTES:
        raise PageRefused(413, "file_too_large", f"{name}: at most {UPLOAD_MAX_BYTES // (1024 * 1024)} MiB")
    if image:
        suffix = _kind_of_image(data[:16])
        if suffix is None:
            raise PageRefused(415, "not_an_image", f"{name}: not a JPEG, PNG or WebP image")
    else:
        suffix = re.sub(r"[^a-z0-9.]", "", Path(value.filename or "").suffix.lower())[:10]
    digest = hashlib.sha256(data).hexdigest()
    path = directory / f"{stem}-{digest[:16]}{suffix}"
    await asyncio.to_thread(_write, path, data)
    return {"file": str(Path(directory.parent.name, directory.name, path.name)), "bytes": len(data), "sha256": digest}


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)
