"""The content type of every kind of file under cypher/static/, for Flask's static route.

Flask asks Python's `mimetypes`, which reads the system's /etc/mime.types when there is one: a
module served as anything but JavaScript is refused by the browser (the responses say nosniff),
so the types are not left to what the machine happens to have. deploy/nginx/cypher.conf lists the
same types for nginx.
"""

from __future__ import annotations

import mimetypes

STATIC_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".wasm": "application/wasm",
    ".map": "application/json",
    ".json": "application/json",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain",
}


def register_static_types() -> None:
    for extension, content_type in STATIC_TYPES.items():
        mimetypes.add_type(content_type, extension)
