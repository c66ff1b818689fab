"""Media tests: the accounts tests' fixtures (test settings, thread-connection cleanup, the JSON
`api` client), a media store of its own per test, and helpers to make images, upload, and
count what is stored (rows and files), so every refusal can be shown to leave nothing."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from PIL import Image

from homeserver.models import LocalMedia, MediaThumbnail
from tests.accounts.conftest import (  # noqa: F401 - fixtures are registered by import
    accounts_settings,
    amake_user,
    api,
    close_thread_connections,
    configure,
    make_user,
    stream_counter_row,
)

V1 = "/_matrix/client/v1/media"
LEGACY = "/_matrix/media/v3"


@pytest.fixture(autouse=True)
def media_store(settings, tmp_path) -> Path:
    root = tmp_path / "media"
    configure(settings, media_path=str(root))
    return root


def server_name() -> str:
    return django_settings.PALISADE.server_name


def image_bytes(size: tuple[int, int] = (1000, 800), fmt: str = "PNG",
                mode: str = "RGB", **save: Any) -> bytes:
    img = Image.new(mode, size, (200, 30, 30) if mode == "RGB" else None)
    for x in range(0, size[0], 50):  # some structure, so resizing has work to do
        for y in range(size[1]):
            img.putpixel((x, y), (0, 0, 255) if mode == "RGB" else 1)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()


def animated_gif(frames: int = 4, size: tuple[int, int] = (200, 160)) -> bytes:
    images = [Image.new("RGB", size, (i * 60 % 256, 100, 200)) for i in range(frames)]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=80,
                   loop=0)
    return buf.getvalue()


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def counts(root: Path) -> tuple[int, int, int]:
    """(media rows, thumbnail rows, files in the store including staging)."""
    return LocalMedia.objects.count(), MediaThumbnail.objects.count(), len(files_under(root))


acounts = sync_to_async(counts)


async def session(client, localpart: str | None = None, *,
                  admin: bool = False) -> tuple[str, str]:
    user = await sync_to_async(make_user)(localpart, admin=admin)
    return user, (await client.login(user))["access_token"]


async def upload(client, token: str | None, data: bytes, content_type: str | None = "image/png",
                 filename: str | None = None, path: str = f"{LEGACY}/upload", method="post"):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if filename is not None:
        from urllib.parse import quote

        path += f"?filename={quote(filename)}"
    fn = getattr(client.client, method)
    if content_type is None:
        return await fn(path, data=data, content_type="", headers=headers)
    return await fn(path, data=data, content_type=content_type, headers=headers)


async def get(client, path: str, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await client.client.get(path, headers=headers)


async def body_of(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join([chunk async for chunk in response.streaming_content])
    return response.content


def media_id_of(content_uri: str) -> str:
    assert content_uri.startswith(f"mxc://{server_name()}/")
    return content_uri.rsplit("/", 1)[1]
