#!/usr/bin/env bash
# The whole concur test suite, from a fresh Debian machine with rustup's Rust toolchain:
# installs what it needs (rustfmt, clippy, nightly Miri, Debian's redis-server), then
# runs every check the project guards correctness with. `.ci/run` calls exactly this
# script. The cluster tier's tests start their own redis-server instances on free
# loopback ports in temporary directories; no system Redis service is used.
#
#   ./scripts/test.sh           everything (about 27 minutes on 2 cores from a clean clone)
#   CONCUR_TEST_FAST=1 ...      skip Miri, loom and the fuzz smoke runs (a quick local
#                               loop; CI never sets it)
#   CONCUR_TEST_TSAN=1 ...      also run a ThreadSanitizer subset (scripts/tsan.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

start=$(date +%s)
last=$start
# Each step says how long the one before it took (the README quotes these).
step() {
    local now
    now=$(date +%s)
    [ "$now" != "$start" ] && printf '    (%d s)\n' $(( now - last ))
    last=$now
    printf '\n==> %s [%d s in]\n' "$*" $(( now - start ))
}

step "toolchain"
if ! command -v cargo >/dev/null; then
    echo "cargo not found: install Rust with rustup first (https://rustup.rs)" >&2
    exit 1
fi
if command -v rustup >/dev/null; then
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
    if [ -z "${CONCUR_TEST_FAST:-}" ]; then
        if ! cargo +nightly miri --version >/dev/null 2>&1; then
            rustup toolchain install nightly --profile minimal >/dev/null 2>&1 || true
            rustup component add --toolchain nightly miri rust-src >/dev/null 2>&1 || true
        fi
        # cargo-fuzz (the fuzz smoke runs) and rust-src (TSan's -Zbuild-std).
        if ! rustup component list --toolchain nightly --installed 2>/dev/null | grep -q rust-src; then
            rustup component add --toolchain nightly rust-src >/dev/null 2>&1 || true
        fi
    fi
fi
cargo --version

