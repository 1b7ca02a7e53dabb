#!/usr/bin/env bash
# Prints the path of the native CPython built from the same Debian source as the
# guest (the fairest native baseline for benchmarks).
source "$(dirname "$0")/common.sh"
echo "$(native_python_dir)/python"
