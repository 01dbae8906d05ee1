"""The on-disk cache: what gan-study computes once and reuses across runs, trials and studies
(trained domain classifiers, real-image features and statistics). Never generated images.

Writes are atomic (temporary file beside the target, then `os.replace`), so parallel worker
processes see either no file or a whole one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, IO

from gans.data import BUILTIN


def cache_dir() -> Path:
    """`$GAN_STUDY_CACHE`, else `~/.cache/gan-study`; created on first use."""
    path = Path(os.environ.get("GAN_STUDY_CACHE") or Path.home() / ".cache" / "gan-study")
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call `write(file)` on a temporary file beside `path`, then rename it to `path`. A Ctrl-C or
    SIGTERM that cuts the write short is raised as such, even when the writer's clean-up then fails
    on the half-written file (torch.save's zip writer does): the stop stays a stop, and `path` keeps
    its previous content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        interrupt = _interrupt_behind(e)
        if interrupt is not None and interrupt is not e:
            raise interrupt from None
        raise
    return path


def _interrupt_behind(e: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt `e` is, or happened while handling, if any."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return e
        seen.add(id(e))
        e = e.__context__
    return None


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write(path, lambda f: f.write(json.dumps(obj, indent=1).encode()))


def read_json(path: str | os.PathLike) -> Any | None:
    """The JSON in `path`, or None when it is missing or unreadable (then it is recomputed)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def data_key(data: str) -> str:
    """A file-name-safe identity of a data set: the built-in name, or for a folder its name plus a
    fingerprint of its resolved path and of its listing (relative paths, sizes, modification times),
    so that what is cached for a folder derives from that folder's files only and editing them
    invalidates it. Callers add the split, the limit and the image size (`gans.metrics.RealSet`)."""
    import hashlib
    import re

    if data in BUILTIN:
        return data
    root = Path(data).resolve()
    h = hashlib.sha1(f"{root}\n".encode())
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            try:
                st = p.stat()
            except OSError:
                continue
            h.update(f"{p.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", root.name) or "folder"
    return f"{slug}-{h.hexdigest()[:10]}"
