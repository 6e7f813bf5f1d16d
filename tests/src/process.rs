//! The relay as a separate process, for the tests that kill it or read its memory.

use crate::TestOrg;

/// The relay as a separate process (the `relay-under-test` binary, whose path only an
/// integration test knows: pass `env!("CARGO_BIN_EXE_relay-under-test")`), for tests that
/// kill it or dump its memory.
pub struct RelayProcess {
    /// The process.
    pub child: std::process::Child,
    /// Its WebSocket URL.
    pub url: String,
}

impl RelayProcess {
    /// Start it for `org` with its store at `store`; returns once it listens.
    pub fn start(binary: &str, org: &TestOrg, store: &std::path::Path) -> RelayProcess {
        use std::io::BufRead;
        let mut child = std::process::Command::new(binary)
            .env("APPRODO_TEST_ORG_SEED", hex::encode(*org.key.seed()))
            .env("APPRODO_TEST_STORE", store)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the relay process");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .expect("listening line");
        RelayProcess {
            url: format!("ws://{addr}/ws"),
            child,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kill it with SIGKILL, as a crash would, and reap it.
    pub fn sigkill(mut self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).expect("kill");
        self.child.wait().expect("reaped");
    }
}
