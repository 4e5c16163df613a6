"""Alembic environment: runs on the connection handed over by `leadcard.storage.db.upgrade`."""

import sqlalchemy as sa
from alembic import context

config = context.config
connection = config.attributes.get("connection")

if connection is None:
    engine = sa.create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        # render_as_batch: SQLite cannot ALTER most things; batch mode copies the table,
        # so one history serves both databases (alembic.sqlalchemy.org/en/latest/batch.html).
        context.configure(connection=conn, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
