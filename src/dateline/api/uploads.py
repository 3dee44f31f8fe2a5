"""`/api/v1/uploads`: photos for image entries."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Request, UploadFile

from ..config import Settings
from ..stories import media, photos
from ..web.deps import Config, Member
from ..web.json_body import api_router
from ..web.middleware import size_text
from ..web.problems import COMMON_ERRORS, UNSUPPORTED_MEDIA, Problem
from .models import Upload

router = api_router("entries")
UPLOADS_PATH = router.prefix + "/uploads"
FORM_ALLOWANCE = 64 * 1024  # the form around the photo: boundary, part headers, file name
# Decoding a photo of the pixel limit (40 megapixels) takes about 300 MB at its peak, a 12
# megapixel phone photo about 100 MB: at most this many are decoded at once by a process.
DECODING_AT_ONCE = 2


def too_large(limit: int) -> str:
    return f"The photo is larger than the upload limit of {size_text(limit)}; send a smaller copy of it."


def body_limits(settings: Settings) -> dict[str, tuple[int, str]]:
    """The uploads' own request body limit (the rest of the API has DATELINE_MAX_REQUEST_BYTES)."""
    return {UPLOADS_PATH: (settings.max_upload_bytes + FORM_ALLOWANCE, too_large(settings.max_upload_bytes))}


@router.post("/uploads", status_code=201, response_model=Upload, responses=COMMON_ERRORS | UNSUPPORTED_MEDIA)
async def upload_photo(request: Request, user: Member, settings: Config, file: UploadFile) -> dict[str, Any]:
    """Upload a photo (JPEG, PNG or WebP). It is checked, cleaned of EXIF and resized;
    use the answer's `url` as an image entry's `image_url`."""
    data = await file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise Problem(413, too_large(settings.max_upload_bytes))
    try:
        decoding: asyncio.Semaphore = request.app.state.photo_decoding
        async with decoding:
            stored, variants = await asyncio.to_thread(photos.process, data)
    except photos.UploadError as exc:
        raise Problem(415, str(exc)) from None
    # Answered once the store has it: a folder's files, or one committed transaction.
    await asyncio.to_thread(media.store_for(settings, request.app.state.db).save, variants)
    return {"url": stored.url, "srcset": stored.srcset, "width": stored.width, "height": stored.height}
