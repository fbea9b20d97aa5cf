"""Alembic environment. Migrations run on a connection handed in by services.router.adapters.db.migrate
(the cookbook's "sharing a connection" recipe), so they work from inside a running event loop."""

from alembic import context

from services.router.adapters.db.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTER TABLE needs batch mode
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
