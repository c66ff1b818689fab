"""Thumbnails (spec: client-server API "Thumbnails"): crop gives the requested size, scale keeps
the aspect ratio and covers the request, nothing is upscaled, animations only on request, image
bombs and non-images are refused with their errcodes and leave no thumbnail behind."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from asgiref.sync import sync_to_async
from PIL import Image

from homeserver.models import MediaThumbnail
from tests.media.conftest import (
    V1,
    acounts,
    animated_gif,
    body_of,
    configure,
    files_under,
    get,
    image_bytes,
    media_id_of,
    server_name,
    session,
    upload,
)

pytestmark = pytest.mark.django_db(transaction=True)
thumb_rows = sync_to_async(lambda: sorted(
    MediaThumbnail.objects.values_list("width", "height", "method", "animated")))


async def uploaded(api, token, data, content_type="image/png") -> str:
    r = await upload(api, token, data, content_type)
    assert r.status_code == 200, r.json()
    return media_id_of(r.json()["content_uri"])


async def thumb(api, token, media_id, query):
    return await get(api, f"{V1}/thumbnail/{server_name()}/{media_id}?{query}", token)


async def thumb_image(api, token, media_id, query) -> tuple[Image.Image, object]:
    r = await thumb(api, token, media_id, query)
    assert r.status_code == 200, r.json() if r["Content-Type"] == "application/json" else r
    return Image.open(io.BytesIO(await body_of(r))), r


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels: an image bomb."""
    raw = image_bytes((1, 1))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    start = raw.index(b"IHDR") - 4
    end = start + 8 + 13 + 4
    return (raw[:start] + struct.pack(">I", 13) + chunk
            + struct.pack(">I", zlib.crc32(chunk)) + raw[end:])


async def test_crop_and_scale_sizes_and_caching(api, media_store):
    _, a_tok = await session(api)
    _, b_tok = await session(api)
    media_id = await uploaded(api, a_tok, image_bytes((1000, 800)))

    img, r = await thumb_image(api, b_tok, media_id, "width=96&height=96&method=crop")
    assert (img.size, img.format) == ((96, 96), "PNG")
    assert r["Content-Type"] == "image/png"
    assert r["Content-Disposition"] == 'inline; filename="thumbnail.png"'
    assert r["X-Content-Type-Options"] == "nosniff"

    img, _ = await thumb_image(api, b_tok, media_id, "width=320&height=240&method=scale")
    assert img.size == (320, 256)  # aspect kept, both sides >= the request

    # Smaller requests are answered from the smallest configured size that covers them.
    img, _ = await thumb_image(api, b_tok, media_id, "width=64&height=50&method=crop")
    assert img.size == (96, 96)
    img, _ = await thumb_image(api, b_tok, media_id, "width=10&height=10")  # scale default
    assert img.size == (320, 256)
    # Larger than any configured size: made at the requested size.
    img, _ = await thumb_image(api, b_tok, media_id, "width=900&height=700&method=scale")
    assert img.size == (900, 720)

    assert await thumb_rows() == [(96, 96, "crop", False), (320, 240, "scale", False),
                                  (900, 700, "scale", False)]
    again, _ = await thumb_image(api, a_tok, media_id, "width=96&height=96&method=crop")
    assert again.size == (96, 96)
    assert len(await thumb_rows()) == 3  # served from the cache
    assert await acounts(media_store) == (1, 3, 4)


async def test_jpeg_thumbnails_stay_jpeg(api):
    _, tok = await session(api)
    media_id = await uploaded(api, tok, image_bytes((1200, 900), "JPEG"), "image/jpeg")
    img, r = await thumb_image(api, tok, media_id, "width=640&height=480&method=scale")
    assert (img.format, img.size, r["Content-Type"]) == ("JPEG", (640, 480), "image/jpeg")
    assert r["Content-Disposition"] == 'inline; filename="thumbnail.jpg"'


async def test_never_upscaled_small_images_come_back_as_they_are(api):
    _, tok = await session(api)
    small = image_bytes((50, 40))
    media_id = await uploaded(api, tok, small)
    r = await thumb(api, tok, media_id, "width=96&height=96&method=crop")
    assert r.status_code == 200 and await body_of(r) == small
    assert r["Content-Type"] == "image/png"
    # Claimed as something else: the thumbnail is typed by what the bytes are.
    media_id = await uploaded(api, tok, small, "application/octet-stream")
    r = await thumb(api, tok, media_id, "width=800&height=600")
    assert (r.status_code, r["Content-Type"]) == (200, "image/png")
    assert await thumb_rows() == []


async def test_animated_only_when_asked(api, settings):
    _, tok = await session(api)
    media_id = await uploaded(api, tok, animated_gif(4, (200, 160)), "image/gif")
    for query in ("width=96&height=96&method=crop",
                  "width=96&height=96&method=crop&animated=false"):
        img, r = await thumb_image(api, tok, media_id, query)
        assert (r["Content-Type"], img.size, getattr(img, "n_frames", 1)) == (
            "image/png", (96, 96), 1)
    img, r = await thumb_image(api, tok, media_id, "width=96&height=96&method=crop&animated=true")
    assert (r["Content-Type"], img.format, img.size) == ("image/webp", "WEBP", (96, 96))
    assert img.n_frames == 4
    assert await thumb_rows() == [(96, 96, "crop", False), (96, 96, "crop", True)]

    # An animation larger than the request but not allowed to animate: its first frame.
    img, r = await thumb_image(api, tok, media_id, "width=400&height=400&method=scale")
    assert (r["Content-Type"], img.size, getattr(img, "n_frames", 1)) == (
        "image/png", (200, 160), 1)
    # Animated thumbnails switched off: animated=true behaves as false (spec).
    configure(settings, media={"animated_thumbnails": False})
    img, r = await thumb_image(api, tok, media_id, "width=32&height=32&method=crop&animated=true")
    assert (r["Content-Type"], getattr(img, "n_frames", 1)) == ("image/png", 1)


