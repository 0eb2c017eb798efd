"""Decoding untrusted image bytes into RGB, and the model's preprocessing.

Every failure is an ImageError (a catalog.errors.Refusal): a stable code, a message for people and an HTTP
status.
"""

import contextlib
import io
import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import Refusal

# Decompression-bomb guard: images above this many pixels are refused before decoding. The one definition:
# revimg/settings.py reads REVIMG_MAX_IMAGE_PIXELS with this default, and under Django open_image reads that
# setting; without Django (bench/eval_verdict.py decodes photos without settings) this value applies.
DEFAULT_MAX_PIXELS = 50_000_000

# Formats a browser or camera produces. Pillow can open many more, but each extra parser is attack surface,
# and some (EPS) would hand the file to Ghostscript.
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "AVIF", "BMP", "TIFF")

# Things people upload believing they are images, recognised by their first bytes.
DOCUMENT_SIGNATURES = {
    b"%PDF-": "PDF",
    b"%!PS": "PostScript",
    b"\xc5\xd0\xd3\xc6": "EPS",
    b"8BPS": "Photoshop",
}
# ISO base media (HEIF family) brands, found at bytes 8-12 after "ftyp".
HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")

# Pixel values of the model's normalisation: (x - 127) / 128.
NORMALIZATION_CENTER = 127.0
NORMALIZATION_SCALE = 128.0
CROP_PADDING = 32

STATUS_BY_CODE = {"unsupported_type": 415, "too_large": 413}


class ImageError(Refusal):
    """Bytes that cannot become an image; the status follows from the code (413, 415, else 400)."""

    def __init__(self, code: str, message: str):
        super().__init__(code, message, STATUS_BY_CODE.get(code, 400))


def _default_max_pixels() -> int:
    from django.conf import settings

    if settings.configured or os.environ.get("DJANGO_SETTINGS_MODULE"):
        return settings.REVIMG_MAX_IMAGE_PIXELS
    return DEFAULT_MAX_PIXELS


def _sniff_unsupported_type(data: bytes) -> str | None:
    """Name the non-image (or unsupported image) type the bytes start with, if they are one we know."""
    for signature, name in DOCUMENT_SIGNATURES.items():
        if data.startswith(signature):
            return name
    if data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:
        return "HEIF/HEIC"
    # Image formats are binary with fixed signatures, so text starting with "<" is markup (SVG, HTML, XML).
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<"):
        return "SVG" if b"<svg" in head else "HTML/XML"
    return None


class _EndOfDataWatch(io.BytesIO):
    """Records any read made at the end of the data: a decoder asking for more than there is.

    Pillow reports truncated files only while its global ImageFile.LOAD_TRUNCATED_IMAGES is false; any code
    in the process may set it. Watching the reads detects truncation whatever that flag says.
    """

    read_past_end = False

    def read(self, size=-1, /):
        chunk = super().read(size)
        if not chunk and size != 0:
            self.read_past_end = True
        return chunk


