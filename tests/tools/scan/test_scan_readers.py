"""The file readers: json and proto as the collector writes them, gzip, zstd, stdin, and hostile input that is
reported with its line or record number while every good line is still judged."""

from __future__ import annotations

import gzip
import io
import json
import struct
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest
import zstandard
from scan_support import LiveRun, live_run, otlp_json_line, proto_record, write_json, write_proto

from tenantwatch import load_settings
from tenantwatch.tools.scan import FileSource, InputError, ReadStats, scan_sources


def _settings() -> object:
    return load_settings(tenant_tables={"notes": "organization_id"}, dedupe={"enabled": False})


@pytest.fixture(scope="module")
def run() -> LiveRun:
    return live_run()


def _scan(*paths: Path | str, stdin: io.BytesIO | None = None) -> tuple[Counter[str], ReadStats]:
    stats = ReadStats()
    groups = scan_sources([FileSource(str(p), stdin) for p in paths], _settings(), stats=stats)  # type: ignore[arg-type]
    return Counter({g.fingerprint: g.count for g in groups}), stats


def test_json_file_gives_the_live_fingerprints_and_counts(run: LiveRun, tmp_path: Path) -> None:
    found, stats = _scan(write_json(tmp_path / "t.json", run.spans))
    assert found == run.findings
    assert set(run.rules.values()) >= {"missing_tenant_filter", "cross_tenant", "repeated_violations"}
    assert stats.spans == len(run.spans) and stats.problem_count == 0
    assert stats.stored_findings == sum(run.findings.values())  # counted, not judged again


def test_proto_file_gives_the_live_fingerprints_and_counts(run: LiveRun, tmp_path: Path) -> None:
    found, _ = _scan(write_proto(tmp_path / "t.pb", run.spans))
    assert found == run.findings


def test_gzip_zstd_stream_and_zstd_records_and_stdin(run: LiveRun, tmp_path: Path) -> None:
    plain = write_json(tmp_path / "t.json", run.spans).read_bytes()
    (tmp_path / "t.json.gz").write_bytes(gzip.compress(plain))
    (tmp_path / "t.json.zst").write_bytes(zstandard.ZstdCompressor().compress(plain))
    records = b""  # the legacy `compression: zstd`: every record its own zstd frame behind a length prefix
    for line in plain.splitlines():
        frame = zstandard.ZstdCompressor().compress(line)
        records += struct.pack(">I", len(frame)) + frame
    (tmp_path / "t.zrec").write_bytes(records)
    for name in ("t.json.gz", "t.json.zst", "t.zrec"):
        found, stats = _scan(tmp_path / name)
        assert found == run.findings, name
        assert stats.problem_count == 0
    found, _ = _scan("-", stdin=io.BytesIO(gzip.compress(plain)))
    assert found == run.findings


def test_two_files_add_up(run: LiveRun, tmp_path: Path) -> None:
    found, _ = _scan(write_json(tmp_path / "a.json", run.spans), write_proto(tmp_path / "b.pb", run.spans))
    # per-statement findings double; repeated_violations fires once per tenant and hour, in one scan as live
    expected = {fp: n if run.rules[fp] == "repeated_violations" else 2 * n for fp, n in run.findings.items()}
    assert found == Counter(expected)


