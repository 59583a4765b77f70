#!/usr/bin/env bash
# Installs Madoguchi and runs it on embedded defaults (SQLite, in-process SFU, local mail outbox),
# printing a demo consultation with its join links. Extra arguments go to `madoguchi serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/madoguchi serve --demo "$@"
