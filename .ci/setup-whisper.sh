#!/usr/bin/env bash
# Python's whisper 1.1.10 (the reference for the store's file format) in a venv.
# Tests find it through CHARCOAL_WHISPER_PYTHON (default below).
set -euo pipefail
venv=/opt/charcoal-interop/whisper
if ! "$venv/bin/pip" show whisper 2>/dev/null | grep -qx "Version: 1.1.10"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check whisper==1.1.10
fi
"$venv/bin/python" -c "import whisper; print(\"whisper ok:\", whisper.__file__)"