def test_hostile_lines_are_reported_by_number_and_good_lines_still_count(run: LiveRun, tmp_path: Path) -> None:
    good = [otlp_json_line(run.spans[i : i + 7]) for i in range(0, len(run.spans), 7)]
    doc = json.loads(good[0])
    span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    bad_hex = json.loads(json.dumps(doc))
    bad_hex["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = "zz" * 16
    wrong_type = {"resourceSpans": [{"scopeSpans": [{"spans": [{**span, "startTimeUnixNano": {"x": 1}}]}]}]}
    lines = [
        good[0],
        good[1][: len(good[1]) // 2],  # truncated JSON
        json.dumps(wrong_type),
        "[1, 2, 3]",
        json.dumps(bad_hex),
        "\x00\x01garbage",
        *good[1:],
    ]
    path = tmp_path / "hostile.json"
    path.write_text("\n".join(lines) + "\n")
    found, stats = _scan(path)
    assert stats.problem_count == 5
    where = [p.where for p in stats.problems]
    assert where == ["line 2", "line 3", "line 4", "line 5", "line 6"]
    assert "not valid JSON" in stats.problems[0].message
    assert "startTimeUnixNano" in stats.problems[1].message
    assert "traceId" in stats.problems[3].message and "hex" in stats.problems[3].message
    # line 5 lost only its first span (bad id); every span of lines 1, 5 and 7 on is judged
    assert stats.spans == len(run.spans) + 7 - 1
    assert set(found) == set(run.findings)


def test_binary_garbage_and_empty_file(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 8)
    _, stats = _scan(garbage)
    assert stats.spans == 0 and stats.problem_count >= 1
    assert stats.problems[0].where == "record 1"
    empty = tmp_path / "empty.json"
    empty.write_text("\n\n")
    _, stats = _scan(empty)
    assert stats.spans == 0 and stats.empty_sources == [str(empty)]


def test_truncated_proto_record_keeps_the_records_before_it(run: LiveRun, tmp_path: Path) -> None:
    data = proto_record(run.spans[:7]) + proto_record(run.spans[7:])[:-10]
    path = tmp_path / "cut.pb"
    path.write_bytes(data)
    _, stats = _scan(path)
    assert stats.spans == 7
    assert stats.problems[0].where == "record 2" and "truncated" in stats.problems[0].message


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        _scan(tmp_path / "nope.json")


def _synthetic(path: Path, spans: int) -> Path:
    """``spans`` spans as JSON lines of 100: 10 db spans (the first lacks its tenant filter) and 90 other spans (as
    an application's traces mostly are), written without holding them."""
    template = {
        "traceId": "",
        "spanId": "",
        "name": "SELECT notes",
        "kind": 3,
        "startTimeUnixNano": "",
        "endTimeUnixNano": "",
        "attributes": [
            {"key": "db.system", "value": {"stringValue": "sqlite"}},
            {"key": "db.statement", "value": {"stringValue": "SELECT id FROM notes WHERE organization_id = 'acme'"}},
            {"key": "tenant.id", "value": {"stringValue": "acme"}},
        ],
    }
    base = 1_764_000_000_000_000_000
    with path.open("w") as handle:
        for line in range(spans // 100):
            batch = []
            for i in range(100):
                n = line * 100 + i + 1
                attributes = template["attributes"]
                if i >= 10:
                    attributes = [{"key": "app.step", "value": {"intValue": str(i)}}, *attributes[2:]]
                elif i == 0:
                    attributes = [
                        *attributes[:1],
                        {"key": "db.statement", "value": {"stringValue": "SELECT id FROM notes"}},
                        *attributes[2:],
                    ]
                batch.append(
                    {
                        **template,
                        "attributes": attributes,
                        "traceId": f"{n:032x}",
                        "spanId": f"{n:016x}",
                        "startTimeUnixNano": str(base + n * 1000),
                        "endTimeUnixNano": str(base + n * 1000 + 500),
                    }
                )
            handle.write(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": batch}]}]}) + "\n")
    return path


def test_memory_does_not_grow_with_the_number_of_spans(tmp_path: Path) -> None:
    small, large = _synthetic(tmp_path / "small.json", 1_000), _synthetic(tmp_path / "large.json", 10_000)
    settings = _settings()
    scan_sources([FileSource(str(small))], settings, reorder=256)  # warm caches (analysis, imports)
    peaks = []
    for path in (small, large):
        tracemalloc.start()
        groups = scan_sources([FileSource(str(path))], settings, reorder=256)  # type: ignore[arg-type]
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert groups.spans == int(path.stem == "large") * 9_000 + 1_000
        missing = [g for g in groups if g.rule == "missing_tenant_filter"]
        assert [g.count for g in missing] == [groups.spans // 100]  # every span judged: one missing filter per line
    print("peak bytes, 1k vs 10k spans:", peaks)
    assert peaks[1] < peaks[0] * 1.25, peaks


def test_zstd_without_the_extra_says_to_install_it_or_decompress(
    run: LiveRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.json.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(write_json(tmp_path / "t.json", run.spans).read_bytes()))
    monkeypatch.setitem(__import__("sys").modules, "zstandard", None)  # as if not installed
    with pytest.raises(
        InputError, match=r"zstd-compressed: pip install .tenantwatch\[zstd\]. .*the zstd command cannot unpack"
    ):
        _scan(path)


def test_truncated_and_corrupt_compressed_files_keep_what_was_read(run: LiveRun, tmp_path: Path) -> None:
    plain = write_json(tmp_path / "t.json", run.spans, batch=2).read_bytes()
    packed = gzip.compress(plain)
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(packed[: len(packed) * 3 // 4])
    _, stats = _scan(cut)
    assert 0 < stats.spans < len(run.spans)
    assert stats.problem_count == 1 and stats.problems[0].where.startswith("after line")
    corrupt = tmp_path / "corrupt.json.gz"
    corrupt.write_bytes(packed[:200] + bytes(64) + packed[264:])
    _, stats = _scan(corrupt)
    assert stats.problem_count >= 1 and stats.spans < len(run.spans)
