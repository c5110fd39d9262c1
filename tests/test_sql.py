"""The SQL store (``smilepass_core.sql``): the whole contract kit on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path
from collections.abc import Iterator
from typing import ClassVar

import postgres_server
import pytest
import sqlalchemy as sa

from smilepass_core.sql import SqlStore, create_schema, metadata
from smilepass_core.sql.schema import ddl
from smilepass_core.testing import contracts


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[sa.Engine]:
    """An engine on a PostgreSQL server for the run, its schema made; skips with the
    reason when there is no server binary, except under CI (then it fails)."""
    url = postgres_server.server_url()
    if url is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs PostgreSQL: {postgres_server.REASON}")
        pytest.skip(postgres_server.REASON)
    engine = sa.create_engine(url)
    metadata.drop_all(engine)
    create_schema(engine)
    yield engine
    engine.dispose()


def empty(engine: sa.Engine) -> SqlStore:
    """A store on ``engine`` with every table emptied."""
    names = ", ".join(t.name for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {names}")
    return SqlStore(engine)


class TestSqliteStore(contracts.StoreContract):
    """SqlStore on an in-memory SQLite database honours the whole contract."""

    def make_store(self) -> SqlStore:
        return SqlStore.connect("sqlite://")


class TestPostgresStore(contracts.StoreContract):
    """SqlStore on PostgreSQL honours the whole contract."""

    engine: ClassVar[sa.Engine]

    @pytest.fixture(autouse=True)
    def _engine(self, postgres_engine: sa.Engine) -> None:
        type(self).engine = postgres_engine

    def make_store(self) -> SqlStore:
        return empty(self.engine)


class TestTheDocsPage:
    """docs/sql.md cannot drift from the schema the code makes."""

    def test_the_ddl_block_is_what_create_schema_runs(self) -> None:
        """The page's block between the ddl markers is ``ddl()``, fenced."""
        page = (Path(__file__).resolve().parent.parent / "docs" / "sql.md").read_text()
        block = page.split("<!-- ddl:start -->\n")[1].split("<!-- ddl:end -->")[0]
        assert block == f"```sql\n{ddl()}```\n"
        assert "CREATE TABLE members_history" in block
        assert (
            "CHECK (to_status IN ('pending', 'active', 'failed', 'suspended', 'cancelled'))"
            in block
        )
