#!/usr/bin/env bash
# Create ./.venv-sp4 (or $1): an optional Python 3.11 side environment with magnum.np
# (PyPI `magnumnp`) and a CPU PyTorch, used only to generate the µMAG standard problem 4
# surrogate dataset (llgfem/surrogates/sp4_magnumnp.py).  Nothing in `make test` or
# `make demo` needs it.
#
# Python is taken from $PYTHON if set, else pyenv's 3.11 or python3.11.  The CPU PyTorch
# wheel is pinned (TORCH, default 2.13.0); the script checks with `pip install --dry-run`
# that nothing else would pull a second torch or CUDA (nvidia-*) packages before installing.
set -euo pipefail
venv=${1:-.venv-sp4}
torch=${TORCH:-2.13.0}
pkgs=("torch==$torch" magnumnp h5py numpy)

find_python() {
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
  if command -v pyenv >/dev/null 2>&1; then
    root=$(pyenv root)
    for v in $(ls -1 "$root/versions" 2>/dev/null | grep -E '^3\.11\.[0-9]+$' | sort -V -r); do
      echo "$root/versions/$v/bin/python3"; return
    done
  fi
  for c in python3.11 python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      command -v "$c"; return
    fi
  done
  echo "error: no Python 3.11 found; set PYTHON=/path/to/python3.11" >&2
  exit 1
}

if [ ! -x "$venv/bin/python" ]; then
  py=$(find_python)
  echo "llgfem-sp4: creating $venv with $py ($("$py" --version 2>&1))"
  "$py" -m venv "$venv"
fi
plan=$("$venv/bin/python" -m pip install --dry-run "${pkgs[@]}" 2>&1 | grep '^Would install' || true)
if echo "$plan" | grep -qiE 'nvidia|cuda|triton'; then
  echo "error: the install plan pulls CUDA packages; refusing: $plan" >&2
  exit 1
fi
if echo "$plan" | tr ' ' '\n' | grep -E '^torch-' | grep -v "^torch-$torch" | grep -q .; then
  echo "error: the install plan pulls another torch; refusing: $plan" >&2
  exit 1
fi
"$venv/bin/python" -m pip install -q "${pkgs[@]}" 2>&1 | grep -v -E '^WARNING: Location|^\s*$' || true
"$venv/bin/python" -c 'import torch, magnumnp; print("llgfem-sp4: torch", torch.__version__, "magnum.np", getattr(magnumnp, "__version__", "?"), "ready")'
