"""What content is and how it may be served: magic-byte sniffing, the declared Content-Type,
and the Content-Type / Content-Disposition of a download.

Spec: content repository "Serving inline content" (only the listed types inline, the rest as
attachment) and the `Content-Type` rules of GET /download ("exactly the same as the original
upload, or reasonably close": application/octet-stream "when the server determines the content
type is obviously wrong. For example, an encrypted file being claimed as image/png"). Images are
where a wrong claim matters (clients render them without asking), so a claimed inline image type
is honoured only when the leading bytes are that format.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from homeserver.protocol.errors import Errcode, MatrixError

OCTET_STREAM = "application/octet-stream"

# Spec: content repository "Serving inline content".
INLINE_TYPES = frozenset({
    "text/css", "text/plain", "text/csv", "application/json", "application/ld+json",
    "image/jpeg", "image/gif", "image/png", "image/apng", "image/webp", "image/avif",
    "video/mp4", "video/webm", "video/ogg", "video/quicktime",
    "audio/mp4", "audio/webm", "audio/aac", "audio/mpeg", "audio/ogg", "audio/wave",
    "audio/wav", "audio/x-wav", "audio/x-pn-wav", "audio/flac", "audio/x-flac",
})

# The container a claimed image type must actually be (APNG is a PNG with an animation chunk).
_IMAGE_FORMAT = {
    "image/jpeg": "jpeg", "image/png": "png", "image/apng": "png", "image/gif": "gif",
    "image/webp": "webp", "image/avif": "avif",
}

# RFC 7231 media-type token characters.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z\-]+"
_PARAM = rf"\s*;\s*{_TOKEN}=(?:{_TOKEN}|\"[^\"\\]*\")"
_MEDIA_TYPE = re.compile(rf"({_TOKEN})/({_TOKEN})((?:{_PARAM})*)\s*")
MAX_CONTENT_TYPE = 255
MAX_FILENAME = 255


def sniff(head: bytes) -> str:
    """The media type the leading bytes identify, or "" when no known signature matches."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        # An APNG has its acTL chunk before the first IDAT.
        idat = head.find(b"IDAT")
        actl = head.find(b"acTL")
        return "image/apng" if actl != -1 and (idat == -1 or actl < idat) else "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "image/avif"
        if brand == b"qt  ":
            return "video/quicktime"
        return "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    if head.startswith(b"OggS"):
        return "application/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"BM") and len(head) > 14:
        return "image/bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head.startswith(b"PK\x03\x04"):
        return "application/zip"
    return ""


def normalize_content_type(header: str | None) -> str:
    """The declared type as stored: "type/subtype" lower-cased, parameters kept as sent;
    "" when the client sent none (spec v1.12: defaults to application/octet-stream)."""
    if header is None or not header.strip():
        return ""
    match = _MEDIA_TYPE.fullmatch(header.strip())
    if match is None or len(header) > MAX_CONTENT_TYPE:
        raise MatrixError(400, Errcode.INVALID_PARAM, "Content-Type is not a valid media type")
    params = re.sub(r"\s*;\s*", "; ", match.group(3)).strip()
    base = f"{match.group(1).lower()}/{match.group(2).lower()}"
    return f"{base}{params}" if params else base


def base_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip()


def check_filename(name: str | None) -> str:
    """A file name from ?filename= or a download path: any text but control characters."""
    if name is None:
        return ""
    if len(name) > MAX_FILENAME or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise MatrixError(400, Errcode.INVALID_PARAM,
                          f"File name must be at most {MAX_FILENAME} characters, "
                          "without control characters")
    return name


def serving_type(declared: str, sniffed: str) -> tuple[str, bool]:
    """(Content-Type to send, whether it may be served inline)."""
    base = base_type(declared)
    if not base:
        return OCTET_STREAM, False
    if base in _IMAGE_FORMAT:
        if _IMAGE_FORMAT[base] == _IMAGE_FORMAT.get(sniffed):
            return base, True
        return OCTET_STREAM, False  # claimed an image, is not that image
    return declared, base in INLINE_TYPES


def content_disposition(inline: bool, filename: str) -> str:
    """Spec: GET /download "Content-Disposition": `inline` or `attachment`, with the upload's
    file name when it had one (RFC 6266; non-ASCII names as filename*=utf-8'')."""
    kind = "inline" if inline else "attachment"
    if not filename:
        return kind
    if all(32 <= ord(c) < 127 for c in filename) and '"' not in filename and "\\" not in filename:
        return f'{kind}; filename="{filename}"'
    return f"{kind}; filename*=utf-8''{quote(filename, safe='')}"
