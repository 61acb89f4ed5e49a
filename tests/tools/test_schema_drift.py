"""``tenantwatch audit --compare``: schema drift between two real PostgreSQL databases of the session's server."""

from __future__ import annotations

import io
import json
import re
import socket
import uuid
from collections.abc import Callable, Iterator

import pytest

from tenantwatch.cli.audit_compare import run_compare
from tenantwatch.tools.schema_drift import SchemaObject, Snapshot, diff, snapshot

pytestmark = pytest.mark.postgres

BASE = """
CREATE TABLE organizations (id uuid PRIMARY KEY, name text NOT NULL);
CREATE TABLE objectives (
    id serial PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id),
    title text NOT NULL,
    status text DEFAULT 'open' CHECK (status IN ('open', 'done')),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX objectives_title_idx ON objectives (title);
ALTER TABLE objectives ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON objectives
    USING (organization_id = current_setting('app.tenant_id')::uuid);
"""

POLICY_LINE = (
    "- policy tenant_isolation ON objectives: AS PERMISSIVE FOR ALL TO public "
    "USING ((organization_id = (current_setting('app.tenant_id'::text))::uuid))"
)

Run = Callable[[str], None]


@pytest.fixture(scope="module")
def _two_databases(postgres_url: str) -> Iterator[tuple[dict[str, object], list[str]]]:
    """Two databases on the session's server, created once for the module (CREATE DATABASE takes a second)."""
    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(postgres_url)
    names = [f"drift_{uuid.uuid4().hex[:8]}_{side}" for side in ("a", "b")]
    admin: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "user": server.username,
        "dbname": server.database,
    }
    with psycopg.connect(**admin, autocommit=True) as conn:  # type: ignore[arg-type]
        for name in names:
            conn.execute(f"CREATE DATABASE {name}")
    yield admin, names
    with psycopg.connect(**admin, autocommit=True) as conn:  # type: ignore[arg-type]
        for name in names:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


_RESET = """
DO $$
DECLARE s text;
BEGIN
    FOR s IN SELECT nspname FROM pg_namespace
             WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%'
    LOOP
        EXECUTE format('DROP SCHEMA %I CASCADE', s);
    END LOOP;
END $$;
CREATE SCHEMA public;
"""


