"""Routes of the content repository and the media admin API."""

from django.urls import re_path

from homeserver.api.media import admin, download, upload
from homeserver.api.routing import methods

MEDIA = r"^_matrix/media/(?:r0|v3)/"  # upload stays here in v1.11; the rest is deprecated
CLIENT = r"^_matrix/client/v1/media/"  # v1.11 authenticated media
ADMIN = r"^_synapse/admin/v1/"
REF = r"(?P<server_name>[^/]+)/(?P<media_id>[^/]+)"
NAME = r"/(?P<file_name>[^/]+)$"

urlpatterns = [
    re_path(MEDIA + r"upload$", methods(post=upload.upload)),
    re_path(r"^_matrix/media/v1/create$", methods(post=upload.create)),
    re_path(MEDIA + r"upload/" + REF + r"$", methods(put=upload.upload_to)),
    re_path(CLIENT + r"config$", methods(get=upload.config)),
    re_path(CLIENT + r"download/" + REF + r"/?$", methods(get=download.download)),
    re_path(CLIENT + r"download/" + REF + NAME, methods(get=download.download)),
    re_path(CLIENT + r"thumbnail/" + REF + r"$", methods(get=download.thumbnail)),
    re_path(MEDIA + r"config$", methods(get=upload.legacy_config)),
    re_path(MEDIA + r"download/" + REF + r"/?$", methods(get=download.legacy_download)),
    re_path(MEDIA + r"download/" + REF + NAME, methods(get=download.legacy_download)),
    re_path(MEDIA + r"thumbnail/" + REF + r"$", methods(get=download.legacy_thumbnail)),
    re_path(ADMIN + r"media/quarantine/" + REF + r"$", methods(post=admin.quarantine)),
    re_path(ADMIN + r"media/unquarantine/" + REF + r"$", methods(post=admin.unquarantine)),
    re_path(ADMIN + r"media/" + REF + r"$", methods(delete=admin.delete_media)),
    re_path(ADMIN + r"users/(?P<user_id>[^/]+)/media$",
            methods(get=admin.list_user_media, delete=admin.delete_user_media)),
    re_path(ADMIN + r"statistics/users/media$", methods(get=admin.usage)),
]
