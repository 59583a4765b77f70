#!/usr/bin/env bash
# Installs what the tests need and runs the whole suite: ruff (lint + format), mypy, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/python -m pytest -q "$@"
