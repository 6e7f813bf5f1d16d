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

apt_updated=""
apt_install() {
    if [ "$(id -u)" != 0 ]; then
        echo "missing: $* (install them, or run as root so this script can)" >&2
        exit 1
    fi
    [ -n "$apt_updated" ] || { apt-get update -qq; apt_updated=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Node and npm build the pages and drive the browser tests.
ensure_node() {
    command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
}

# Debian's Chromium for the browser tests (never a browser downloaded by a test tool).
ensure_chromium() {
    [ -x /usr/bin/chromium ] || apt_install chromium
}

# gdb's gcore, for the test that inspects a core dump of the live relay.
ensure_gdb() {
    command -v gcore >/dev/null || apt_install gdb
}

# Debian's nats-server: the multi-node tests join relay processes through a real one on
# loopback (with TLS and NKeys); nothing else uses it.
ensure_nats() {
    command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || apt_install nats-server
}

# Debian's coturn (`turnserver`): the browser test of calls through TURN starts one on
# loopback. Installing the package may also start its system service where systemd runs;
# the tests use their own instance on free ports with their own configuration. openssl makes
# the TURN-over-TLS test's throwaway certificate.
ensure_coturn() {
    command -v turnserver >/dev/null || apt_install coturn
    command -v openssl >/dev/null || apt_install openssl
}
