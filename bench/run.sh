#!/usr/bin/env bash
# run.sh -- `make bench`: every benchmark, printing markdown tables.
set -euo pipefail
cd "$(dirname "$0")"
./convert.sh
