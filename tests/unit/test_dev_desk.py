"""The demo desk's files: a bootstrap key generated once and kept (0600), and --reset removing the desk."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from services.dev_desk import KEY_FILE, NotEmbedded, bootstrap_key, dev_desk, reset
from shared.settings import Settings


def settings(tmp_path: Path, **overrides: str) -> Settings:
    base = {"database_url": f"sqlite+aiosqlite:///{tmp_path}/desk/switchboard.db", "blob_dir": f"{tmp_path}/desk/blobs"}
    return Settings(_env_file=None, **{**base, **overrides})  # type: ignore[arg-type]


def test_the_key_is_generated_once_kept_beside_the_database_readable_by_its_owner_only(tmp_path: Path) -> None:
    desk = dev_desk(settings(tmp_path))
    first = bootstrap_key(desk)
    assert desk.key_file == tmp_path / "desk" / KEY_FILE
    assert stat.S_IMODE(desk.key_file.stat().st_mode) == 0o600
    assert first.startswith("sb_") and bootstrap_key(desk) == first == bootstrap_key(dev_desk(settings(tmp_path)))


def test_a_key_file_others_can_read_is_tightened_and_an_empty_one_replaced(tmp_path: Path) -> None:
    desk = dev_desk(settings(tmp_path))
    key = bootstrap_key(desk)
    desk.key_file.chmod(0o644)
    assert bootstrap_key(desk) == key and stat.S_IMODE(desk.key_file.stat().st_mode) == 0o600
    desk.key_file.write_text("\n")
    fresh = bootstrap_key(desk)
    assert fresh.startswith("sb_") and fresh != key


def test_the_default_desk_lives_in_dot_local() -> None:
    defaults = {name: Settings.model_fields[name].default for name in ("database_url", "blob_dir")}
    desk = dev_desk(Settings(_env_file=None, **defaults))  # `make test` exports SWITCHBOARD_DATABASE_URL
    assert desk.key_file == Path(".local") / KEY_FILE and desk.database == Path(".local/switchboard.db")


def test_reset_removes_the_database_its_journals_the_key_and_the_attachments(tmp_path: Path) -> None:
    s = settings(tmp_path)
    desk = dev_desk(s)
    bootstrap_key(desk)
    assert desk.database is not None
    for suffix in ("", "-wal", "-shm"):
        desk.database.with_name(desk.database.name + suffix).write_bytes(b"x")
    (desk.blobs / "ab").mkdir(parents=True)
    (desk.blobs / "ab" / "blob").write_bytes(b"x")
    other = tmp_path / "desk" / "keep.txt"
    other.write_text("not the desk's")

    removed = reset(desk, s)

    assert len(removed) == 5 and not desk.key_file.exists() and not desk.blobs.exists()
    assert not list(desk.database.parent.glob("switchboard.db*")) and other.exists()
    assert reset(desk, s) == []  # nothing left: a second reset is a no-op


def test_reset_leaves_attachments_kept_outside_the_desk(tmp_path: Path) -> None:
    s = settings(tmp_path, blob_dir=str(tmp_path / "elsewhere"))
    (tmp_path / "elsewhere").mkdir()
    reset(dev_desk(s), s)
    assert (tmp_path / "elsewhere").is_dir()


def test_reset_refuses_a_database_server() -> None:
    s = Settings(_env_file=None, database_url="postgresql+asyncpg://u:p@db.example/switchboard")
    with pytest.raises(NotEmbedded):
        reset(dev_desk(s), s)
