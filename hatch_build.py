"""Build ``offboard.audit._native`` (the audit verifier's hot loops in C) when a C compiler is at hand.

The extension is optional: without a compiler or OpenSSL's headers the build goes on, prints why,
and ``offboard audit verify`` runs the same checks in Python (about a quarter slower). An editable
install (``pip install -e .``) builds it next to its source, where the ``.pth`` finds it; a wheel
carries it and gets a platform tag. ``OFFBOARD_NO_NATIVE=1`` skips it.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("src/offboard/audit/_native.c")


def compile_native(root: Path, target: Path) -> str | None:
    """Compile the extension to ``target``; None when built, else why not."""
    source = root / SOURCE
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    command = [
        *cc,
        "-shared",
        "-fPIC",
        "-O2",
        "-Wall",
        f"-I{sysconfig.get_paths()['include']}",
        f'-DOFFBOARD_NATIVE_SOURCE="{digest}"',
        str(source),
        "-o",
        str(target),
        "-lcrypto",
    ]
    if shutil.which(cc[0]) is None:
        return f"no C compiler ({cc[0]})"
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        return f"{' '.join(command)} failed:\n{done.stderr.strip()}"
    return None


class NativeBuildHook(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if os.environ.get("OFFBOARD_NO_NATIVE"):
            return
        name = "_native" + sysconfig.get_config_var("EXT_SUFFIX")
        root = Path(self.root)
        if version == "editable":
            target = root / SOURCE.parent / name
        else:
            self._tmp = tempfile.mkdtemp(prefix="offboard-native-")
            target = Path(self._tmp) / name
        why = compile_native(root, target)
        if why is not None:
            print(
                f"offboard: the audit verifier's C extension was not built ({why}); "
                "verify runs the same checks in Python",
                file=sys.stderr,
            )
            return
        if version != "editable":
            build_data["force_include"][str(target)] = f"offboard/audit/{name}"
            build_data["pure_python"] = False
            build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        if getattr(self, "_tmp", None):
            shutil.rmtree(self._tmp, ignore_errors=True)
