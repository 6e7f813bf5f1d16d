//! The benchmark's child processes: the relay and the echo servers run as separate
//! processes of this binary, so their memory and CPU are their own.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{Context, Result, bail};

/// A child process of this binary (a relay or an echo server) and its pipes.
pub(crate) struct ChildServer {
    pub(crate) child: Child,
    pub(crate) url: String,
    /// The address it listens on (TCP for the relay and the echo, UDP for the UDP echo).
    pub(crate) addr: String,
    pub(crate) stdin: Option<ChildStdin>,
    pub(crate) stdout: BufReader<ChildStdout>,
}

impl ChildServer {
    pub(crate) fn start(mode: &str, seed: &str) -> Result<ChildServer> {
        ChildServer::start_with(mode, seed, &[])
    }

    pub(crate) fn start_with(mode: &str, seed: &str, env: &[(&str, &str)]) -> Result<ChildServer> {
        let mut command = Command::new(std::env::current_exe()?);
        // A heap profiler for the relay alone (e.g. heaptrack's preload library, with
        // DUMP_HEAPTRACK_OUTPUT naming the raw output): the bench process stays unprofiled.
        if mode == "serve-relay"
            && let Ok(preload) = std::env::var("BENCH_RELAY_PRELOAD")
        {
            command.env("LD_PRELOAD", preload);
        }
        let mut child = command
            .arg(mode)
            .env("BENCH_ORG_SEED", seed)
            .env("APPRODO_LOG", "off")
            .env(
                "BENCH_RELAY_LOG",
                std::env::var("BENCH_RELAY_LOG").unwrap_or_else(|_| "off".into()),
            )
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut stdout = BufReader::new(child.stdout.take().context("stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .context("listening line")?
            .to_owned();
        Ok(ChildServer {
            stdin: child.stdin.take(),
            child,
            url: format!("ws://{addr}/ws"),
            addr,
            stdout,
        })
    }

    /// The relay's SFU census: (members, live peer connections, calls).
    pub(crate) fn census(&mut self) -> Result<(u64, u64, u64)> {
        let stdin = self.stdin.as_mut().context("stdin")?;
        stdin.write_all(b"census\n")?;
        stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        let fields: Vec<u64> = line
            .trim()
            .strip_prefix("census ")
            .context("census line")?
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        match fields[..] {
            [members, live, calls] => Ok((members, live, calls)),
            _ => bail!("census line"),
        }
    }

    /// CPU time (user + system, all threads) the child has used so far.
    pub(crate) fn cpu_seconds(&self) -> Result<f64> {
        crate::sfu::cpu_seconds(self.child.id())
    }

    /// The QUIC endpoint of a relay started with `BENCH_QUIC` (its second stdout line).
    pub(crate) fn quic_target(&mut self) -> Result<approdo_client::QuicTarget> {
        Ok(self.quic_and_https()?.0)
    }

    /// The QUIC endpoint and the HTTPS address (same certificate) of a relay started with
    /// `BENCH_QUIC` (its second stdout line).
    pub(crate) fn quic_and_https(
        &mut self,
    ) -> Result<(approdo_client::QuicTarget, std::net::SocketAddr)> {
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        let rest = line.trim().strip_prefix("quic ").context("quic line")?;
        let mut fields = rest.split(' ');
        let (Some(port), Some(hashes), Some(https)) = (fields.next(), fields.next(), fields.next())
        else {
            bail!("quic line");
        };
        let mut parsed = Vec::new();
        for h in hashes.split(',') {
            let mut hash = [0u8; 32];
            hex::decode_to_slice(h, &mut hash)?;
            parsed.push(hash);
        }
        Ok((
            approdo_client::QuicTarget {
                addr: format!("127.0.0.1:{port}").parse()?,
                server_name: "localhost".into(),
                trust: approdo_client::Trust::Hashes(parsed),
            },
            https.parse()?,
        ))
    }

    pub(crate) fn rss_kib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .context("VmRSS")?;
        Ok(line.split_whitespace().nth(1).context("value")?.parse()?)
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
