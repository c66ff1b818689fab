"""The write path underneath: staging refuses oversize and truncated bodies without leaving a
file, keys cannot escape the store, and a transaction that fails after the file was moved into
place — even at COMMIT — takes the file back out."""

from __future__ import annotations

import io

import pytest
from django.db import IntegrityError, transaction

from homeserver.models import LocalMedia, MediaThumbnail
from homeserver.protocol.errors import MatrixError
from homeserver.services.media import upload as media_upload
from homeserver.storage.media_files import FilesystemBackend
from homeserver.storage.media_staging import discard, stage_bytes, stage_stream
from tests.accounts.conftest import make_user
from tests.media.conftest import counts, files_under

pytestmark = pytest.mark.django_db(transaction=True)


def test_stage_refuses_oversize_and_short_bodies_leaving_nothing(media_store):
    with pytest.raises(MatrixError) as e:
        stage_stream(io.BytesIO(b"x" * 11).read, max_size=10)
    assert (e.value.status, e.value.errcode) == (413, "M_TOO_LARGE")
    with pytest.raises(MatrixError) as e:
        stage_stream(io.BytesIO(b"x" * 5).read, max_size=10, expected_size=8)
    assert (e.value.status, e.value.errcode) == (400, "M_INVALID_PARAM")
    assert files_under(media_store) == []

    staged = stage_stream(io.BytesIO(b"abc").read, max_size=10, expected_size=3)
    assert (staged.size, staged.head, staged.path.read_bytes()) == (3, b"abc", b"abc")
    assert staged.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    discard(staged)
    assert files_under(media_store) == []


def test_keys_cannot_leave_the_store(media_store):
    backend = FilesystemBackend(media_store)
    for key in ("../etc/passwd", "/abs", "a/../../b", "a//b", "a/./b", "", "a\\b", "a/b\x00"):
        with pytest.raises(ValueError):
            backend.path_of(key)
    staged = stage_bytes(b"data")
    backend.put("local/ab/cd/abcdef", staged)
    assert not staged.path.exists()  # moved, not copied
    with backend.open("local/ab/cd/abcdef") as f:
        assert f.read() == b"data"
    backend.delete("local/ab/cd/abcdef")
    backend.delete("local/ab/cd/abcdef")  # absent is fine
    with pytest.raises(FileNotFoundError):
        backend.open("local/ab/cd/abcdef")


def test_a_failed_commit_after_the_move_leaves_no_file(media_store):
    """The FK of a thumbnail row is checked at COMMIT (deferred on SQLite and PostgreSQL): the
    transaction fails after the file was already renamed into place."""
    staged = stage_bytes(b"content")
    key = "local/zz/zz/zzzz"

    def write_rows():
        LocalMedia.objects.create(media_id="zzzz", user_id="@a:b", created_ts=1, upload_ts=1)
        MediaThumbnail.objects.create(media_id="no-such-media", width=1, height=1,
                                      method="crop", content_type="image/png", size=1,
                                      file_key="x", created_ts=1)

    with pytest.raises(IntegrityError):
        media_upload._store(key, staged, write_rows)
    discard(staged)
    assert counts(media_store) == (0, 0, 0)


def test_do_upload_refuses_to_run_inside_a_callers_transaction(media_store):
    """Its file could not roll back with an outer transaction, so it does not join one."""
    user = make_user()
    staged = stage_bytes(b"content")
    with pytest.raises(RuntimeError, match=r"outside transaction\.atomic"), transaction.atomic():
        media_upload.do_upload(user, staged, "text/plain", "")
    discard(staged)
    assert counts(media_store) == (0, 0, 0)
    staged = stage_bytes(b"content")
    uri = media_upload.do_upload(user, staged, "text/plain", "")
    assert uri.startswith("mxc://") and counts(media_store) == (1, 0, 1)
