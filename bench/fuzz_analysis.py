"""A longer fuzz run of statement analysis (minutes; not part of CI).

Random and hostile statements (token soups of SQL fragments, repeated fragments up to the size cap, random text
with surrogates and NULs) go through one shared analyzer and, for a sample, a fresh one. It checks that nothing
raises or reports an internal error and that the shared (cached) and fresh answers agree, and prints the inputs
fuzzed, the worst cold analysis time (CPU time) per size class, and the bytes the caches hold after 200 distinct
5 MB statements.

    python bench/fuzz_analysis.py --seconds 180
"""

from __future__ import annotations

import argparse
import random
import time

from tenantwatch.config import AnalysisSettings, Settings
from tenantwatch.sql import Analyzer

TENANT_TABLES = {"orders": "organization_id", "users": "organization_id"}

FRAGMENTS = [
    "SELECT ",
    "* ",
    "FROM ",
    "orders ",
    "users u ",
    "WHERE ",
    "organization_id ",
    "= ",
    "IN ",
    "(",
    ")",
    ", ",
    "AND ",
    "OR ",
    "NOT ",
    "JOIN ",
    "ON ",
    "u.organization_id ",
    "%s ",
    "%(org)s ",
    "? ",
    "?1 ",
    ":org ",
    "$1 ",
    "'a' ",
    "'it''s' ",
    "E'\\\\' ",
    "$$x$$ ",
    "$t$ $t$ ",
    '"orders" ',
    "1 ",
    "2.5e3 ",
    "-",
    "/* ",
    "*/ ",
    "-- c\n",
    "::int ",
    "[1] ",
    "UNION ",
    "INSERT INTO orders ",
    "VALUES ",
    "UPDATE orders SET x = ",
    "DELETE ",
    "WITH c AS (",
    "SELECT 1) ",
    "%% ",
    "%",
    "?t ",
    "\udfff ",
    "\x00",
    "é ",
    "`orders` ",
    ";",
    "\n",
    "1+",
    "(1, 'a'),",
    "(select 1)+",
    "a = 1 OR ",
    "varchar(20) ",
    "interval '1 day' ",
]


def _statement(rng: random.Random, cap: int) -> str:
    kind = rng.random()
    if kind < 0.5:
        return "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 60)))
    if kind < 0.8:
        head = rng.choice(["SELECT ", "SELECT * FROM orders WHERE ", "INSERT INTO orders (organization_id) VALUES "])
        unit = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 4)))
        size = rng.choice([1_000, 16_000, cap - len(head) - 8])
        return head + unit * max(1, size // max(1, len(unit)))
    return "".join(chr(rng.choice([rng.randint(32, 126), rng.randint(0, 0xFFFF)])) for _ in range(rng.randint(1, 300)))


def _cold(analyzer: Analyzer, sql: str) -> float:
    analyzer.clear_cache()
    start = time.process_time()
    analyzer.analyze(sql)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="how long to fuzz")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    settings = Settings(tenant_tables=TENANT_TABLES)
    cap = settings.analysis.max_statement_bytes
    shared = Analyzer(settings)
    worst: dict[str, tuple[float, str]] = {"<=16KiB": (0.0, ""), "<=cap": (0.0, "")}
    fuzzed = 0
    problems = 0
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        sql = _statement(rng, cap)
        fuzzed += 1
        result = shared.analyze(sql)
        if "internal error" in (result.error or ""):
            problems += 1
            print("internal error:", result.error, repr(sql[:120]))
        if fuzzed % 10 == 0:  # a fresh analyzer agrees with the cached answer
            fresh = Analyzer(settings).analyze(sql)
            if (fresh.operation, fresh.scopes, fresh.error) != (result.operation, result.scopes, result.error):
                problems += 1
                print("cached and fresh answers differ:", repr(sql[:120]))
        size = len(sql.encode("utf-8", "surrogatepass"))
        if size <= cap:
            seconds = min(_cold(shared, sql) for _ in range(2))
            label = "<=16KiB" if size <= 16_384 else "<=cap"
            if seconds > worst[label][0]:
                worst[label] = (seconds, sql[:60])
    print(f"inputs fuzzed: {fuzzed}, problems: {problems}")
    for label, (seconds, sample) in worst.items():
        bound = 0.005 if label == "<=16KiB" else 0.050
        print(
            f"worst cold analysis {label}: {seconds * 1000:.2f} ms CPU, {seconds / bound:.2f}x the "
            f"{bound * 1000:.0f} ms bound  ({sample!r}...)"
        )

    big = Analyzer(Settings(tenant_tables=TENANT_TABLES, analysis=AnalysisSettings()))
    body = "x" * (5 * 1024 * 1024)
    for i in range(200):
        big.analyze(f"SELECT {i} FROM orders WHERE note = '{body}'")
    info = big.cache_info
    print(
        f"caches after 200 distinct 5 MB statements: {info['exact_bytes'] + info['shape_bytes']} bytes "
        f"({info['exact_size']} exact, {info['shape_size']} shape entries; cap {big.settings.analysis.cache_bytes})"
    )


if __name__ == "__main__":
    main()
