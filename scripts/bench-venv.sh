#!/usr/bin/env bash
# Creates (idempotently) the Python virtual environment that the cluster-tier benchmark
# anchors run in (Celery, Dramatiq, RQ on Redis; see
# crates/concur-cli/src/bench/cluster_anchors.md), with the exact versions pinned in
# scripts/bench-requirements.txt, and prints the venv's python path on its last line.
#
#   ./scripts/bench-venv.sh                   venv at target/bench-venv
#   CONCUR_BENCH_VENV=/some/dir ./scripts/bench-venv.sh
#   CONCUR_BENCH_PYTHON=python3.12 ...        the interpreter to create it with
#                                             (default python3; needs >= 3.10)
#
# On a fresh Debian machine `python3 -m venv` fails until python3-venv is installed:
# when it does and we are root, the script installs it with apt-get (saying so on
# stderr) and tries again. A second run with the same requirements does nothing but
# check the venv and print its python.
set -euo pipefail
cd "$(dirname "$0")/.."

REQS="scripts/bench-requirements.txt"
VENV="${CONCUR_BENCH_VENV:-target/bench-venv}"
PY="${CONCUR_BENCH_PYTHON:-python3}"

say() { printf 'bench-venv: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

[ -f "$REQS" ] || die "$REQS not found"
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac
VPY="$VENV/bin/python"

# The interpreter exists and is new enough?
check_python() {
    command -v "$PY" >/dev/null 2>&1 || return 1
    "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 3)'
}

# A venv we may reuse: its python runs and has pip.
venv_usable() {
    [ -x "$VPY" ] && "$VPY" -m pip --version >/dev/null 2>&1
}

# Remove a broken venv, but only a directory that is one (has pyvenv.cfg).
remove_broken_venv() {
    if [ -e "$VENV" ]; then
        if [ -f "$VENV/pyvenv.cfg" ]; then
            say "removing the incomplete venv at $VENV"
            rm -rf -- "$VENV"
        else
            die "$VENV exists but is not a virtual environment; remove it or set CONCUR_BENCH_VENV"
        fi
    fi
}

make_venv() {
    mkdir -p "$(dirname "$VENV")"
    "$PY" -m venv "$VENV" >&2 && venv_usable
}

apt_install_venv() {
    if [ "$(id -u)" != 0 ]; then
        return 1
    fi
    command -v apt-get >/dev/null 2>&1 || return 1
    say "'$PY -m venv' failed: installing python3-venv with apt-get (we are root)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || return 1
    apt-get install -y -qq python3-venv >&2 || return 1
}

if ! venv_usable; then
    if ! check_python; then
        rc=0; check_python || rc=$?
        if [ "$rc" = 3 ]; then
            die "$PY is $("$PY" -c 'import sys; print(sys.version.split()[0])'); Celery 5.7, Dramatiq 2.2 and RQ 3.0 need Python >= 3.10 (set CONCUR_BENCH_PYTHON)"
        fi
        # No interpreter at all: python3-venv brings python3 with it on Debian.
        if [ "$PY" = python3 ] && apt_install_venv && check_python; then
            :
        else
            die "no usable '$PY' (Python >= 3.10) found; install Python 3 or set CONCUR_BENCH_PYTHON"
        fi
    fi
    remove_broken_venv
    say "creating a venv at $VENV with $(command -v "$PY") ($("$PY" -c 'import sys; print(sys.version.split()[0])'))"
    if ! make_venv; then
        remove_broken_venv
        if apt_install_venv && make_venv; then
            :
        else
            remove_broken_venv
            if [ "$(id -u)" != 0 ]; then
                die "'$PY -m venv' failed; install python3-venv (e.g. 'sudo apt-get install python3-venv') and run again"
            fi
            die "'$PY -m venv' failed, also after installing python3-venv"
        fi
    fi
fi

# Install (or check) the pinned set. The stamp records the requirements' digest so that
# a rerun skips pip entirely when nothing changed and the packages still import.
STAMP="$VENV/.concur-bench-requirements.sha256"
want="$("$VPY" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$REQS")"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$want" = "$have" ] && "$VPY" -c 'import celery, dramatiq, rq, redis, kombu' >/dev/null 2>&1; then
    say "up to date ($VENV)"
else
    say "installing $REQS into $VENV"
    rm -f "$STAMP"
    if ! "$VPY" -m pip install --disable-pip-version-check --no-input --require-virtualenv -q \
        -r "$REQS" >&2; then
        die "pip install -r $REQS failed (is PyPI reachable?)"
    fi
    "$VPY" -m pip check >&2 || die "pip check found broken requirements in $VENV"
    "$VPY" -c 'import celery, dramatiq, rq, redis, kombu' >&2 || die "the installed packages do not import"
    printf '%s\n' "$want" >"$STAMP"
fi
"$VPY" -c 'import celery, dramatiq, rq, redis
print("bench-venv: celery %s, dramatiq %s, rq %s, redis %s" % (celery.__version__, dramatiq.__version__, rq.__version__, redis.__version__))' >&2
printf '%s\n' "$VPY"
