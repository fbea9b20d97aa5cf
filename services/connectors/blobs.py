"""Attachment bytes stay off the bus: connectors store them here and events carry a reference."""

from __future__ import annotations

import hashlib
from pathlib import Path


class BlobStore:
    """Content-addressed files (SHA-256) under one directory; the same attachment twice is stored once."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        path = self.root / digest[:2] / digest
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        return f"blob:sha256:{digest}"

    def get(self, ref: str) -> bytes:
        digest = ref.removeprefix("blob:sha256:")
        return (self.root / digest[:2] / digest).read_bytes()

    def delete(self, ref: str) -> bool:
        """Forget an attachment (its customer was erased); True if it was here."""
        digest = ref.removeprefix("blob:sha256:")
        if not ref.startswith("blob:sha256:") or len(digest) != 64 or not digest.isalnum():
            return False
        path = self.root / digest[:2] / digest
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True
