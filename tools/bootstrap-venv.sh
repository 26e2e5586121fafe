#!/usr/bin/env bash
# Create ./.venv (or $1) with a Python >= 3.12 and install llgfem into it.
#
# Python is taken from $PYTHON if set, else the first of python3.13, python3.12,
# pyenv's 3.12/3.13 installs, python3 that runs and is >= 3.12.  If that Python can
# already import DOLFINx 0.11 (conda, Docker, a source build) the venv sees its site
# packages and the `dolfinx` extra (the PyPI wheel) is NOT installed.
set -euo pipefail
venv=${1:-.venv}
extras=${EXTRAS:-dev}

ok() {  # ok CMD...: runs and is >= 3.12
  "$@" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

find_python() {
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
  for c in python3.13 python3.12; do
    if command -v "$c" >/dev/null 2>&1 && ok "$c"; then command -v "$c"; return; fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    root=$(pyenv root)
    for v in $(ls -1 "$root/versions" 2>/dev/null | grep -E '^3\.1[2-9]\.[0-9]+$' | sort -V -r); do
      if ok "$root/versions/$v/bin/python3"; then echo "$root/versions/$v/bin/python3"; return; fi
    done
  fi
  for c in python3 python; do
    if command -v "$c" >/dev/null 2>&1 && ok "$c"; then command -v "$c"; return; fi
  done
  echo "error: no Python >= 3.12 found; set PYTHON=/path/to/python3.12" >&2
  exit 1
}

if [ ! -x "$venv/bin/python" ]; then
  py=$(find_python)
  echo "llgfem: creating $venv with $py ($("$py" --version 2>&1))"
  if "$py" -c 'import dolfinx, sys; sys.exit(0 if dolfinx.__version__.startswith("0.11") else 1)' >/dev/null 2>&1; then
    echo "llgfem: $py already provides DOLFINx 0.11: using it (no wheel)"
    "$py" -m venv --system-site-packages "$venv"
    touch "$venv/.system-dolfinx"
  else
    "$py" -m venv "$venv"
  fi
fi
"$venv/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
if [ -f "$venv/.system-dolfinx" ]; then spec=".[$extras]"; else spec=".[dolfinx,$extras]"; fi
echo "llgfem: pip install -e '$spec'"
"$venv/bin/python" -m pip install -q -e "$spec" 2>&1 | grep -v -E '^WARNING: Location|^\s*$' || true
"$venv/bin/python" -c 'import llgfem, dolfinx; print("llgfem: DOLFINx", dolfinx.__version__, "ready")'
