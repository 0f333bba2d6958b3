"""What a browser accepts for each kind of file under cypher/static/, when the response says
nosniff: a module script of any type but JavaScript is refused, and so is a stylesheet that is
not text/css. A new kind of file fails the tests until it is listed here."""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "cypher" / "static"
JAVASCRIPT = {"text/javascript", "application/javascript"}
BROWSER_ACCEPTS = {
    ".js": JAVASCRIPT,
    ".mjs": JAVASCRIPT,
    ".css": {"text/css"},
    ".svg": {"image/svg+xml"},
    ".woff": {"font/woff"},
    ".woff2": {"font/woff2"},
    ".wasm": {"application/wasm"},
    ".map": {"application/json"},
    ".json": {"application/json"},
    ".png": {"image/png"},
    ".ico": {"image/x-icon", "image/vnd.microsoft.icon"},
    ".txt": {"text/plain"},
}


def static_files() -> list[Path]:
    """Every file a page can ask for (not make's hidden marker files)."""
    return sorted(path for path in STATIC.rglob("*") if path.is_file() and not path.name.startswith("."))


def acceptable_type(path: Path, content_type: str) -> bool:
    essence = content_type.split(";")[0].strip().lower()
    return essence in BROWSER_ACCEPTS.get(path.suffix, set())
