#!/usr/bin/env bash
# The package as a user gets it: build the wheel, install it into a clean venv and, from outside
# the source tree, run a study's plan and the demo. Usage: .ci/wheel_check.sh [PYTHON]
# (PYTHON: the project's venv interpreter, default .venv/bin/python). The study's data are read from
# $FEATUREKIT_SHARED (default ../shared), as the tests read them.
#
# The clean venv gets the third-party dependencies through a .pth line naming the project venv's
# site-packages (installing torch a second time would take minutes); featurekit itself comes only
# from the wheel: a .pth line adds a folder to sys.path without running the .pth files in it, so
# the project venv's editable featurekit is not importable there (checked below).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PY=${1:-.venv/bin/python}
[[ $PY = /* ]] || PY=$REPO/$PY  # absolute, not resolved: a venv's python is a link to the base one
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fk-wheel.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# build from a copy of the tree: a build/ folder left in the checkout could carry stale modules
mkdir "$TMP/src"
tar -cf - --exclude=__pycache__ pyproject.toml setup.py MANIFEST.in README.md featurekit pipelines | tar -xf - -C "$TMP/src"
# with build isolation, as a user's pip builds it: the build-system requirements of pyproject.toml
"$PY" -m pip wheel --quiet --no-deps --wheel-dir "$TMP/dist" "$TMP/src"

"$PY" -m venv --without-pip "$TMP/venv"
"$PY" -m pip --python "$TMP/venv/bin/python" install --quiet --no-deps "$TMP"/dist/featurekit-*.whl
deps=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
site=$("$TMP/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$deps" > "$site/project-deps.pth"

mkdir "$TMP/work" && cd "$TMP/work"
"$TMP/venv/bin/python" - "$TMP/venv" <<'PY'
import sys
from pathlib import Path

import featurekit
from featurekit.studies.study import shipped_studies

venv = Path(sys.argv[1]).resolve()
where = Path(featurekit.__file__).resolve()
assert venv in where.parents, f"featurekit imported from {where}, not from the wheel in {venv}"
studies = shipped_studies()
assert studies and all(venv in p.resolve().parents for p in studies.values()), studies
print(f"wheel: featurekit {featurekit.__version__} from {where.parent}; studies: {', '.join(studies)}")
PY
SHARED=$(realpath "${FEATUREKIT_SHARED:-$REPO/../shared}")
"$TMP/venv/bin/featurekit" run two_stage_transfer --dry-run \
    --set "busi=$SHARED/data/busi" --set "mias=$SHARED/data/mini_mias" > "$TMP/plan.txt"
echo "wheel: featurekit run two_stage_transfer --dry-run: $(wc -l < "$TMP/plan.txt") lines of plan"
"$TMP/venv/bin/featurekit" demo --quiet --out "$TMP/work/runs/demo" --cache "$TMP/work/demo.h5"
test -f "$TMP/work/runs/demo/report.html"
echo "wheel: featurekit demo wrote $(ls "$TMP/work/runs/demo" | wc -l) files in runs/demo"
