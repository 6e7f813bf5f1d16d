# Sourced by the scripts: install what a fresh machine lacks. Idempotent.

ensure_rust_tools() {
    if ! command -v cargo >/dev/null; then
        echo "cargo is required (install Rust with rustup)" >&2
        exit 1
    fi
    # rustfmt and clippy ship as rustup components; add them if this toolchain lacks them.
    if command -v rustup >/dev/null; then
        cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
        cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
    fi
}
