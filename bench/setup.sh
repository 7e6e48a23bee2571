#!/usr/bin/env bash
# Creates (or reuses) the benchmark environments under <repo>/.bench/.
#
#   .bench/peers     Python 3.13: the fake-clock peers (looptime, async-solipsism, trio,
#                    aiotools if it imports on 3.13) plus time-machine, which ours needs.
#                    Ours is not installed here: bench scripts put the repo root on PYTHONPATH,
#                    so they always measure the working tree.
#   .bench/peers311  Python 3.11: aiotools and time-machine, so ours can be measured beside
#                    aiotools on the same interpreter. Created only when aiotools cannot be
#                    made to import in .bench/peers.
#   .bench/legacy    Python 3.13: chronopype==0.8.3 from PyPI. It shares our distribution name,
#                    so it gets a venv of its own.
#
# Idempotent: a venv whose stamp matches its requirement list is left alone, so a rerun takes
# a second. Delete .bench/ (or one venv in it) to rebuild from scratch.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench_dir="$repo_root/.bench"
mkdir -p "$bench_dir"

# Versions are pinned so that numbers from different days compare like with like.
PEER_REQUIREMENTS=(
    "looptime==0.9"
    "async-solipsism==0.10"
    "trio==0.35.0"
    "aiotools==2.2.4"
    "time-machine==3.6.0"
    "pytest==9.0.1"
)
AIOTOOLS_MISSING_DEPENDENCY="typing_extensions==4.16.0"
PEERS311_REQUIREMENTS=(
    "aiotools==2.2.4"
    "$AIOTOOLS_MISSING_DEPENDENCY"
    "time-machine==3.6.0"
)
LEGACY_REQUIREMENTS=(
    "chronopype==0.8.3"
)

log() { printf '[bench/setup] %s\n' "$*" >&2; }

# pip, quietly: this machine's pip config names local index folders that may not exist, and pip
# warns about each of them for every package.
pip_install() {
    local python="$1"
    shift
    "$python" -m pip install --quiet --disable-pip-version-check "$@" \
        2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

# Prints the path of a working interpreter for version $1 (e.g. 3.13), or fails.
# pyenv's shims refuse versions that are not selected globally, so the shim is probed by running
# it, and pyenv's versions directory is the fallback.
find_python() {
    local version="$1" candidate
    local candidates=("python$version")
    local pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
    for candidate in "$pyenv_root"/versions/"$version".*/bin/python"$version"; do
        [[ -x "$candidate" ]] && candidates+=("$candidate")
    done
    for candidate in "${candidates[@]}"; do
        if "$candidate" -c 'import sys; sys.exit(0)' >/dev/null 2>&1; then
            command -v "$candidate"
            return 0
        fi
    done
    log "no working Python $version found (tried: ${candidates[*]})"
    return 1
}

# ensure_venv NAME PYTHON_VERSION REQUIREMENT...
ensure_venv() {
    local name="$1" version="$2"
    shift 2
    local venv="$bench_dir/$name"
    local stamp="$venv/.bench-stamp"
    local wanted
    wanted="$(printf '%s\n' "python $version" "$@")"
    if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
        log "$name: up to date"
        return 0
    fi
    local python
    python="$(find_python "$version")"
    if [[ ! -x "$venv/bin/python" ]]; then
        log "$name: creating venv with $python"
        "$python" -m venv "$venv"
    fi
    log "$name: installing $*"
    pip_install "$venv/bin/python" "$@"
    printf '%s' "$wanted" >"$stamp"
}

# Succeeds when aiotools' VirtualClock imports in the given venv; prints the error otherwise.
aiotools_imports() {
    "$bench_dir/$1/bin/python" -c 'from aiotools import VirtualClock' 2>&1 >/dev/null | tail -n 1
    return "${PIPESTATUS[0]}"
}

ensure_venv peers 3.13 "${PEER_REQUIREMENTS[@]}"
ensure_venv legacy 3.13 "${LEGACY_REQUIREMENTS[@]}"

# aiotools 2.2.4 imports typing_extensions without declaring it, so a clean install does not
# import. The outcome of the clean import is recorded once (bench/fake_clock.py prints it), then
# the missing module is added so that aiotools can be measured at all.
clean_import_record="$bench_dir/peers/aiotools-clean-import.txt"
if [[ ! -f "$clean_import_record" ]]; then
    if aiotools_error="$(aiotools_imports peers)"; then
        printf 'ok\n' >"$clean_import_record"
    else
        printf '%s\n' "$aiotools_error" >"$clean_import_record"
    fi
fi
if ! aiotools_imports peers >/dev/null; then
    log "aiotools does not import on a clean Python 3.13 ($(cat "$clean_import_record"));"
    log "adding its undeclared dependency $AIOTOOLS_MISSING_DEPENDENCY"
    pip_install "$bench_dir/peers/bin/python" "$AIOTOOLS_MISSING_DEPENDENCY"
fi

# Fallback for an aiotools that cannot run on 3.13 at all: measure it (and ours, for a fair
# ratio) on 3.11.
if aiotools_error="$(aiotools_imports peers)"; then
    log "aiotools imports in .bench/peers (Python 3.13)"
else
    log "aiotools still does not import on Python 3.13: $aiotools_error"
    ensure_venv peers311 3.11 "${PEERS311_REQUIREMENTS[@]}"
    if ! aiotools_error="$(aiotools_imports peers311)"; then
        log "aiotools does not import on Python 3.11 either: $aiotools_error"
    fi
fi

log "done: $(cd "$bench_dir" && ls -d */ | tr -d / | tr '\n' ' ')"
