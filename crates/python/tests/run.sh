#!/bin/sh
# Builds and installs the Python package into a Python environment that has
# torch (default: the oracle venv `cargo xtask setup` made, .tpkg/python),
# then runs its pytest suite. Usage, from the repository root:
#
#   sh crates/python/tests/run.sh [PYTHON] [PYTEST ARGS...]
#
# pip builds the wheel with maturin (fetched from PyPI into pip's isolated
# build environment) in release mode; CARGO_TARGET_DIR is honoured.
set -eu
root=$(CDPATH= cd -- "$(dirname -- "$0")/../../.." && pwd)
python=${1:-"$root/.tpkg/python"}
[ $# -gt 0 ] && shift
"$python" -m pip install --quiet --disable-pip-version-check pytest
"$python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$root/crates/python"
cd "$root/crates/python"
exec "$python" -m pytest -q -W ignore::UserWarning tests "$@"
