"""Stored photos carry pixels only: nothing of the upload's metadata survives, in any size."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image, ImageCms
from PIL.PngImagePlugin import PngInfo

from dateline.stories import photos

SECRET = "52.5200N 13.4050E call +49 170 5550123"
SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def phone_jpeg(icc: bool = True) -> bytes:
    """A photo as a phone or an agency sends it: EXIF with GPS, a comment, XMP, an ICC
    profile, and IPTC in a Photoshop segment."""
    image = Image.new("RGB", (2000, 1200), (180, 90, 40))
    exif = Image.Exif()
    exif[0x010E] = SECRET  # ImageDescription
    buffer = io.BytesIO()
    xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description>{SECRET}</rdf:Description></x:xmpmeta>'
    image.save(buffer, "JPEG", exif=exif, comment=SECRET.encode(), icc_profile=SRGB_ICC if icc else None,
               xmp=xmp.encode())
    data = buffer.getvalue()
    iptc = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00" + struct.pack(">I", 4 + len(SECRET)) + b"\x1c\x02\x78" + \
        struct.pack(">H", len(SECRET)) + SECRET.encode()
    return data[:2] + _segment(0xED, iptc) + data[2:]


def phone_png(alpha: bool) -> bytes:
    image = Image.new("RGBA" if alpha else "RGB", (1800, 900), (20, 120, 200, 128) if alpha else (20, 120, 200))
    text = PngInfo()
    text.add_text("Comment", SECRET)
    text.add_itxt("Description", SECRET, lang="en")
    text.add_text("Location", SECRET, zip=True)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", pnginfo=text, icc_profile=SRGB_ICC)
    return buffer.getvalue()


def jpeg_markers(data: bytes) -> list[int]:
    """The markers of a JPEG's header segments, up to the start of the image data."""
    markers, at = [], 2
    while at < len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xDA:  # start of scan: the header is over
            break
        markers.append(marker)
        at += 2 + int.from_bytes(data[at + 2:at + 4], "big")
    return markers


@pytest.mark.parametrize("upload", [phone_jpeg(), phone_jpeg(icc=False), phone_png(alpha=True), phone_png(alpha=False)],
                         ids=["jpeg", "jpeg-without-profile", "png-with-alpha", "png"])
def test_no_metadata_of_the_upload_is_stored(upload: bytes) -> None:
    assert SECRET.encode() in upload or b"Location" in upload  # the fixture does carry it
    stored, variants = photos.process(upload)
    assert len(variants) == len(stored.widths) == 3
    assert stored.url == f"/media/{variants[-1].name}"
    for variant in variants:
        data = variant.data
        assert SECRET.encode() not in data and b"52.5200N" not in data, variant.name
        assert photos.VARIANT_NAME.fullmatch(variant.name), variant.name
        image = Image.open(io.BytesIO(data))
        assert variant.content_type == Image.MIME[image.format or ""], variant.name
        image.load()
        kept = set(image.info) - {"jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi", "progressive",
                                  "progression", "gamma"}
        assert not kept, (variant.name, kept)
        assert not image.getexif()
        if image.format == "JPEG":
            # SOI's followers: JFIF's APP0 and the tables; no APP1 (EXIF, XMP), APP2 (ICC),
            # APP13 (IPTC) or COM.
            assert set(jpeg_markers(data)) <= {0xE0, 0xDB, 0xC4, 0xC0, 0xC2, 0xDD}, (variant.name, jpeg_markers(data))
        else:
            assert not any(chunk in data for chunk in (b"tEXt", b"iTXt", b"zTXt", b"iCCP", b"eXIf")), variant.name


@pytest.mark.parametrize("profile", [SRGB_ICC, b"not a profile"], ids=["srgb", "broken-profile"])
def test_a_tagged_photo_keeps_its_colours(profile: bytes) -> None:
    """The pixels pass through the colour conversion (or, with a profile that cannot be read,
    around it) unharmed."""
    image = Image.new("RGB", (600, 400), (128, 160, 60))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", icc_profile=profile, quality=95)
    stored, variants = photos.process(buffer.getvalue())
    assert variants[-1].name == stored.url.removeprefix("/media/")
    out = Image.open(io.BytesIO(variants[-1].data))
    assert out.mode == "RGB" and "icc_profile" not in out.info
    assert all(abs(a - b) <= 6 for a, b in zip(out.getpixel((300, 200)), (128, 160, 60), strict=True))
