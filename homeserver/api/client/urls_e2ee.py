"""Routes for end-to-end encryption under /_matrix/client/{r0,v3}/: keys, cross-signing,
send-to-device and key backup. Megolm session IDs are Base64 and may hold "/" once
URL-decoded, so session and transaction IDs are matched greedily (they come last)."""

from django.urls import re_path

from homeserver.api.client import e2ee_backup, e2ee_keys, e2ee_to_device
from homeserver.api.routing import methods

P = r"^_matrix/client/(?:r0|v3)/"
KEYS = methods(get=e2ee_backup.get_keys, put=e2ee_backup.put_keys,
               delete=e2ee_backup.delete_keys)

urlpatterns = [
    re_path(P + r"keys/upload$", methods(post=e2ee_keys.upload_keys)),
    re_path(P + r"keys/query$", methods(post=e2ee_keys.query_keys)),
    re_path(P + r"keys/claim$", methods(post=e2ee_keys.claim_keys)),
    re_path(P + r"keys/changes$", methods(get=e2ee_keys.key_changes)),
    re_path(P + r"keys/device_signing/upload$",
            methods(post=e2ee_keys.upload_cross_signing_keys)),
    re_path(P + r"keys/signatures/upload$", methods(post=e2ee_keys.upload_signatures)),
    re_path(P + r"sendToDevice/(?P<event_type>[^/]+)/(?P<txn_id>.+)$",
            methods(put=e2ee_to_device.send_to_device)),
    re_path(P + r"room_keys/version$",
            methods(post=e2ee_backup.create_version, get=e2ee_backup.get_version)),
    re_path(P + r"room_keys/version/(?P<version>[^/]+)$",
            methods(get=e2ee_backup.get_version, put=e2ee_backup.put_version,
                    delete=e2ee_backup.delete_version)),
    re_path(P + r"room_keys/keys$", KEYS),
    re_path(P + r"room_keys/keys/(?P<room_id>[^/]+)$", KEYS),
    re_path(P + r"room_keys/keys/(?P<room_id>[^/]+)/(?P<session_id>.+)$", KEYS),
]
