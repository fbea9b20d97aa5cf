"""The files of the demo desk `switchboard dev` runs: its embedded database, its bootstrap admin key and its
attachments, all under one directory (``.local/`` by default, the embedded database's own directory when
``SWITCHBOARD_DATABASE_URL`` moves it).

The key is generated once and kept there, readable by its owner only (0600), so a restart keeps the key a
developer exported and the console remembers, and no restart adds another valid admin key. ``--reset``
removes the desk's files: the next start seeds a fresh demo desk with a new key."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from services.router.adapters.db.api_keys import generate_key
from shared.settings import Settings

KEY_FILE = "bootstrap-key"
DEFAULT_DIR = Path(".local")


class NotEmbedded(Exception):
    """``--reset`` was asked of a desk whose database is not the embedded SQLite file: that one is the
    operator's to drop, never ours."""


@dataclass(frozen=True, slots=True)
class DevDesk:
    directory: Path
    database: Path | None  # None: not an SQLite file (in memory, or a server)
    blobs: Path

    @property
    def key_file(self) -> Path:
        return self.directory / KEY_FILE


def dev_desk(settings: Settings) -> DevDesk:
    url = make_url(settings.database_url)
    database = None
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        database = Path(url.database)
    return DevDesk(database.parent if database else DEFAULT_DIR, database, Path(settings.blob_dir))


def bootstrap_key(desk: DevDesk) -> str:
    """The desk's admin key: the one kept in its key file, or a new one written there (0600) if none is."""
    path = desk.key_file
    if path.exists():
        key = path.read_text().strip()
        if key:
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)  # someone loosened it: a key readable by others is not the owner's alone
            return key
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another `switchboard dev` of this desk wrote it first: use theirs
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    return key


def reset(desk: DevDesk, settings: Settings) -> list[Path]:
    """Remove the desk's database (with SQLite's journal files), key and attachments; returns what went.
    Attachments go only when they are kept inside the desk's directory."""
    if desk.database is None and make_url(settings.database_url).get_backend_name() != "sqlite":
        raise NotEmbedded(
            "--reset starts the embedded desk afresh, but SWITCHBOARD_DATABASE_URL names a database server; "
            "drop or recreate that database yourself"
        )
    removed: list[Path] = []
    files = [desk.key_file]
    if desk.database is not None:
        files += [desk.database.with_name(desk.database.name + suffix) for suffix in ("", "-wal", "-shm", "-journal")]
    for path in files:
        if path.exists():
            path.unlink()
            removed.append(path)
    if desk.blobs.is_dir() and desk.blobs.resolve().is_relative_to(desk.directory.resolve()):
        shutil.rmtree(desk.blobs)
        removed.append(desk.blobs)
    return removed
