"""Pure rules: magic bytes, declared types, served types and dispositions, media IDs, and the
thumbnail size arithmetic (spec "Thumbnails": cover the request, never upscale)."""

from __future__ import annotations

import pytest

from homeserver.protocol.errors import MatrixError
from homeserver.services.media.images import output_size
from homeserver.services.media.mxc import MEDIA_ID_LENGTH, new_media_id, parse_mxc
from homeserver.services.media.sniff import (
    check_filename,
    content_disposition,
    normalize_content_type,
    serving_type,
    sniff,
)
from tests.media.conftest import animated_gif, image_bytes


@pytest.mark.parametrize(("head", "kind"), [
    (image_bytes((4, 4)), "image/png"),
    (image_bytes((4, 4), "JPEG"), "image/jpeg"),
    (image_bytes((4, 4), "GIF"), "image/gif"),
    (image_bytes((4, 4), "WEBP"), "image/webp"),
    (animated_gif(2), "image/gif"),
    (b"\x00\x00\x00\x1cftypavif....", "image/avif"),
    (b"\x00\x00\x00\x14ftypqt  ....", "video/quicktime"),
    (b"\x00\x00\x00\x18ftypisom....", "video/mp4"),
    (b"\x1a\x45\xdf\xa3....", "video/webm"),
    (b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio/wav"),
    (b"ID3\x04....", "audio/mpeg"),
    (b"fLaC....", "audio/flac"),
    (b"%PDF-1.7", "application/pdf"),
    (b"PK\x03\x04....", "application/zip"),
    (b"<html><script>", ""),
    (b"", ""),
])
def test_sniff(head, kind):
    assert sniff(head[:4096]) == kind


def test_apng_is_told_from_png():
    import io

    from PIL import Image

    frames = [Image.new("RGB", (4, 4), (i * 80, 0, 0)) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, format="PNG", save_all=True, append_images=frames[1:])
    assert sniff(buf.getvalue()) == "image/apng"


@pytest.mark.parametrize(("header", "stored"), [
    (None, ""), ("", ""), ("  ", ""),
    ("image/PNG", "image/png"),
    ("Text/Plain;charset=UTF-8", "text/plain; charset=UTF-8"),
    ('multipart/mixed; boundary="a b"', 'multipart/mixed; boundary="a b"'),
])
def test_normalize_content_type(header, stored):
    assert normalize_content_type(header) == stored


@pytest.mark.parametrize("header", ["image", "image/", "/png", "a/b/c", "text/plain; x",
                                    "text/plain\r\nX-Evil: 1", "t\u00e9xt/plain", "a/" + "b" * 300])
def test_invalid_content_types(header):
    with pytest.raises(MatrixError) as e:
        normalize_content_type(header)
    assert (e.value.status, e.value.errcode) == (400, "M_INVALID_PARAM")


def test_serving_rules():
    assert serving_type("image/apng", "image/png") == ("image/apng", True)
    assert serving_type("image/png", "image/apng") == ("image/png", True)
    assert serving_type("image/gif", "image/png") == ("application/octet-stream", False)
    assert serving_type("image/webp", "") == ("application/octet-stream", False)
    assert serving_type("audio/ogg", "application/ogg") == ("audio/ogg", True)
    assert serving_type("application/javascript", "") == ("application/javascript", False)
    assert serving_type("", "image/png") == ("application/octet-stream", False)


def test_content_disposition():
    assert content_disposition(True, "") == "inline"
    assert content_disposition(False, "a b.pdf") == 'attachment; filename="a b.pdf"'
    assert content_disposition(True, "Grüße.png") == "inline; filename*=utf-8''Gr%C3%BC%C3%9Fe.png"
    assert content_disposition(True, 'x"; evil=1') == (
        "inline; filename*=utf-8''x%22%3B%20evil%3D1")
    assert check_filename("résumé.pdf") == "résumé.pdf"
    for bad in ("a\x00b", "a\rb", "\x7f", "x" * 256):
        with pytest.raises(MatrixError):
            check_filename(bad)


def test_media_ids_and_mxc_uris():
    ids = {new_media_id() for _ in range(100)}
    assert len(ids) == 100 and all(len(i) == MEDIA_ID_LENGTH and i.isalnum() for i in ids)
    assert parse_mxc("mxc://example.org:8448/abc_DEF-1") == ("example.org:8448", "abc_DEF-1")
    for bad in ("mxc://example.org", "mxc://example.org/", "mxc://ex ample/abc",
                "mxc://example.org/a/b", "mxc://example.org/%2e%2e", "http://example.org/a", 7):
        assert parse_mxc(bad) is None


@pytest.mark.parametrize(("src", "req", "method", "out"), [
    ((1000, 800), (96, 96), "crop", (96, 96)),
    ((1000, 800), (320, 240), "scale", (320, 256)),
    ((800, 1000), (320, 240), "scale", (320, 400)),
    ((4000, 1000), (800, 600), "scale", (2400, 600)),
    ((1000, 800), (1000, 10), "scale", None),  # would need upscaling: the original
    ((50, 40), (96, 96), "crop", None),
    ((97, 200), (96, 96), "crop", (96, 96)),
])
def test_output_size(src, req, method, out):
    result = output_size(*src, *req, method)
    assert result == out
    if result is not None:  # never smaller than requested, never larger than the source
        assert result[0] >= req[0] and result[1] >= req[1]
        assert result[0] <= src[0] and result[1] <= src[1]
