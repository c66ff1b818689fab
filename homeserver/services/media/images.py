"""Making thumbnail images with Pillow. Spec: client-server API "Thumbnails":

- "crop" returns an image of the requested aspect ratio, "scale" keeps the original's;
- never smaller than requested unless the original makes that impossible, never upscaled:
  when the original is not larger than the request, the original is returned;
- `animated=true` may get an animated thumbnail (we make WebP, which the spec prefers);
  otherwise never an animated one (the first frame).

Only PNG (and APNG), JPEG, GIF and WebP are decoded (Pillow's format list is restricted to these,
which also keeps its less-hardened decoders out of reach), and an image is refused before any
pixel is decoded when width x height exceeds [media] max_image_pixels (an image bomb: a small
file that decodes to gigabytes).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image, ImageSequence, UnidentifiedImageError

DECODED_FORMATS = ("PNG", "JPEG", "GIF", "WEBP")
FORMAT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif",
                "WEBP": "image/webp"}
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif",
              "image/webp": "webp"}


class CannotThumbnail(Exception):
    """Not an image we thumbnail, or a broken one."""


class TooLargeToThumbnail(Exception):
    """An image with more pixels than the configured limit."""


@dataclass(frozen=True)
class Thumb:
    data: bytes
    content_type: str
    width: int
    height: int


@dataclass(frozen=True)
class Original:
    """Serve the original content as the thumbnail (it is no larger than the request)."""

    content_type: str


def output_size(src_w: int, src_h: int, width: int, height: int,
                method: str) -> tuple[int, int] | None:
    """The thumbnail's size, or None when only upscaling could reach the request."""
    factor = max(width / src_w, height / src_h)
    if factor >= 1:
        return None
    if method == "crop":
        return width, height
    # "scale": the smallest aspect-preserving size covering the request in both dimensions.
    return max(width, round(src_w * factor)), max(height, round(src_h * factor))


def _box(src_w: int, src_h: int, width: int, height: int,
         method: str) -> tuple[float, float, float, float]:
    """The source region to resize: all of it (scale) or its centre at the target aspect."""
    if method == "scale":
        return 0, 0, src_w, src_h
    if src_w * height > src_h * width:  # wider than the target: trim left and right
        crop_w = src_h * width / height
        x = (src_w - crop_w) / 2
        return x, 0, x + crop_w, src_h
    crop_h = src_w * height / width
    y = (src_h - crop_h) / 2
    return 0, y, src_w, y + crop_h


def open_image(fp: BinaryIO, max_pixels: int) -> Image.Image:
    """Read the header only; refuse bombs before anything is decoded."""
    try:
        img = Image.open(fp, formats=DECODED_FORMATS)
    except Image.DecompressionBombError as e:
        raise TooLargeToThumbnail(str(e)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise CannotThumbnail(str(e)) from None
    if img.width < 1 or img.height < 1:
        raise CannotThumbnail("empty image")
    if img.width * img.height > max_pixels:
        pixels = img.width * img.height
        img.close()
        raise TooLargeToThumbnail(f"{pixels} pixels exceeds the limit of {max_pixels}")
    return img


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        img.mode == "P" and "transparency" in img.info)


def _static(img: Image.Image, size: tuple[int, int], method: str) -> Thumb:
    fmt = img.format
    if fmt == "JPEG":
        # Let the JPEG decoder downscale by a power of two while staying above the target.
        factor = max(size[0] / img.width, size[1] / img.height)
        img.draft(img.mode, (math.ceil(img.width * factor), math.ceil(img.height * factor)))
    keep_alpha = fmt != "JPEG" and _has_alpha(img)
    frame = img.convert("RGBA" if keep_alpha else "RGB")
    out = frame.resize(size, Image.Resampling.LANCZOS,
                       box=_box(frame.width, frame.height, size[0], size[1], method),
                       reducing_gap=3.0)
    buf = io.BytesIO()
    if fmt == "JPEG":
        out.save(buf, format="JPEG", quality=85)
        return Thumb(buf.getvalue(), "image/jpeg", *size)
    out.save(buf, format="PNG")
    return Thumb(buf.getvalue(), "image/png", *size)


def _animated(img: Image.Image, size: tuple[int, int], method: str, max_pixels: int,
              max_frames: int) -> Thumb | None:
    """An animated WebP, or None when the animation is over the frame or pixel budget."""
    frames: list[Image.Image] = []
    durations: list[int] = []
    decoded = 0
    box = _box(img.width, img.height, size[0], size[1], method)
    for index, frame in enumerate(ImageSequence.Iterator(img)):
        decoded += img.width * img.height
        if index >= max_frames or decoded > max_pixels:
            return None
        frames.append(frame.convert("RGBA").resize(size, Image.Resampling.LANCZOS, box=box,
                                                   reducing_gap=3.0))
        durations.append(int(frame.info.get("duration") or 100))
    buf = io.BytesIO()
    frames[0].save(buf, format="WEBP", save_all=True, append_images=frames[1:],
                   duration=durations, loop=int(img.info.get("loop", 1)), quality=80)
    return Thumb(buf.getvalue(), "image/webp", *size)


def make_thumbnail(fp: BinaryIO, width: int, height: int, method: str, *, animated: bool,
                   max_pixels: int, max_frames: int) -> Thumb | Original:
    img = open_image(fp, max_pixels)
    try:
        is_animated = bool(getattr(img, "is_animated", False))
        want_animation = animated and is_animated
        size = output_size(img.width, img.height, width, height, method)
        if size is None:
            if not is_animated or want_animation:
                return Original(FORMAT_TYPES[img.format or ""])
            size = img.size  # an animation that must not be: its first frame, full size
        if want_animation:
            thumb = _animated(img, size, method, max_pixels, max_frames)
            if thumb is not None:
                return thumb
            img.seek(0)  # spec: when it cannot be animated, behave as animated=false
        return _static(img, size, method)
    except (OSError, SyntaxError, ValueError, EOFError) as e:  # truncated or corrupt data
        raise CannotThumbnail(str(e)) from None
    finally:
        img.close()
