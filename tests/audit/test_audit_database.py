"""One audit log for many processes and machines: entries sequenced through the real PostgreSQL."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from offboard.audit import AuditError, AuditLog, FileSigner, load_trust, use_database, verify_log
from offboard.audit._database import sync_mirror
from offboard.audit._note import parse_checkpoint
from offboard.state._audit_rows import AuditRows
from offboard.state.schema import audit_checkpoints, audit_entries, metadata

pytestmark = pytest.mark.postgres

WORKER = r"""
import sys
from pathlib import Path
import sqlalchemy as sa
from offboard.audit import AuditLog, FileSigner, use_database
from offboard.state._audit_rows import AuditRows

directory, url, name, count = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
origin = (directory / "origin").read_text().strip()
log = AuditLog.open(directory, origin, signer=FileSigner(directory / "signing.key", origin))
use_database(log, AuditRows(sa.create_engine(url)))
for i in range(count):
    log.append("test_event", {"person": {"id": f"p-{i % 5}"}, "worker": name, "i": i})
    if i % 7 == 0:
        log.checkpoint()
log.checkpoint()
log.close()
"""


ORIGIN = "test.example/offboard/audit/v1"


@pytest.fixture
def write_case(audit_kit):
    assert audit_kit.origin == ORIGIN
    return audit_kit.write_case


@pytest.fixture
def db(pg_url):
    engine = sa.create_engine(pg_url)
    metadata.create_all(engine, tables=[audit_entries, audit_checkpoints])
    yield AuditRows(engine)
    engine.dispose()


def machine(tmp_path: Path, name: str, like: Path | None = None) -> Path:
    """An audit directory; ``like`` gives it another machine's origin, key and trust list."""
    directory = tmp_path / name / "audit"
    directory.mkdir(parents=True)
    if like is not None:
        for item in ("origin", "signing.key", "trusted-keys.txt"):
            shutil.copy2(like / item, directory / item)
    else:
        AuditLog.open(directory, ORIGIN, signer=FileSigner(directory / "signing.key", ORIGIN)).close()
    return directory


def open_log(directory: Path) -> AuditLog:
    return AuditLog.open(directory, ORIGIN, signer=FileSigner(directory / "signing.key", ORIGIN))


def table(db) -> list[tuple[int, bytes]]:
    with db.db.connect() as conn:
        return [
            (row.seq, bytes(row.line)) for row in conn.execute(sa.select(audit_entries).order_by(audit_entries.c.seq))
        ]


def test_processes_on_three_machines_append_to_one_log(db, pg_url, tmp_path):
    first = machine(tmp_path, "m1")
    second, third = machine(tmp_path, "m2", like=first), machine(tmp_path, "m3", like=first)
    count = 40
    # two processes share m1's directory, one each on m2 and m3, all appending at once
    places = [(first, "a"), (first, "b"), (second, "c"), (third, "d")]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(d), pg_url, name, str(count)], stderr=subprocess.PIPE, text=True
        )
        for d, name in places
    ]
    for proc in procs:
        assert proc.wait(timeout=180) == 0, proc.stderr.read()
    rows = table(db)
    assert [seq for seq, _ in rows] == list(range(4 * count))  # gapless, no duplicates
    with db.db.connect() as conn:
        newest = conn.execute(sa.select(sa.func.max(audit_checkpoints.c.size))).scalar_one()
    assert newest == 4 * count  # the last signer covered everything
    lines = b"".join(line + b"\n" for _, line in rows)
    for directory in (first, second, third):
        with open_log(directory) as log, log._store.locked():  # each machine syncs its mirror
            sync_mirror(log._store, db)
        assert (directory / "entries.jsonl").read_bytes() == lines
        report = verify_log(directory, strict=True)
        assert report.exit_code == 0, [str(p) for p in report.problems]
        assert report.checkpoint.size == 4 * count
    # every worker's entries are there, each once, in its own order
    import json

    seen = [json.loads(line) for _, line in rows]
    for name in "abcd":
        assert [e["i"] for e in seen if e["worker"] == name] == list(range(count))


def test_an_existing_log_is_uploaded_and_another_machine_catches_up(db, tmp_path, write_case):
    first = machine(tmp_path, "m1")
    with open_log(first) as log:  # a log kept before the switch to distributed execution
        write_case(log, "p-alice", "case-0")
        log.checkpoint()
        use_database(log, db)
        write_case(log, "p-alice", "case-1")  # the person chain continues through the database
        log.checkpoint()
    second = machine(tmp_path, "m2", like=first)
    with use_database(open_log(second), db) as log:
        assert log.size == 8
    for directory in (first, second):
        report = verify_log(directory, strict=True)
        assert report.exit_code == 0, [str(p) for p in report.problems]
    assert (first / "entries.jsonl").read_bytes() == (second / "entries.jsonl").read_bytes()


def test_a_different_local_log_is_refused(db, tmp_path, write_case):
    first = machine(tmp_path, "m1")
    with use_database(open_log(first), db) as log:
        write_case(log, "p-alice", "case-0")
    second = machine(tmp_path, "m2", like=first)
    with open_log(second) as log:  # same key, but its own history
        write_case(log, "p-bob", "case-9")
        with pytest.raises(AuditError, match="differ at entry 3"):
            use_database(log, db)
    assert len(table(db)) == 4


