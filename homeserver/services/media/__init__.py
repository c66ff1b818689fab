"""The content repository (spec: client-server API "Content repository"): upload, download,
thumbnails, admin quarantine/deletion, and removal of an erased account's media."""
