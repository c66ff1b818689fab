"""The content repository: media uploaded to this server and the thumbnails made of it.

The bytes live in the media backend (homeserver/storage/media_files.py) under `file_key`; a row
exists exactly when its content is stored (or, for an async upload, is still awaited).
"""

from django.db import models


class LocalMedia(models.Model):
    """One mxc://<this server>/<media_id>. `upload_ts` is NULL while an async upload (POST
    /_matrix/media/v1/create) waits for its content; such a row expires at `unused_expires_ts`."""

    media_id = models.CharField(max_length=255, primary_key=True)
    user_id = models.CharField(max_length=255)  # the uploader (or creator of a pending upload)
    created_ts = models.BigIntegerField()
    upload_ts = models.BigIntegerField(null=True)
    unused_expires_ts = models.BigIntegerField(null=True)
    # As declared by the client (Content-Type header), normalised; "" = not given.
    content_type = models.CharField(max_length=255, default="")
    # What the leading bytes say the content is ("" = no known signature).
    sniffed_type = models.CharField(max_length=64, default="")
    upload_name = models.CharField(max_length=255, default="")  # ?filename=, "" = none
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, default="")
    file_key = models.CharField(max_length=255, default="")
    quarantined_by = models.CharField(max_length=255, default="")
    quarantined_ts = models.BigIntegerField(null=True)

    class Meta:
        db_table = "local_media"
        indexes = [models.Index(fields=["user_id", "created_ts"], name="local_media_user")]


class MediaThumbnail(models.Model):
    """A thumbnail of a LocalMedia, cached per requested (width, height, method, animated)."""

    media = models.ForeignKey(LocalMedia, on_delete=models.CASCADE, related_name="thumbnails")
    width = models.IntegerField()
    height = models.IntegerField()
    method = models.CharField(max_length=8)
    animated = models.BooleanField(default=False)
    content_type = models.CharField(max_length=64)
    size = models.BigIntegerField()
    file_key = models.CharField(max_length=255)
    created_ts = models.BigIntegerField()

    class Meta:
        db_table = "media_thumbnails"
        constraints = [
            models.UniqueConstraint(
                fields=["media", "width", "height", "method", "animated"],
                name="media_thumbnail_uniq",
            )
        ]


class RemoteMedia(models.Model):
    """A cached copy of another server's mxc://<server_name>/<media_id>, fetched over
    federation for a local client (services/media/remote.py). A row exists exactly when its
    bytes are stored under `file_key`."""

    server_name = models.CharField(max_length=255)
    media_id = models.CharField(max_length=255)
    fetched_ts = models.BigIntegerField()
    # As the origin declared it (normalised; "" = none), and what the bytes say.
    content_type = models.CharField(max_length=255, default="")
    sniffed_type = models.CharField(max_length=64, default="")
    upload_name = models.CharField(max_length=255, default="")  # origin's Content-Disposition
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    file_key = models.CharField(max_length=255)
    quarantined_by = models.CharField(max_length=255, default="")
    quarantined_ts = models.BigIntegerField(null=True)

    class Meta:
        db_table = "remote_media_cache"
        constraints = [
            models.UniqueConstraint(fields=["server_name", "media_id"],
                                    name="remote_media_uniq"),
        ]


class RemoteMediaThumbnail(models.Model):
    """A thumbnail made here of a cached remote media, per (width, height, method, animated)."""

    media = models.ForeignKey(RemoteMedia, on_delete=models.CASCADE, related_name="thumbnails")
    width = models.IntegerField()
    height = models.IntegerField()
    method = models.CharField(max_length=8)
    animated = models.BooleanField(default=False)
    content_type = models.CharField(max_length=64)
    size = models.BigIntegerField()
    file_key = models.CharField(max_length=255)
    created_ts = models.BigIntegerField()

    class Meta:
        db_table = "remote_media_thumbnails"
        constraints = [
            models.UniqueConstraint(
                fields=["media", "width", "height", "method", "animated"],
                name="remote_media_thumbnail_uniq",
            )
        ]
