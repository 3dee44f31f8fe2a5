"""Photo uploads: decoded to prove they are images, re-encoded clean, resized for `srcset`.

Nothing a reporter uploads is served as sent. The file must decode as JPEG, PNG or WebP
within size and pixel limits (a decompression bomb is refused before it is decoded), must
end where the image ends (no HTML or archive riding behind it), and is encoded again as
fresh JPEG or PNG files carrying pixels only: no EXIF or location, no JPEG comment, XMP or
IPTC, no PNG text chunks, no ICC profile (a photo in another colour space is converted to
sRGB first, the web's default, so its colours survive), and no hidden payload.

`process` only makes the variants; `stories/media.py` stores them (a folder or the database).
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass
from typing import NamedTuple

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

MAX_UPLOAD_BYTES = 15 * 1024 * 1024
MAX_PIXELS = 40_000_000  # 40 megapixels: any camera photo; bombs are far larger
MAX_SIDE = 12_000
WIDTHS = (480, 960, 1600)
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
MAGIC = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png"}  # of the stored variants


class UploadError(ValueError):
    """The file is not an image Dateline accepts; the message says why, for the reporter."""


# The largest variant's name says everything: /media/<key>-<width>x<height>.<jpg|png>
_NAME = re.compile(r"^/media/([0-9a-f]{24})-(\d{1,5})x(\d{1,5})\.(jpg|png)$")
# Any variant's file name, as stored and served (use `fullmatch`): nothing else is looked up.
VARIANT_NAME = re.compile(r"[0-9a-f]{24}-[1-9][0-9]{0,4}x[1-9][0-9]{0,4}\.(jpg|png)")


class Variant(NamedTuple):
    """One size of a photo, ready to store: its file name, type and encoded bytes."""

    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class StoredImage:
    key: str  # content hash: the same photo uploaded twice is stored once
    width: int
    height: int
    extension: str

    def _name(self, width: int) -> str:
        return f"{self.key}-{width}x{round(self.height * width / self.width)}.{self.extension}"

    @property
    def widths(self) -> list[int]:
        return [w for w in WIDTHS if w < self.width] + [self.width]

    @property
    def url(self) -> str:
        return f"/media/{self._name(self.width)}"

    @property
    def srcset(self) -> str:
        return ", ".join(f"/media/{self._name(w)} {w}w" for w in self.widths)

    @classmethod
    def from_url(cls, url: str) -> StoredImage | None:
        """The upload behind an image URL of this site, or None for any other URL."""
        match = _NAME.match(url)
        if not match or not 0 < int(match[2]) <= WIDTHS[-1] or not 0 < int(match[3]) <= MAX_SIDE:
            return None
        return cls(match[1], int(match[2]), int(match[3]), match[4])


def _sniff(data: bytes) -> str:
    for magic, kind in MAGIC.items():
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    raise UploadError("This is not a JPEG, PNG or WebP image.")


def _check_no_trailer(data: bytes, kind: str) -> None:
    """Refuse polyglots: bytes after the end of the image are someone else's file."""
    end_marker = {"PNG": b"IEND", "JPEG": b"\xff\xd9"}.get(kind)
    if end_marker is not None and end_marker not in data:
        raise UploadError("The image is damaged or cut short.")
    if kind == "PNG":
        trailing = data[data.rfind(b"IEND") + 8:]
    elif kind == "JPEG":
        trailing = data[data.rfind(b"\xff\xd9") + 2:].rstrip(b"\x00")  # some cameras pad with zeros
    else:
        declared = int.from_bytes(data[4:8], "little") + 8
        trailing = data[declared:]
    if trailing:
        raise UploadError("The file has extra data after the image; save it again as a plain photo.")


def _open(data: bytes) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
                raise UploadError(
                    f"The image is {width}×{height} pixels; the limit is {MAX_PIXELS // 1_000_000} "
                    f"megapixels and {MAX_SIDE} pixels a side."
                )
            image.verify()  # checks the structure without decoding the pixels
            image = Image.open(io.BytesIO(data))
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UploadError("The image is too large to decode safely.") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            if isinstance(exc, UploadError):
                raise
            raise UploadError("The image is damaged or not really an image.") from None
    return image


_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _pixels_only(image: Image.Image, mode: str) -> Image.Image:
    """The image in sRGB and `mode`, with none of the upload's metadata: Pillow carries
    `info` (comment, XMP, ICC profile, PNG text) from image to image and writes parts of it
    back out on save, so the result starts from an empty one."""
    converted = None
    if profile := image.info.get("icc_profile"):
        try:  # from the photo's own colour space (RGB, CMYK, grey) straight to sRGB
            source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode=mode)
        except (ImageCms.PyCMSError, OSError, ValueError):
            converted = None  # a profile that does not fit: the pixels as they are
    if converted is None:
        converted = image.convert(mode)
    converted.info = {}
    return converted


def process(data: bytes) -> tuple[StoredImage, list[Variant]]:
    """Validate an upload and encode its clean variants (nothing is written: see media.py)."""
    if not data:
        raise UploadError("The file is empty.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
    kind = _sniff(data)
    _check_no_trailer(data, kind)
    image = _open(data)
    if image.format != kind:
        raise UploadError("The file's contents do not match its type.")
    image = ImageOps.exif_transpose(image)  # turn it the way the camera meant, then drop EXIF
    has_alpha = image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info)
    image = _pixels_only(image, "RGBA" if has_alpha else "RGB")
    shown = min(image.width, WIDTHS[-1])
    stored = StoredImage(
        hashlib.sha256(data).hexdigest()[:24], shown, round(image.height * shown / image.width),
        "png" if has_alpha else "jpg",
    )
    variants = []
    for width in stored.widths:
        height = round(image.height * width / image.width)
        resized = image if width == image.width else image.resize((width, height), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        if has_alpha:
            resized.save(buffer, "PNG", optimize=True)
        else:
            resized.save(buffer, "JPEG", quality=82, optimize=True, progressive=True)
        variants.append(Variant(stored._name(width), CONTENT_TYPES[stored.extension], buffer.getvalue()))
    return stored, variants
