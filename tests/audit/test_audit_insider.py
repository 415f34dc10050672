"""An insider who can write the log's directory cannot talk the writer into re-signing edited history (#18).

Each test edits the log the way issue #18 reproduced it, then runs a command that seals. Before
the fix the writer signed a new checkpoint over the edited entries and ``verify`` said intact.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from offboard.audit import AuditError, AuditLog, FileSigner
from offboard.cli._audit import audit
from offboard.state._store import Store

ORIGIN = "test.example/offboard/audit/v1"
PEOPLE = ("p-alice", "p-bob", "p-carol")


def open_log(directory: Path, seals=None) -> AuditLog:
    return AuditLog.open(directory, ORIGIN, signer=FileSigner(directory / "signing.key", ORIGIN), seals=seals)


def run(*args: str):
    return CliRunner().invoke(audit, list(args), catch_exceptions=False)


@pytest.fixture
def store(audit_home) -> Store:
    """The state store the CLI opens (DATA_DIR/offboard.db), holding audit_seals."""
    audit_home.mkdir(parents=True, exist_ok=True)
    store = Store.open(None, audit_home)
    yield store
    store.close()


@pytest.fixture
def log_dir(audit_home, store, audit_kit) -> Path:
    """Three cases, a checkpoint after each, every seal recorded in the store."""
    directory = audit_home / "audit"
    with open_log(directory, store.audit_seals) as log:
        for i, person in enumerate(PEOPLE):
            audit_kit.write_case(log, person, f"case-{i}")
            log.checkpoint()
    return directory


def lines(directory: Path) -> list[bytes]:
    return (directory / "entries.jsonl").read_bytes().splitlines()


def edit_entry(directory: Path, index: int = 1) -> None:
    """Change one digit of an entry's time: still canonical, only its hash changes."""
    all_lines = lines(directory)
    all_lines[index] = re.sub(
        rb'("time":"[^"]*)(\d)(Z")', lambda m: m[1] + str((int(m[2]) + 1) % 10).encode() + m[3], all_lines[index]
    )
    (directory / "entries.jsonl").write_bytes(b"".join(line + b"\n" for line in all_lines))


def history(directory: Path) -> dict[str, bytes]:
    folder = directory / "checkpoints"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != "latest.note"}


def append_unsealed(directory: Path) -> None:
    """One more entry, so that the next command has something to seal."""
    with open_log(directory) as log:  # opening seals; the extra entry below is left unsealed
        log.append("note", {"text": "after the last checkpoint"})


def seal_via_cli(tmp_path: Path):
    return run("evidence", PEOPLE[0], "--out", str(tmp_path / "e.zip"))


def test_edit_with_latest_deleted_is_not_resigned(log_dir, tmp_path):
    """Defect 1: the history checkpoint was overwritten by a new root signed with the log's key."""
    before = history(log_dir)
    edit_entry(log_dir)
    (log_dir / "checkpoints" / "latest.note").unlink()
    result = seal_via_cli(tmp_path)
    assert result.exit_code == 2, result.output
    assert "refusing to sign" in result.output and "no longer match" in result.output
    assert history(log_dir) == before  # nothing overwritten
    assert not (log_dir / "checkpoints" / "latest.note").exists()
    assert run("verify").exit_code == 1


def test_edit_with_every_checkpoint_deleted_is_refused_by_the_record_outside(log_dir, tmp_path):
    """With every checkpoint file gone only audit_seals in the state store still knows the old roots."""
    edit_entry(log_dir)
    (log_dir / "leafhashes.bin").unlink()
    shutil.rmtree(log_dir / "checkpoints")
    (log_dir / "checkpoints").mkdir()
    result = seal_via_cli(tmp_path)
    assert result.exit_code == 2, result.output
    assert "audit_seals" in result.output
    assert list((log_dir / "checkpoints").iterdir()) == []
    verify = run("verify")
    assert verify.exit_code == 1 and "no checkpoint" in verify.output  # defect 2: not a warning


def test_history_file_overwritten_is_refused(log_dir):
    folder = log_dir / "checkpoints"
    newest, older = sorted(history(log_dir))[-1], sorted(history(log_dir))[-2]
    (folder / newest).write_bytes((folder / older).read_bytes())
    with pytest.raises(AuditError, match="says size"):
        append_unsealed(log_dir)


