"""What every SQL repository of a unit of work holds."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection


class SqlRepository:
    """A repository on the connection of one transaction; ``dialect`` ("postgresql" or "sqlite") picks the
    statements that differ between them."""

    def __init__(self, conn: AsyncConnection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect
