"""Content repository endpoints (client-server API "Content repository") and the media admin
API. Routes: urls_media.py."""