async def test_too_many_frames_fall_back_to_a_still(api, settings):
    configure(settings, media={"max_animated_frames": 3})
    _, tok = await session(api)
    media_id = await uploaded(api, tok, animated_gif(5), "image/gif")
    img, r = await thumb_image(api, tok, media_id, "width=96&height=96&method=crop&animated=true")
    assert (r["Content-Type"], getattr(img, "n_frames", 1)) == ("image/png", 1)


async def test_bad_parameters_are_400_and_make_nothing(api, media_store):
    _, tok = await session(api)
    media_id = await uploaded(api, tok, image_bytes((300, 300)))
    before = await acounts(media_store)
    cases = [
        ("height=32", 400, "M_MISSING_PARAM"),
        ("width=32", 400, "M_MISSING_PARAM"),
        ("width=abc&height=32", 400, "M_INVALID_PARAM"),
        ("width=32.5&height=32", 400, "M_INVALID_PARAM"),
        ("width=0&height=32", 400, "M_INVALID_PARAM"),
        ("width=32&height=-5", 400, "M_INVALID_PARAM"),
        ("width=32&height=99999999999", 400, "M_INVALID_PARAM"),
        ("width=32&height=32&method=zoom", 400, "M_INVALID_PARAM"),
        ("width=32&height=32&animated=maybe", 400, "M_INVALID_PARAM"),
        ("width=32&height=32&timeout_ms=x", 400, "M_INVALID_PARAM"),
    ]
    for query, status, errcode in cases:
        r = await thumb(api, tok, media_id, query)
        assert (r.status_code, r.json()["errcode"]) == (status, errcode), query
    r = await thumb(api, None, media_id, "width=32&height=32")
    assert (r.status_code, r.json()["errcode"]) == (401, "M_MISSING_TOKEN")
    r = await thumb(api, tok, "AAAAAAAAAAAAAAAAAAAAAAAA", "width=32&height=32")
    assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND")
    r = await get(api, f"{V1}/thumbnail/{server_name()}/bad$id?width=32&height=32", tok)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_PARAM")
    r = await api.client.delete(f"{V1}/thumbnail/{server_name()}/{media_id}",
                                headers={"Authorization": f"Bearer {tok}"})
    assert (r.status_code, r.json()["errcode"]) == (405, "M_UNRECOGNIZED")
    assert await acounts(media_store) == before


@pytest.mark.parametrize(("data", "content_type"), [
    (b"just some text", "text/plain"),
    (b"\x00\x01 not a png", "image/png"),  # claims to be an image; its bytes say otherwise
    (image_bytes((300, 300))[:200], "image/png"),  # a PNG cut short
    (b"%PDF-1.7 ...", "application/pdf"),
    (image_bytes((300, 300), "BMP"), "image/bmp"),  # an image, but not a format we decode
])
async def test_non_images_cannot_be_thumbnailed(api, media_store, data, content_type):
    _, tok = await session(api)
    media_id = await uploaded(api, tok, data, content_type)
    r = await thumb(api, tok, media_id, "width=32&height=32&method=crop")
    assert (r.status_code, r.json()) == (400, {
        "errcode": "M_UNKNOWN", "error": "Cannot generate thumbnails for the requested content"})
    assert await acounts(media_store) == (1, 0, 1)


async def test_image_bomb_is_refused_before_decoding(api, media_store, settings):
    _, tok = await session(api)
    bomb = png_claiming(60_000, 60_000)  # 3.6 billion pixels in a few dozen bytes
    assert len(bomb) < 200
    media_id = await uploaded(api, tok, bomb)
    r = await thumb(api, tok, media_id, "width=32&height=32&method=crop")
    assert (r.status_code, r.json()["errcode"]) == (413, "M_TOO_LARGE")
    assert "too large to thumbnail" in r.json()["error"]
    # Just over the configured limit is refused too; the original stays downloadable.
    configure(settings, media={"max_image_pixels": 1000 * 800 - 1})
    big = await uploaded(api, tok, image_bytes((1000, 800)))
    r = await thumb(api, tok, big, "width=96&height=96&method=crop")
    assert (r.status_code, r.json()["errcode"]) == (413, "M_TOO_LARGE")
    assert await acounts(media_store) == (2, 0, 2)
    assert not files_under(media_store / "thumbnails")
    d = await get(api, f"{V1}/download/{server_name()}/{big}", tok)
    assert d.status_code == 200


async def test_thumbnails_kept_per_media_are_capped(api, settings, media_store):
    configure(settings, media={"max_thumbnails_per_media": 1})
    _, tok = await session(api)
    media_id = await uploaded(api, tok, image_bytes((1000, 800)))
    for width in (850, 860, 870):
        img, _ = await thumb_image(api, tok, media_id, f"width={width}&height=10&method=scale")
        assert img.size[0] == width
    # One dynamic size kept; configured sizes are always kept.
    await thumb_image(api, tok, media_id, "width=32&height=32&method=crop")
    assert await thumb_rows() == [(32, 32, "crop", False), (850, 10, "scale", False)]
    assert await acounts(media_store) == (1, 2, 3)
