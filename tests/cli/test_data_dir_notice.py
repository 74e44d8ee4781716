"""A command run over a data dir that does not exist yet says so: the default, ``./.chatda``,
is relative, and run from another folder ``chatda catalog import`` wrote into a new, empty
store while the running stack kept its catalog (found in a first-hour walkthrough)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_a_new_data_dir_is_announced_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "elsewhere" / ".chatda"
    env = os.environ | {"CHATDA_DATA_DIR": str(data_dir)}

    def export() -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "cli.main", "catalog", "export"]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    first = export()
    assert first.returncode == 0, first.stderr
    assert f"no data dir at {data_dir} yet: a command that stores data creates it" in first.stderr
    assert "CHATDA_DATA_DIR" in first.stderr and "intents: []" in first.stdout
    again = export()
    assert again.returncode == 0 and "no data dir" not in again.stderr
