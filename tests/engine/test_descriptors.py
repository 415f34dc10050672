"""The engine raises the process's soft limit on open files to what the system allows (``engine/_descriptors``)."""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_opening_an_engine_raises_a_low_soft_limit_and_the_connections_fit(tmp_path):
    """A process started with a soft limit of 256 (below the 870 descriptors a 1,000-person run held) could
    open no more than that; the engine raises it to the hard limit, and 600 sockets open."""
    out = _run(
        f"""
        import resource, socket
        from pathlib import Path
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        if hard != resource.RLIM_INFINITY and hard < 1024:
            hard = 1024  # raising the hard limit needs root, as ./scripts/test runs (apt-get)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        try:
            [socket.socket() for _ in range(600)]
            print("opened before")
        except OSError as exc:
            print("refused before:", exc.errno)
        from offboard.config._config import Config
        from offboard.engine._engine import Engine
        engine = Engine.open(Config(), Path({str(tmp_path)!r}))
        try:
            held = [socket.socket() for _ in range(600)]
            print("opened after", len(held), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        finally:
            engine.close()
        """
    )
    before, after = [line for line in out.splitlines() if line.startswith(("opened", "refused"))]
    assert before == "refused before: 24"  # EMFILE: the failure a run meets without the raise
    words = after.split()
    assert words[:3] == ["opened", "after", "600"] and int(words[3]) > 256


def test_the_limit_is_never_lowered_and_stays_within_the_hard_limit():
    from offboard.engine._descriptors import raise_open_files_limit

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert raise_open_files_limit(wanted=16) == soft  # asked for less than it has: unchanged
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (soft, hard)
    after = raise_open_files_limit()
    assert after is not None and after >= soft
    assert hard == resource.RLIM_INFINITY or after <= hard
