"""An embedded test desk starts on a copy of a database migrated once per test process. Migrating a new SQLite
file runs every migration's table rebuilds (about 0.4 s); a copy takes milliseconds, and the suite starts
hundreds of embedded desks. The router still runs its own migration check at start-up, which finds the copy at
head; what a fresh start migrates is tested on its own (`make run`, the fresh clone, the migration tests)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine

from services.router.adapters.db.migrate import alembic_config

_template: Path | None = None


def migrated_copy(target: Path) -> None:
    """A migrated, empty store at ``target``, unless a store is there already (a test restarting its desk)."""
    if not target.exists():
        shutil.copyfile(_migrated_template(), target)


def _migrated_template() -> Path:
    global _template
    if _template is None:
        folder = Path(tempfile.mkdtemp(prefix="switchboard-template-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        path = folder / "switchboard.db"
        engine = create_engine(f"sqlite:///{path}")
        try:
            with engine.begin() as conn:
                command.upgrade(alembic_config(conn), "head")
        finally:
            engine.dispose()
        _template = path
    return _template
