# Sourced by scripts/test, scripts/demo and scripts/wheel-check: make .venv with syncd installed
# (editable) plus its test and dev extras, at the exact versions and hashes of
# requirements/lock.txt — the versions CI tested, not whatever the registry serves that day.
# Re-installs only when the lock, pyproject.toml or the version (syncd/__init__.py, which the
# installed metadata copies) changed since the last install.
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "syncd needs Python 3.11 or newer; $PYTHON is $("$PYTHON" --version 2>&1)" >&2
  exit 2
fi
# A dependency changed in pyproject.toml but not locked would install the old set and fail
# later with an import error; say what to do instead.
if ! "$PYTHON" scripts/locktool.py check; then
  exit 2
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.syncd-installed"
inputs="$(cat requirements/lock.txt pyproject.toml syncd/__init__.py | cksum)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$inputs" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    --require-hashes -r requirements/lock.txt
  # The lock holds the build backend too: building without isolation uses that tested
  # setuptools instead of fetching the newest one.
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-deps --no-build-isolation -e .
  echo "$inputs" > "$stamp"
fi