def test_another_origin_is_refused(db, tmp_path):
    first = machine(tmp_path, "m1")
    with use_database(open_log(first), db) as log:
        log.append("test_event", {"n": 1})
    other = tmp_path / "other"
    with AuditLog.open(
        other, "other.example/audit", signer=FileSigner(other / "signing.key", "other.example/audit")
    ) as log:
        with pytest.raises(AuditError, match="same audit origin"):
            use_database(log, db)


def test_a_mirror_refuses_local_writes_and_drops_a_torn_tail(db, tmp_path, write_case):
    directory = machine(tmp_path, "m1")
    with use_database(open_log(directory), db) as log:
        write_case(log, "p-alice", "case-0")
        log.checkpoint()
    with open_log(directory) as log:  # the directory now mirrors the database's log
        with pytest.raises(AuditError, match="PostgreSQL"):
            log.append("test_event", {"n": 1})
    with open(directory / "entries.jsonl", "ab") as f:
        f.write(b'{"half a line')  # a process killed while mirroring
    with use_database(open_log(directory), db) as log:
        assert log.recovered == [] and log.size == 4
        log.append("test_event", {"n": 2})
        log.checkpoint()
    rows = table(db)
    assert [seq for seq, _ in rows] == list(range(5))
    assert (directory / "entries.jsonl").read_bytes() == b"".join(line + b"\n" for _, line in rows)
    assert verify_log(directory, strict=True).exit_code == 0


def test_a_lagging_mirror_is_brought_up_to_date(db, tmp_path, write_case):
    first = machine(tmp_path, "m1")
    second = machine(tmp_path, "m2", like=first)
    with use_database(open_log(second), db):
        pass
    with use_database(open_log(first), db) as log:
        for n in range(3):
            write_case(log, f"p-{n}", f"case-{n}")
            log.checkpoint()
    # m2 signed nothing and appended nothing; a sync gives it the entries and the newest checkpoint
    with open_log(second) as log, log._store.locked():
        assert sync_mirror(log._store, db) == 12
    report = verify_log(second, strict=True)
    assert report.exit_code == 0 and report.checkpoint.size == 12
    note = (second / "checkpoints" / "latest.note").read_bytes()
    assert parse_checkpoint(note, load_trust(second / "trusted-keys.txt")).size == 12


def test_witnesses_cosign_the_shared_log_and_every_mirror_gets_the_cosignatures(db, tmp_path, write_case, audit_kit):
    """execution: distributed: the worker that signs a checkpoint asks the witnesses (separate processes), keeps
    their cosignatures in audit_checkpoints, and every other worker's mirror gets them with the checkpoint, so
    ``verify --min-witnesses 2`` passes on any machine; without them it fails."""
    from test_audit_witness import cosig, start_witness, verify_args

    from offboard.audit._note import KeySigner

    first = machine(tmp_path, "m1")
    second = machine(tmp_path, "m2", like=first)
    vkey = KeySigner((first / "signing.key").read_text()).vkey
    started = [start_witness(tmp_path, name, vkey) for name in ("w1.example", "w2.example")]
    witnesses = [{"url": url, "key": key} for _, url, key in started]

    def attach(directory: Path) -> AuditLog:
        log = AuditLog.open(
            directory, ORIGIN, signer=FileSigner(directory / "signing.key", ORIGIN), witnesses=witnesses
        )
        return use_database(log, db)

    try:
        one, two = attach(first), attach(second)
        write_case(one, "p-alice", "case-0")
        one.checkpoint()
        assert one.witness_failures == []
        write_case(two, "p-bob", "case-1")
        two.checkpoint()  # a larger checkpoint of the same log, from another machine: consistent, cosigned
        assert two.witness_failures == []
        newest = two.size
        with db.reading() as tables:
            assert tables.cosignatures(newest).count("\u2014 ") == 2
        # A worker whose checkpoint reaches the witnesses after a larger one: they have vouched for its entries.
        write_case(one, "p-carol", "case-2")
        one.witnesses = []
        one.checkpoint()
        late = (one.size, (first / "checkpoints" / "latest.note").read_text())
        two.witnesses = witnesses
        write_case(two, "p-dave", "case-3")
        two.checkpoint()
        one.witnesses = witnesses
        one._store._witness_due.append(late)
        one._store.ask_witnesses()
        assert one.witness_failures == []
        newest = two.size
        with open_log(first) as mirror, mirror._store.locked():  # machine one's mirror catches up
            sync_mirror(mirror._store, db)
        for directory in (first, second):
            assert cosig(directory, newest).read_text().count("\u2014 ") == 2, directory
            result = audit_kit.run("--log", str(directory), *verify_args(witnesses))
            assert result.exit_code == 0, result.output
        cosig(first, newest).unlink()
        result = audit_kit.run("--log", str(first), *verify_args(witnesses))
        assert result.exit_code == 1 and "0 valid witness cosignature(s); 2 required" in result.output
        one.close()
        two.close()
    finally:
        for proc, _, _ in started:
            proc.terminate()
            proc.wait(timeout=10)
            proc.stdout.close()
            proc.stderr.close()
