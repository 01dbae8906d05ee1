"""Store URLs and the names derived from them, for `study`, `reports` and `tracking` alike: passwords
masked in URLs and messages (what the tool prints, tags and reports), SQLite URLs resolved to their
files, and names made safe as path components."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

SQLITE = "sqlite:///"


def sqlite_path(url: str) -> Path | None:
    """The database file of a `sqlite:///PATH` URL (relative or absolute), else None."""
    return Path(unquote(url[len(SQLITE):])) if url.startswith(SQLITE) else None


def absolute_sqlite(url: str) -> str:
    """`url` with a relative SQLite path made absolute (processes started elsewhere and printed
    commands then name the same file); any other URL unchanged."""
    path = sqlite_path(url)
    return SQLITE + str(path.resolve()) if path is not None and not path.is_absolute() else url


def _password(url: str | None) -> str | None:
    try:
        return urlsplit(url).password if url else None
    except ValueError:  # not a URL (a journal file path with odd characters)
        return None


def mask_url(url: str) -> str:
    """`url` with the password in its user-info replaced by `***` (postgresql://gan:***@host/db):
    what the tool prints, tags and reports, so that a password never leaves the command line."""
    if _password(url) is None:
        return url
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def mask_text(text: str, *urls: str | None) -> str:
    """`text` with the passwords of `urls` (as written and URL-decoded) replaced by `***`; for
    messages from drivers that may quote a connection string."""
    for url in urls:
        password = _password(url)
        if password:
            text = text.replace(url, mask_url(url))
            for secret in {password, unquote(password)}:
                text = text.replace(secret, "***")
    return text


def safe_name(name: str) -> str:
    """`name` (a study or experiment name) as one harmless path component: names like `../x` or
    `a/b` must not lead files out of the folder they belong in."""
    return re.sub(r"[^\w.-]", "_", name).lstrip(".") or "_"
