"""A photo's bytes made safe to keep: its type sniffed from the bytes (never the client's
word), its size checked before decoding, its location removed (unless kept by setting), and
a small JPEG thumbnail for lists and the history. Blocking (Pillow)."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError
from PIL.ExifTags import IFD

from .refusals import PhotoRefused

FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
THUMBNAIL_QUALITY = 80
JPEG_QUALITY = 90


@dataclass(frozen=True, slots=True)
class Photo:
    data: bytes
    media_type: str
    width: int
    height: int
    thumbnail: bytes  # JPEG
    location_kept: bool


def sniff(data: bytes) -> str | None:
    """The media type the bytes are, by their signature: JPEG, PNG or WebP, else None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def prepare(data: bytes, *, keep_location: bool, max_pixels: int, thumbnail_px: int) -> Photo:
    media_type = sniff(data)
    if media_type is None:
        raise PhotoRefused("photo_type", "not a JPEG, PNG or WebP image (by its bytes)")
    try:
        image = Image.open(io.BytesIO(data))
        # The header alone gives the size: a decompression bomb is refused before decoding.
        if image.width * image.height > max_pixels:
            raise PhotoRefused("photo_pixels", f"{image.width}×{image.height} pixels is over "
                                               f"the limit of {max_pixels}")
        if FORMATS.get(image.format or "") != media_type:
            raise PhotoRefused("photo_type", f"the bytes begin as {media_type} but decode as "
                                             f"{image.format}")
        image.load()
    except PhotoRefused:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError) as error:
        raise PhotoRefused("photo_unreadable", f"the image cannot be decoded: {error}") from None
    kept = data if keep_location else _without_location(image, media_type)
    return Photo(kept, media_type, image.width, image.height, _thumbnail(image, thumbnail_px),
                 keep_location)


def _without_location(image: Image.Image, media_type: str) -> bytes:
    """Re-encoded with the EXIF GPS block and any XMP packet (which can repeat the position)
    removed; the rest of EXIF (time taken, orientation, camera) stays."""
    exif = image.getexif()
    exif.get_ifd(IFD.GPSInfo)  # loaded, so the deletion below reaches the stored block
    if IFD.GPSInfo in exif:
        del exif[IFD.GPSInfo]
    image.info.pop("xmp", None)
    image.info.pop("XML:com.adobe.xmp", None)
    out = io.BytesIO()
    options: dict[str, object] = {"exif": exif.tobytes()}
    if "icc_profile" in image.info:
        options["icc_profile"] = image.info["icc_profile"]
    if media_type in ("image/jpeg", "image/webp"):  # lossy: re-encoded near the original
        options["quality"] = JPEG_QUALITY
    image.save(out, format=image.format, **options)
    return out.getvalue()


def _thumbnail(image: Image.Image, size: int) -> bytes:
    small = ImageOps.exif_transpose(image).convert("RGB")  # upright, as the phone showed it
    small.thumbnail((size, size))
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=THUMBNAIL_QUALITY)
    return out.getvalue()
