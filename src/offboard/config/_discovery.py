"""Where the configuration file is: ``--config``, else ``OFFBOARD_CONFIG``, else ``./offboard.yaml``,
else ``$OFFBOARD_HOME/offboard.yaml``, else the platform's per-user config folder.

Each candidate is remembered with where it came from, so a command that finds nothing can say
where it looked, and ``offboard config show`` can say where each value came from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Discovery", "discover", "FILE_NAME"]

FILE_NAME = "offboard.yaml"


@dataclass
class Discovery:
    """The configuration file found (or ``None``), how it was chosen, and every place looked at."""

    path: Path | None
    origin: str
    looked: list[str] = field(default_factory=list)

    def where_looked(self) -> str:
        """One line: the places looked at, and how to point at a file."""
        return (
            "no configuration file found (looked at: "
            + "; ".join(self.looked)
            + "); pass --config FILE or set OFFBOARD_CONFIG"
        )


def _candidates() -> list[tuple[Path, str]]:
    import platformdirs

    found = [(Path.cwd() / FILE_NAME, f"./{FILE_NAME}")]
    home = os.environ.get("OFFBOARD_HOME")
    if home:
        found.append((Path(home).expanduser() / FILE_NAME, f"$OFFBOARD_HOME/{FILE_NAME}"))
    found.append((Path(platformdirs.user_config_dir("offboard")) / FILE_NAME, "the user config folder"))
    return found


def discover(explicit: str | Path | None = None) -> Discovery:
    """The configuration file to use. An explicit path (``--config``) or ``OFFBOARD_CONFIG`` is used
    even if missing (reading it then fails with a clear error); the others only when they exist."""
    if explicit:
        return Discovery(Path(explicit).expanduser(), "--config", [f"--config {explicit}"])
    env = os.environ.get("OFFBOARD_CONFIG")
    if env:
        return Discovery(Path(env).expanduser(), "OFFBOARD_CONFIG", [f"OFFBOARD_CONFIG={env}"])
    looked = ["--config (not given)", "OFFBOARD_CONFIG (not set)"]
    for path, label in _candidates():
        looked.append(str(path))
        if path.is_file():
            return Discovery(path, label, looked)
    return Discovery(None, "defaults", looked)