def test_rewritten_and_resigned_with_the_real_key_is_refused(log_dir, store):
    """The insider holds the key: edits, re-signs every checkpoint file; audit_seals still has the old roots."""
    from offboard.audit._merkle import Tree, leaf_hash
    from offboard.audit._note import KeySigner, checkpoint_text, sign_note

    edit_entry(log_dir)
    leaves = [leaf_hash(line) for line in lines(log_dir)]
    (log_dir / "leafhashes.bin").write_bytes(b"".join(leaves))
    signer = KeySigner((log_dir / "signing.key").read_text())
    folder = log_dir / "checkpoints"
    for name in history(log_dir):
        size = int(name[:20])
        note = sign_note(checkpoint_text(ORIGIN, size, Tree(leaves[:size]).root()), [signer])
        (folder / name).write_text(note)
        (folder / "latest.note").write_text(note)
    told = run("verify")  # the per-person index still describes the old entries ...
    assert told.exit_code == 1 and "index/" in told.output, told.output
    shutil.rmtree(log_dir / "index")  # ... so a careful insider deletes it too
    assert run("verify").exit_code == 0  # the files alone cannot tell (witnesses or a pin can)
    with pytest.raises(AuditError, match="audit_seals"):
        open_log(log_dir, store.audit_seals)


def test_latest_older_than_history_is_refused(log_dir, store):
    folder = log_dir / "checkpoints"
    older = sorted(history(log_dir))[-2]
    (folder / "latest.note").write_bytes((folder / older).read_bytes())
    with pytest.raises(AuditError, match="latest.note .* is older"):
        append_unsealed(log_dir)


def test_latest_missing_is_refused_even_when_entries_are_intact(log_dir):
    (log_dir / "checkpoints" / "latest.note").unlink()
    with pytest.raises(AuditError, match="latest.note is missing"):
        append_unsealed(log_dir)


def test_missing_history_file_is_refused(log_dir, store):
    oldest_nonzero = sorted(history(log_dir))[1]
    (log_dir / "checkpoints" / oldest_nonzero).unlink()
    with pytest.raises(AuditError, match=f"{oldest_nonzero} is missing"):
        open_log(log_dir, store.audit_seals)


def test_running_writer_refuses_when_latest_is_deleted_under_it(log_dir, store):
    """A long-running engine checks again before each seal: files changed under it stop the next seal."""
    log = open_log(log_dir, store.audit_seals)
    try:
        log.append("note", {"text": "one"})
        (log_dir / "checkpoints" / "latest.note").unlink()
        with pytest.raises(AuditError, match="latest.note is missing"):
            log.checkpoint()
        assert not (log_dir / "checkpoints" / "latest.note").exists()
    finally:
        log.close()


def test_never_a_second_checkpoint_file_for_a_size(log_dir, store):
    """A history file already present for the size about to be sealed, with another root: refused, kept."""
    from offboard.audit._note import KeySigner, checkpoint_text, sign_note

    log = open_log(log_dir, store.audit_seals)
    try:
        log.append("note", {"text": "one"})
        size = log.size
        planted = sign_note(
            checkpoint_text(ORIGIN, size, b"\x07" * 32), [KeySigner((log_dir / "signing.key").read_text())]
        )
        path = log_dir / "checkpoints" / f"{size:020d}.note"
        path.write_text(planted)
        with pytest.raises(AuditError, match="no longer match"):
            log.checkpoint()
        assert path.read_text() == planted
    finally:
        log.close()


def test_the_store_records_every_seal(log_dir, store):
    recorded = store.audit_seals.seals(ORIGIN)
    assert sorted(recorded) == sorted(int(name[:20]) for name in history(log_dir))
    assert len(recorded) == 4  # size 0 and one per case


def test_lone_surrogate_is_an_entry_error_and_nothing_is_written(log_dir):
    """Defect 6: a lone surrogate raised a raw UnicodeEncodeError."""
    from offboard.audit import EntryError

    before = (log_dir / "entries.jsonl").read_bytes()
    with open_log(log_dir) as log, pytest.raises(EntryError, match="lone surrogate"):
        log.append("note", {"text": "half a pair: \ud800"})
    assert (log_dir / "entries.jsonl").read_bytes() == before


def test_every_checkpoint_deleted_is_refused_even_without_the_store(log_dir):
    """Defect 2, writer side: a non-empty log with no checkpoint is not signed afresh."""
    edit_entry(log_dir)
    shutil.rmtree(log_dir / "checkpoints")
    (log_dir / "leafhashes.bin").unlink()
    with pytest.raises(AuditError, match="no checkpoint at all"):
        open_log(log_dir)  # no audit_seals given
    assert not (log_dir / "checkpoints" / "latest.note").exists()
