"""Shared by the bench scripts: re-launch a script under ``mpiexec -n 2`` and read its JSON."""

import json
import os
import subprocess
import sys
from pathlib import Path


def run_two_ranks(script: str, out: Path) -> dict:
    """Run ``python SCRIPT --worker OUT`` on 2 ranks; return the JSON the worker wrote."""
    tmp = out.with_suffix(".2ranks.json")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    mpiexec = Path(sys.executable).with_name("mpiexec")
    cmd = [str(mpiexec) if mpiexec.exists() else "mpiexec", "-n", "2", sys.executable, script,
           "--worker", str(tmp)]
    subprocess.run(cmd, check=True, env=os.environ.copy())
    data = json.loads(tmp.read_text())
    tmp.unlink()
    return data
