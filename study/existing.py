"""Opening a study that already exists, for reading or for adding runs to it (`study.confirm`,
`reports.build`): unlike `study.run`, a missing storage file or study name is the user's mistake and
must not silently create an empty one.
"""

from __future__ import annotations

from pathlib import Path

from gans.config import UserError
from gans.urls import SQLITE, mask_url, sqlite_path


def check_store_exists(url: str, flag: str, what: str) -> None:
    """A user error naming `flag` when `url` points at a SQLite or journal file that does not exist."""
    if url.startswith(SQLITE):
        path = sqlite_path(url)
    elif "://" not in url:
        path = Path(url)
    else:
        return
    if not path.is_file():
        raise UserError(f"{flag} {url}: no {what} at {path}")


def load_existing_study(study_name: str, storage: str | None):
    """(the Optuna study `study_name`, its resolved storage URL); `storage` defaults to
    `sqlite:///optuna.db` as in `study.run`."""
    import optuna

    from study.engine import open_storage, quiet_libraries, resolve_storage

    quiet_libraries()
    url = resolve_storage(storage, 1)
    check_store_exists(url, "--storage", "Optuna storage")
    backend = open_storage(url)
    names = optuna.get_all_study_names(backend)
    if study_name not in names:
        held = ", ".join(sorted(names)) or "none"
        raise UserError(f"--study-name {study_name}: no such study in {mask_url(url)} (studies there: {held})")
    return optuna.load_study(study_name=study_name, storage=backend), url
