"""`/api/v1/uploads`: photos for image entries."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter, UploadFile

from ..stories import photos
from ..web.deps import Config, Member
from ..web.problems import COMMON_ERRORS, UNSUPPORTED_MEDIA, Problem
from .models import Upload

router = APIRouter(prefix="/api/v1", tags=["entries"])


@router.post("/uploads", status_code=201, response_model=Upload, responses=COMMON_ERRORS | UNSUPPORTED_MEDIA)
async def upload_photo(user: Member, settings: Config, file: UploadFile) -> dict[str, Any]:
    """Upload a photo (JPEG, PNG or WebP). It is checked, cleaned of EXIF and resized;
    use the answer's `url` as an image entry's `image_url`."""
    data = await file.read(photos.MAX_UPLOAD_BYTES + 1)
    try:
        stored = await asyncio.to_thread(photos.process, data, Path(settings.media_dir))
    except photos.UploadError as exc:
        raise Problem(415, str(exc)) from None
    return {"url": stored.url, "srcset": stored.srcset, "width": stored.width, "height": stored.height}
