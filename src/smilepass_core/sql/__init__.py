"""A relational store behind the repository protocols (the ``[sql]`` extra).

:class:`SqlStore` implements every repository protocol on SQLAlchemy 2 Core:
SQLite embedded (a file or ``sqlite://`` in memory), PostgreSQL through psycopg 3
(the ``[postgresql]`` extra). :func:`create_schema` makes the tables
(:mod:`smilepass_core.sql.schema`; docs/sql.md shows the DDL). Importing this
package without SQLAlchemy raises :class:`~smilepass_core.errors.MissingExtra`
naming the extra.
"""

from __future__ import annotations

from smilepass_core.errors import MissingExtra

try:
    import sqlalchemy  # noqa: F401
except ImportError as error:  # pragma: no cover - the test environment has the extra
    raise MissingExtra("sql", "sqlalchemy", wanted="smilepass_core.sql") from error

from smilepass_core.sql.schema import create_schema, metadata
from smilepass_core.sql.store import SqlStore

__all__ = ["SqlStore", "create_schema", "metadata"]