@pytest.fixture
def databases(postgres_url: str, _two_databases: tuple[dict[str, object], list[str]]) -> tuple[str, str, Run, Run]:
    """The module's two databases, emptied (every schema dropped, an empty ``public``): (url A, url B, run SQL in
    A, run SQL in B)."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin, names = _two_databases

    def runner(name: str) -> Run:
        def run(sql: str) -> None:
            with psycopg.connect(**{**admin, "dbname": name}, autocommit=True) as conn:  # type: ignore[arg-type]
                conn.execute(sql)

        return run

    run_a, run_b = runner(names[0]), runner(names[1])
    run_a(_RESET)
    run_b(_RESET)
    server = make_url(postgres_url)
    urls = [server.set(database=name).render_as_string(hide_password=False) for name in names]
    return urls[0], urls[1], run_a, run_b


def compare(url_a: str, url_b: str, *, as_json: bool = False, schemas: list[str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_compare(url_a, url_b, as_json=as_json, schemas=schemas, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def diff_lines(text: str) -> list[str]:
    """The ``+``/``-``/``~`` lines of a rendered diff (not the ``---``/``+++`` header)."""
    return [line.strip() for line in text.splitlines() if re.match(r"\s*[+~-] ", line)]


def test_identical_schemas_are_no_drift_with_equal_fingerprints(databases: tuple[str, str, Run, Run]) -> None:
    url_a, url_b, run_a, run_b = databases
    run_a(BASE)
    run_b(BASE)
    code, out, err = compare(url_a, url_b)
    assert (code, err) == (0, "")
    assert diff_lines(out) == []
    fingerprints = re.findall(r"sha256:[0-9a-f]{64}", out)
    assert len(set(fingerprints)) == 1, out
    assert "no drift" in out and "2 tables" in out
    # An async driver URL (the application's own) is read through a sync driver.
    async_a = url_a.replace("postgresql+psycopg://", "postgresql+asyncpg://")
    assert compare(async_a, url_b)[0] == 0
    # psycopg2 reads the same catalog the same way.
    assert compare(url_a, url_b.replace("postgresql+psycopg://", "postgresql+psycopg2://"))[0] == 0


def test_history_noise_is_not_drift(databases: tuple[str, str, Run, Run]) -> None:
    """B got the same schema another way: table created under an old name and renamed (so its primary key, foreign
    key, check constraint and sequence keep generated names of the old table), columns in another physical order, a
    dropped column, and an index renamed. None of that is drift."""
    url_a, url_b, run_a, run_b = databases
    run_a(BASE)
    run_b(
        """
        CREATE TABLE organizations (name text NOT NULL, id uuid PRIMARY KEY);
        CREATE TABLE goals (
            id serial PRIMARY KEY,
            scratch int,
            title text NOT NULL,
            organization_id uuid NOT NULL REFERENCES organizations (id),
            created_at timestamptz NOT NULL DEFAULT now()
        );
        ALTER TABLE goals ADD COLUMN status text DEFAULT 'open' CHECK (status IN ('open', 'done'));
        ALTER TABLE goals DROP COLUMN scratch;
        CREATE INDEX goals_title_index ON goals (title);
        ALTER TABLE goals RENAME TO objectives;
        ALTER TABLE objectives ENABLE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON objectives
            USING (organization_id = current_setting('app.tenant_id')::uuid);
        """
    )
    a, b = snapshot(url_a), snapshot(url_b)
    drift = diff(a, b)
    assert drift.differences == ()
    assert a.fingerprint == b.fingerprint
    assert compare(url_a, url_b)[0] == 0


def test_one_index_and_one_policy_are_exactly_two_lines(databases: tuple[str, str, Run, Run]) -> None:
    url_a, url_b, run_a, run_b = databases
    run_a(BASE)
    run_b(BASE + "CREATE INDEX objectives_org_idx ON objectives (organization_id);"
          "DROP POLICY tenant_isolation ON objectives;")  # fmt: skip
    code, out, err = compare(url_a, url_b)
    assert (code, err) == (1, "")
    assert diff_lines(out) == [
        "+ index objectives_org_idx: CREATE INDEX ON objectives USING btree (organization_id)",
        POLICY_LINE,
    ]
    assert "table objectives" in out.splitlines()
    header_a, header_b = out.splitlines()[:2]
    assert header_a.startswith(f"--- A {url_a} ") and header_b.startswith(f"+++ B {url_b} ")
    assert re.search(r"sha256:[0-9a-f]{64}$", header_a) and re.search(r"sha256:[0-9a-f]{64}$", header_b)
    assert header_a.split()[-1] != header_b.split()[-1]


def test_column_type_nullability_force_and_constraint(databases: tuple[str, str, Run, Run]) -> None:
    url_a, url_b, run_a, run_b = databases
    run_a(BASE)
    run_b(
        BASE
        + """
        ALTER TABLE objectives ALTER COLUMN title TYPE varchar(200);
        ALTER TABLE objectives ALTER COLUMN status SET NOT NULL;
        ALTER TABLE objectives FORCE ROW LEVEL SECURITY;
        ALTER TABLE objectives ADD CONSTRAINT objectives_org_title_key UNIQUE (organization_id, title);
        """
    )
    code, out, _ = compare(url_a, url_b)
    assert code == 1
    assert diff_lines(out) == [
        "~ row level security ON objectives: forced off → on",
        "~ column objectives.status: NULL → NOT NULL",
        "~ column objectives.title: text → character varying(200)",
        "+ constraint objectives_org_title_key ON objectives: UNIQUE (organization_id, title)",
    ]


def test_changed_definitions_under_the_same_name(databases: tuple[str, str, Run, Run]) -> None:
    """A differing index definition, policy expression, check constraint or default is drift, shown as ``~``."""
    url_a, url_b, run_a, run_b = databases
    run_a(BASE)
    run_b(
        BASE
        + """
        DROP INDEX objectives_title_idx;
        CREATE INDEX objectives_title_idx ON objectives (lower(title));
        ALTER POLICY tenant_isolation ON objectives USING (true);
        ALTER TABLE objectives DROP CONSTRAINT objectives_status_check;
        ALTER TABLE objectives ADD CONSTRAINT objectives_status_check CHECK (status <> '');
        ALTER TABLE objectives ALTER COLUMN status SET DEFAULT 'done';
        """
    )
    code, out, _ = compare(url_a, url_b)
    assert code == 1
    assert diff_lines(out) == [
        "~ column objectives.status: default 'open'::text → 'done'::text",
        "~ constraint objectives_status_check ON objectives: CHECK ((status = ANY (ARRAY['open'::text, 'done'::text])))"
        " → CHECK ((status <> ''::text))",
        "~ index objectives_title_idx: CREATE INDEX ON objectives USING btree (title)"
        " → CREATE INDEX ON objectives USING btree (lower(title))",
        "~ policy tenant_isolation ON objectives: using "
        "((organization_id = (current_setting('app.tenant_id'::text))::uuid)) → (true)",
    ]


def test_tables_and_schemas_on_one_side(databases: tuple[str, str, Run, Run]) -> None:
    url_a, url_b, run_a, run_b = databases
    run_a(BASE + "CREATE SCHEMA billing; CREATE TABLE billing.invoices (id int PRIMARY KEY);")
    run_b(BASE + "CREATE TABLE key_results (id int PRIMARY KEY, objective_id int REFERENCES objectives (id));")
    code, out, _ = compare(url_a, url_b)
    assert code == 1
    assert diff_lines(out) == [
        "- schema billing: 1 table",
        "+ table public.key_results: 2 columns, 2 constraints, row level security enabled off, forced off",
    ]
    # --schema compares only the schemas named: public alone, tables named without their schema.
    code, out, _ = compare(url_a, url_b, schemas=["public"])
    assert code == 1
    assert diff_lines(out) == [
        "+ table key_results: 2 columns, 2 constraints, row level security enabled off, forced off"
    ]


def test_schema_option_picks_a_schema_in_both(databases: tuple[str, str, Run, Run]) -> None:
    """Two databases differing only outside the schema named compare equal; a schema neither has is an error."""
    url_a, url_b, run_a, run_b = databases
    run_a(BASE + "CREATE SCHEMA extra; CREATE TABLE extra.t (id int);")
    run_b(BASE)
    assert compare(url_a, url_b, schemas=["public"])[0] == 0
    assert compare(url_a, url_b)[0] == 1
    code, out, err = compare(url_a, url_b, schemas=["public", "nope"])
    assert (code, out) == (2, "")
    assert "schema 'nope' exists in neither database" in err


def test_json_document(databases: tuple[str, str, Run, Run]) -> None:
    url_a, url_b, run_a, run_b = databases
    run_a(BASE)
    run_b(BASE + "CREATE INDEX objectives_org_idx ON objectives (organization_id);")
    code, out, _ = compare(url_a, url_b, as_json=True)
    assert code == 1
    document = json.loads(out)
    assert document["format"] == "tenantwatch.schema_drift"
    assert document["drift"] is True
    assert document["a"]["url"] == url_a and document["b"]["url"] == url_b
    assert document["a"]["fingerprint"] != document["b"]["fingerprint"]
    assert document["a"]["schemas"] == ["public"]
    assert set(document["a"]["tables"]) == {"public.objectives", "public.organizations"}
    assert document["a"]["tables"]["public.organizations"] == document["b"]["tables"]["public.organizations"]
    assert document["summary"] == {"differences": 1, "added": 1, "removed": 0, "changed": 0}
    assert document["differences"] == [
        {
            "change": "added",
            "kind": "index",
            "schema": "public",
            "table": "objectives",
            "name": "objectives_org_idx",
            "a": None,
            "b": "CREATE INDEX ON objectives USING btree (organization_id)",
            "attributes": [],
            "line": "+ index objectives_org_idx: CREATE INDEX ON objectives USING btree (organization_id)",
        }
    ]
    run_b("DROP INDEX objectives_org_idx")
    same = json.loads(compare(url_a, url_b, as_json=True)[1])
    assert same["drift"] is False and same["differences"] == []
    assert same["a"]["fingerprint"] == same["b"]["fingerprint"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("as_json", [False, True])
def test_unreachable_database_is_exit_2_without_password(databases: tuple[str, str, Run, Run], as_json: bool) -> None:
    url_a, _url_b, run_a, _ = databases
    run_a(BASE)
    secret = "hunter2-s3cret"
    bad = f"postgresql+psycopg://app:{secret}@127.0.0.1:{_closed_port()}/okr"
    code, out, err = compare(url_a, bad, as_json=as_json)
    assert code == 2
    assert secret not in out + err
    assert "Traceback" not in out + err
    assert "B: cannot connect to postgresql+psycopg://app:***@127.0.0.1:" in err
    if as_json:
        assert json.loads(out)["exit_code"] == 2
        assert "cannot connect" in json.loads(out)["error"]
    else:
        assert out == ""


def test_bad_urls_say_what_is_wrong(databases: tuple[str, str, Run, Run]) -> None:
    url_a, _url_b, run_a, _ = databases
    run_a(BASE)
    secret = "hunter2-s3cret"
    code, out, err = compare(f"postgresql//app:{secret}@db/okr", url_a)
    assert (code, out) == (2, "")
    assert "A: not a database URL" in err and secret not in err
    code, _, err = compare(url_a, f"sqlite:///{secret}.db")
    assert code == 2 and "reads PostgreSQL catalogs, not sqlite" in err
    missing = url_a.rsplit("/", 1)[0] + f"/no_such_db?password={secret}"
    code, _, err = compare(url_a, missing)
    assert code == 2
    assert 'database "no_such_db" does not exist' in err and secret not in err
    assert "/no_such_db?password=***" in err
    code, _, err = compare(url_a, url_a)
    assert code == 2 and "same database URL" in err


def test_nothing_to_compare_is_an_error(databases: tuple[str, str, Run, Run]) -> None:
    """Two databases without tables (a wrong URL in CI, a migration that never ran) do not pass silently."""
    url_a, url_b, _, _ = databases
    code, out, err = compare(url_a, url_b)
    assert (code, out) == (2, "")
    assert "nothing to compare: neither database has a table in schemas public" in err


def test_a_schema_reads_the_same_under_another_name(databases: tuple[str, str, Run, Run]) -> None:
    """Definitions name objects of their own schema unqualified: the same tables in schema ``app`` of A and
    ``public`` of B have the same table fingerprints (the schema names differ, so the whole schema does)."""
    url_a, url_b, run_a, run_b = databases
    run_a("DROP SCHEMA public; CREATE SCHEMA app; SET search_path = app;" + BASE)
    run_b(BASE)
    code, out, _ = compare(url_a, url_b, as_json=True)
    assert code == 1
    document = json.loads(out)
    assert document["a"]["tables"]["app.objectives"] == document["b"]["tables"]["public.objectives"]
    assert document["a"]["tables"]["app.organizations"] == document["b"]["tables"]["public.organizations"]
    assert [d["line"] for d in document["differences"]] == ["- schema app: 2 tables", "+ schema public: 2 tables"]


def test_policy_roles_and_kind(databases: tuple[str, str, Run, Run]) -> None:
    """A policy granted to another role, or restrictive instead of permissive, is drift."""
    url_a, url_b, run_a, run_b = databases
    role = f"drift_reader_{uuid.uuid4().hex[:6]}"
    run_a(f"CREATE ROLE {role}")
    try:
        run_a(BASE + "CREATE POLICY only_open ON objectives AS RESTRICTIVE FOR SELECT USING (status = 'open');")
        run_b(
            BASE.replace(
                "CREATE POLICY tenant_isolation ON objectives",
                f"CREATE POLICY tenant_isolation ON objectives TO {role}",
            )
            + "CREATE POLICY only_open ON objectives AS PERMISSIVE FOR SELECT USING (status = 'open');"
        )
        code, out, _ = compare(url_a, url_b)
        assert code == 1
        assert diff_lines(out) == [
            "~ policy only_open ON objectives: as RESTRICTIVE → PERMISSIVE",
            f"~ policy tenant_isolation ON objectives: to public → {role}",
        ]
    finally:
        run_a(_RESET)
        run_b(_RESET)
        run_a(f"DROP ROLE {role}")


def _objects(*specs: tuple[str, str, str]) -> tuple[SchemaObject, ...]:
    """(kind, name, definition) of table ``public.t``."""
    return tuple(
        SchemaObject("public", "t", kind, name, (("definition", definition),)) for kind, name, definition in specs
    )


def test_indexes_pair_by_definition_then_by_name() -> None:
    """No database: a renamed index is not drift, a duplicate one is, a changed one of the same name is ``~``, and
    a renamed and changed one is ``-`` and ``+``. Object order does not change a fingerprint."""
    a = Snapshot(
        "A",
        ("public",),
        _objects(
            ("index", "t_a_idx", "CREATE INDEX ON t USING btree (a)"),
            ("index", "t_b_idx", "CREATE INDEX ON t USING btree (b)"),
            ("index", "t_b_idx1", "CREATE INDEX ON t USING btree (b)"),
            ("index", "t_c_idx", "CREATE INDEX ON t USING btree (c)"),
            ("index", "t_d_idx", "CREATE INDEX ON t USING btree (d)"),
        ),
    )
    b = Snapshot(
        "B",
        ("public",),
        _objects(
            ("index", "t_e_idx", "CREATE INDEX ON t USING hash (e)"),
            ("index", "renamed_a", "CREATE INDEX ON t USING btree (a)"),
            ("index", "t_b_idx", "CREATE INDEX ON t USING btree (b)"),
            ("index", "t_c_idx", "CREATE INDEX ON t USING btree (c, x)"),
        ),
    )
    assert [d.line(qualify=False) for d in diff(a, b).differences] == [
        "- index t_b_idx1: CREATE INDEX ON t USING btree (b)",
        "~ index t_c_idx: CREATE INDEX ON t USING btree (c) → CREATE INDEX ON t USING btree (c, x)",
        "- index t_d_idx: CREATE INDEX ON t USING btree (d)",
        "+ index t_e_idx: CREATE INDEX ON t USING hash (e)",
    ]
    shuffled = Snapshot("A again", ("public",), tuple(reversed(a.objects)))
    assert shuffled.fingerprint == a.fingerprint
    assert diff(a, shuffled).differences == ()


def test_the_audit_command_runs_the_comparison(
    databases: tuple[str, str, Run, Run], capsys: pytest.CaptureFixture[str]
) -> None:
    """``tenantwatch audit --compare URL_A URL_B`` is the command a user types: the same exit code and diff."""
    from tenantwatch.cli import main

    url_a, url_b, run_a, run_b = databases
    run_a(BASE)
    run_b(BASE + "CREATE INDEX objectives_org_idx ON objectives (organization_id);")
    assert main(["audit", "--compare", url_a, url_b, "--schema", "public"]) == 1
    assert diff_lines(capsys.readouterr().out) == [
        "+ index objectives_org_idx: CREATE INDEX ON objectives USING btree (organization_id)"
    ]
    assert main(["audit", url_a, "--compare", url_a, url_b]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["audit", url_a, "--schema", "public"]) == 2
    assert "--schema goes with --compare" in capsys.readouterr().err