@contextlib.contextmanager
def _pillow_bomb_checks_fail():
    """Pillow's own bomb checks (while opening, and for GIF frames and TIFF tiles while loading) warn
    between its limit and twice it; here they fail instead.

    catch_warnings changes process-wide state and is not thread-safe, but the only filter concurrent
    threads could leave behind is this same one, which is the policy wanted for untrusted images anyway.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError(
            "too_many_pixels", "The image has too many pixels to be processed safely."
        ) from error


def _open_lazily(stream: io.BytesIO, data: bytes) -> Image.Image:
    """Identify the format and read the header only; no pixel data is decoded yet."""
    with _pillow_bomb_checks_fail():
        try:
            return Image.open(stream, formats=ALLOWED_FORMATS)
        except UnidentifiedImageError as error:
            raise ImageError("not_an_image", "The data is not an image in a supported format.") from error
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise _damaged(data) from error


def _damaged(data: bytes) -> ImageError:
    return ImageError("truncated", f"The image data is cut short or damaged ({len(data)} bytes).")


def _check_pixel_count(image: Image.Image, max_pixels: int) -> None:
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError(
            "too_many_pixels",
            f"The image is {width}x{height} pixels; at most {max_pixels:,} pixels are accepted.",
        )


def _decode_first_frame(image: Image.Image, stream: _EndOfDataWatch, data: bytes) -> None:
    """Decode the current frame, which after opening is the first one."""
    stream.read_past_end = False
    with _pillow_bomb_checks_fail():
        try:
            image.load()
        except (OSError, SyntaxError, ValueError, EOFError, IndexError) as error:
            raise _damaged(data) from error
    if stream.read_past_end:
        raise _damaged(data)


def _upright_copy(image: Image.Image) -> Image.Image:
    """A new image, turned as its EXIF orientation says (exif_transpose copies even when nothing turns)."""
    try:
        return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError):
        # A broken EXIF block is common and harmless: keep the pixels as stored.
        return image.copy()


def _scale_to_8_bits(image: Image.Image) -> Image.Image:
    """Greyscale with more than 8 bits (I;16*, I, F) as 8-bit L, keeping its tonal range."""
    pixels = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16"):
        scaled = pixels / 257.0
    else:
        # 32-bit integer and float data have no canonical range: stretch the data's own range.
        low, high = float(pixels.min()), float(pixels.max())
        scaled = (pixels - low) * (255.0 / (high - low)) if high > low else np.clip(pixels, 0, 255)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def _has_transparency(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode as RGB; transparent areas become white, as they usually show on a page."""
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I") or image.mode == "F":
        return _scale_to_8_bits(image).convert("RGB")
    if _has_transparency(image):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def open_image(
    data: bytes,
    max_pixels: int | None = None,
    max_bytes: int | None = None,
    reduce_to: int | None = None,
    max_decoded_pixels: int | None = None,
) -> Image.Image:
    """Decode untrusted bytes into an upright RGB image (the first frame of an animation).

    The pixel count is checked from the header, before any pixel is decoded: max_pixels (default
    REVIMG_MAX_IMAGE_PIXELS) caps the file's own size, max_decoded_pixels (default: no further cap) the
    pixels actually decoded. With reduce_to, only a picture whose short side is reduce_to is wanted: a JPEG
    is decoded at 1/2, 1/4 or 1/8 of its size when that still leaves reduce_to on each side (libjpeg's
    scaled IDCT, through Pillow's draft; other formats cannot), and the result is shrunk to that short side.
    Without it (catalog imports), the full picture. Raises ImageError.
    """
    _check_bytes(data, max_bytes)
    stream = _EndOfDataWatch(data)
    image = _open_lazily(stream, data)
    try:
        _check_pixel_count(image, _default_max_pixels() if max_pixels is None else max_pixels)
        if reduce_to is not None:
            image.draft("RGB", (reduce_to, reduce_to))
        if max_decoded_pixels is not None:
            _check_pixel_count(image, max_decoded_pixels)
        _decode_first_frame(image, stream, data)
        if reduce_to is None:
            return _upright_rgb(image)
        return _shrunk(_upright_rgb(_shrunk_early(image, reduce_to)), reduce_to)
    finally:
        image.close()


def _check_bytes(data: bytes, max_bytes: int | None) -> None:
    if not data:
        raise ImageError("empty", "No data was received.")
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageError("too_large", f"The file is {len(data):,} bytes; at most {max_bytes:,} are accepted.")
    unsupported = _sniff_unsupported_type(data)
    if unsupported:
        raise ImageError(
            "unsupported_type", f"{unsupported} files are not supported; send a JPEG, PNG or WebP."
        )


# Modes that shrink well as decoded (Pillow premultiplies alpha while resampling). Palettes and 1-bit
# would be resampled by nearest neighbour, and a transparent colour key would no longer match once blended.
EARLY_SHRINK_MODES = ("RGB", "RGBA", "L", "LA", "CMYK")


def _shrunk_early(image: Image.Image, short_side: int) -> Image.Image:
    """Shrunk before it is turned upright and made RGB, when that loses nothing a search sees: each of
    those steps copies the image, so a large picture is copied once instead of two to four times."""
    if image.mode not in EARLY_SHRINK_MODES or "transparency" in image.info:
        return image
    return _shrunk(image, short_side)


def _shrunk(image: Image.Image, short_side: int) -> Image.Image:
    """image scaled down (never up) so its short side is short_side, with the model's filter."""
    width, height = image.size
    scale = short_side / min(width, height)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC)


def _upright_rgb(image: Image.Image) -> Image.Image:
    try:
        return to_rgb(_upright_copy(image))
    except (OSError, ValueError) as error:
        raise ImageError(
            "not_an_image", f"Images in mode {image.mode} cannot be converted to RGB."
        ) from error


def center_crop_box(width: int, height: int, size: int) -> tuple[int, int, int, int]:
    """The centred square covering size/(size+32) of the short side, as the reference evaluation crops.

    The network is not shift-invariant: one pixel of offset moves class probabilities by a few hundredths,
    so the rounding (size rounded, offsets floored) follows the reference exactly.
    """
    crop = max(1, round(size / (size + CROP_PADDING) * min(width, height)))
    left = (width - crop) // 2
    top = (height - crop) // 2
    return left, top, left + crop, top + crop


def preprocess(image: Image.Image, size: int = 224) -> np.ndarray:
    """The model's input for one image: (size, size, 3) float32, centre-cropped, bicubic, (x - 127) / 128."""
    rgb = to_rgb(image)
    # Crop first: resize(box=...) would also sample pixels just outside the box, unlike the reference.
    resized = rgb.crop(center_crop_box(*rgb.size, size)).resize((size, size), Image.Resampling.BICUBIC)
    return (np.asarray(resized, dtype=np.float32) - NORMALIZATION_CENTER) / NORMALIZATION_SCALE