step "system packages the tests need (installed from Debian when missing)"
# redis-server: the cluster tests start private instances of it; python3: the tour's
# seed programs and the Python anchors; iproute2: the network-namespace test; openssl:
# the TLS test's certificates; chromium: the report screenshot. A piece that is missing
# and cannot be installed fails the suite here: nothing is skipped.
apt_install() {
    local sudo=""
    [ "$(id -u)" = 0 ] || { command -v sudo >/dev/null && sudo=sudo; } || return 0
    if [ -z "${apt_updated:-}" ]; then
        $sudo apt-get update -qq && apt_updated=1
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
have() { command -v "$1" >/dev/null || [ -x "/usr/bin/$1" ] || [ -x "/usr/sbin/$1" ]; }
missing=()
for pair in redis-server:redis-server python3:python3 ip:iproute2 openssl:openssl \
    chromium:chromium; do
    have "${pair%%:*}" || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian's ${missing[*]}"
    apt_install "${missing[@]}" || true
fi
for cmd in redis-server python3 ip openssl chromium; do
    if ! have "$cmd"; then
        echo "$cmd is missing and could not be installed: the tests that need it cannot run" >&2
        exit 1
    fi
done
redis-server --version

step "rustfmt"
cargo fmt --all -- --check

step "module layering (no import circles inside a folder; every folder's order printed)"
cargo test --locked -p concur --test module_layers -- --nocapture

step "clippy (-D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "the process tier without the manager (--no-default-features --features process)"
cargo check --locked -p concur -p concur-process -p concur-core --no-default-features \
    --features concur/process --all-targets

step "docs (cargo doc --workspace --no-deps, warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

step "unit, integration and doc tests"
cargo test --workspace --locked
# The umbrella crate's cluster re-exports (feature `cluster`, off by default), and the
# cluster tier over TLS (feature `tls`: a rediss:// executor and worker).
cargo test --locked -p concur --features cluster --test reexports
cargo test --locked -p concur-cluster --features tls --test tls

step "the tour's HTML report in headless Chromium (screenshot kept as evidence)"
# concur-cli's tour test wrote target/tmp/tour-report/tour.html and checked its numbers
# against the --json document of the same run; here a browser renders it.
scripts/report-screenshot.sh target/tmp/tour-report/tour.html

step "examples (each run to completion, bounded)"
cargo build --release --locked -p concur --features cluster --examples
for src in crates/concur/examples/*.rs; do
    name=$(basename "$src" .rs)
    echo "--- example $name"
    timeout 300 "target/release/examples/$name"
done

step "concur tour --quick"
cargo build --release --locked -p concur-cli
timeout 300 target/release/concur tour --quick

step "benchmark smoke runs"
timeout 300 target/release/concur bench --quick --runs 1 >/dev/null
timeout 300 target/release/concur bench --suite pool --quick >/dev/null
timeout 300 target/release/concur bench --suite manager --quick >/dev/null
timeout 300 target/release/concur bench --suite cluster --quick >/dev/null
# The manager's per-connection cost (docs/BENCHMARKS.md, issue 14), at smoke size.
CONCUR_BENCH_CONNS=200 timeout 600 cargo test --release --locked -p concur-process \
    --test manager_hostile -- --ignored per_connection >/dev/null
# The scaling suite (not part of `all`): a few seconds at smoke size; charts into a temp dir.
scaling_charts=$(mktemp -d)
timeout 120 target/release/concur bench --suite scaling --quick --runs 1 --charts "$scaling_charts" >/dev/null
test -s "$scaling_charts/map.svg" && test -s "$scaling_charts/io.svg" && test -s "$scaling_charts/start.svg"
rm -rf "$scaling_charts"
timeout 600 cargo bench --locked -p concur-core --bench lock -- --test
timeout 600 cargo bench --locked -p concur-core --bench futures -- --test

step "ready to publish: cargo publish --dry-run of every library crate"
# Packages and builds each crate as crates.io would (workspace publishing resolves the
# crates on each other locally); nothing is uploaded.
cargo publish --dry-run --locked --workspace --exclude concur-cli --allow-dirty

step "the declared rust-version builds (the workspace's rust-version, libraries and binary)"
msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
if command -v rustup >/dev/null && ! rustup run "$msrv" rustc --version >/dev/null 2>&1; then
    rustup toolchain install "$msrv" --profile minimal >/dev/null
fi
CARGO_TARGET_DIR=target/msrv cargo +"$msrv" check --locked --workspace --lib --bins

if [ -z "${CONCUR_TEST_FAST:-}" ]; then
    step "loom models (--cfg concur_loom)"
    RUSTFLAGS="--cfg concur_loom" CARGO_TARGET_DIR=target/loom \
        timeout 1200 cargo test --locked -p concur-core --release --test 'loom_*'
    # concur-process: the pool's task words and the queue ring (unit tests named loom_*)
    RUSTFLAGS="--cfg concur_loom" CARGO_TARGET_DIR=target/loom \
        timeout 1200 cargo test --locked -p concur-process --release --lib loom_

    step "fuzz smoke runs (cargo-fuzz, nightly; each target from its seeds, docs/FUZZING.md)"
    command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
    (
        cd fuzz
        cargo +nightly fuzz build -O
        for t in $(cargo +nightly fuzz list); do
            echo "--- fuzz $t"
            mkdir -p "corpus/$t"
            log="target/fuzz-smoke-$t.log"
            if ! timeout 300 cargo +nightly fuzz run -O "$t" "corpus/$t" "seeds/$t" -- \
                -runs=20000 -max_total_time=20 -print_final_stats=1 >"../$log" 2>&1; then
                tail -60 "../$log"
                echo "fuzz target $t failed (its log: $log)" >&2
                exit 1
            fi
            grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units)' "../$log" || true
        done
    )

    # ThreadSanitizer rebuilds the standard library and every dependency instrumented:
    # over the suite's budget on 2 cores (docs/FUZZING.md), so only on request.
    if [ -n "${CONCUR_TEST_TSAN:-}" ]; then
        step "ThreadSanitizer (subset: concur-core's unit tests, the process pool and queue; scripts/tsan.sh)"
        CONCUR_TSAN_SMOKE=1 timeout 3600 ./scripts/tsan.sh
    fi

    step "Miri on concur-core"
    cargo +nightly miri --version
    CARGO_TARGET_DIR=target/miri \
        timeout 2400 cargo +nightly miri test --locked -p concur-core
fi

step "done in $(( $(date +%s) - start )) s"
