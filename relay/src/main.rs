//! `approdo-relay`: run the relay (with a demo organisation by default) and manage the
//! organisation's keys.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use approdo_core::identity::Role;
use approdo_core::ids::Tag;
use approdo_relay::Listeners;
use approdo_relay::admin::{self, StaffSpec};
use approdo_relay::config::{ConfigFile, NodeOverrides};
use approdo_relay::quic::QuicListener;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "approdo-relay",
    version,
    about = "The Approdo relay and its admin commands"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Start with a fresh demo organisation and demo staff credentials (the default).
    Demo {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Where to write the demo credential files.
        #[arg(long, default_value = "demo-credentials")]
        credentials: PathBuf,
        /// UDP port for call media: shard `i` of the SFU uses this port + `i` (one shard per
        /// core unless `--sfu-shards`); 0 picks free ports.
        #[arg(long, default_value_t = 40000)]
        sfu_port: u16,
        /// SFU shards (threads, each with one UDP port); 0: one per core.
        #[arg(long, default_value_t = 0)]
        sfu_shards: usize,
        /// UDP address of the QUIC endpoint (native clients and WebTransport); default:
        /// the listen address's IP with an ephemeral port, printed at start.
        #[arg(long)]
        quic_listen: Option<SocketAddr>,
        /// Serve WebSocket only.
        #[arg(long)]
        no_quic: bool,
        /// Tell clients (in `/config.json`) this UDP port instead of the bound one: a
        /// firewall or NAT forwards it (tests announce a port where nothing answers).
        #[arg(long)]
        quic_announce_port: Option<u16>,
        /// A code word that, typed on the person's page, sends the silent "I cannot talk
        /// now" signal instead of a message (see `not_safe_word` in the example config).
        #[arg(long)]
        not_safe_word: Option<String>,
        /// Also serve HTTPS here, with the demo's self-signed certificate (browsers warn:
        /// the pages are meant for the plain loopback address above).
        #[arg(long)]
        https_listen: Option<SocketAddr>,
        /// Where the person's quick exit lands (see `quick_exit_url` in the example config).
        #[arg(long)]
        quick_exit_url: Option<String>,
        /// Serve Prometheus metrics (`GET /metrics`, counts only) here; default: loopback
        /// with an ephemeral port, printed at start.
        #[arg(long)]
        metrics_listen: Option<SocketAddr>,
        /// A TURN URL to hand to call members whose direct connection failed (repeat for
        /// several); needs `--turn-secret-file` (see `[turn]` in the example config).
        #[arg(long = "turn-url")]
        turn_urls: Vec<String>,
        /// The file holding the secret shared with the TURN server (coturn's
        /// `static-auth-secret`).
        #[arg(long)]
        turn_secret_file: Option<PathBuf>,
    },
    /// Serve with a configuration file.
    Serve {
        /// TOML configuration (see deploy/relay.example.toml).
        #[arg(long)]
        config: PathBuf,
        /// This node's bus name, instead of the file's `[bus] node`: several nodes can then
        /// share one file (one Kubernetes ConfigMap), each started with its own name
        /// (1 to 32 of a-z, 0-9 and -).
        #[arg(long, value_name = "NAME")]
        bus_node: Option<String>,
        /// This node's NKey seed file, instead of the file's `[bus] nkey_seed_file`.
        #[arg(long, value_name = "PATH")]
        bus_seed_file: Option<PathBuf>,
        /// The node's address for call media, instead of the file's `[sfu] bind_ip`: each
        /// node has its own (Kubernetes: the pod's `status.hostIP` on the host network).
        #[arg(long, value_name = "IP")]
        sfu_bind_ip: Option<IpAddr>,
        /// The address announced for call media behind a 1:1 NAT, instead of the file's
        /// `[sfu] public_ip`.
        #[arg(long, value_name = "IP")]
        sfu_public_ip: Option<IpAddr>,
    },
    /// Organisation key and staff credential management.
    Admin {
        #[command(subcommand)]
        action: Admin,
    },
}

#[derive(Subcommand)]
enum Admin {
    /// Create the organisation key; prints the public key to pin.
    OrgKey {
        /// Key file to create (kept offline, mode 0600).
        #[arg(long)]
        out: PathBuf,
    },
    /// Issue a staff credential (keys and certificate, sealed under a passphrase).
    Issue {
        /// Organisation key file.
        #[arg(long)]
        org_key: PathBuf,
        /// operator, interpreter or coordinator.
        #[arg(long)]
        role: String,
        /// Label shown to colleagues (not a full name).
        #[arg(long)]
        label: String,
        /// Desk ids (repeat).
        #[arg(long = "desk")]
        desks: Vec<String>,
        /// Language tags (repeat).
        #[arg(long = "lang")]
        languages: Vec<String>,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: u64,
        /// Credential file to write.
        #[arg(long)]
        out: PathBuf,
        /// Read the passphrase from this environment variable instead of generating one.
        #[arg(long)]
        passphrase_env: Option<String>,
    },
    /// Create a relay node's NKey for the bus (several nodes): writes its seed (mode 0600)
    /// and prints the NATS server's user entry for it, with the node's permissions.
    BusNode {
        /// The node's name (the `[bus] node` of its configuration).
        #[arg(long)]
        node: String,
        /// Seed file to create (the `[bus] nkey_seed_file`).
        #[arg(long)]
        out: PathBuf,
    },
    /// Revoke certificate serials; rewrites the signed revocation list.
    Revoke {
        /// Organisation key file.
        #[arg(long)]
        org_key: PathBuf,
        /// Revocation list file (created if missing).
        #[arg(long)]
        list: PathBuf,
        /// Serials to revoke.
        #[arg(required = true)]
        serials: Vec<u64>,
    },
}

fn init_logs() {
    approdo_relay::init_logs();
}

/// A core dump of the relay would hold session keys and frames in transit: forbid them for
/// this process, whatever the service manager or shell allowed.
fn forbid_core_dumps() {
    #[cfg(target_os = "linux")]
    {
        let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
        let _ = nix::sys::prctl::set_dumpable(false);
    }
}

fn main() -> Result<()> {
    forbid_core_dumps();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Demo {
        listen: "127.0.0.1:8080".parse().expect("static address"),
        credentials: "demo-credentials".into(),
        sfu_port: 40000,
        sfu_shards: 0,
        quic_listen: None,
        no_quic: false,
        quic_announce_port: None,
        not_safe_word: None,
        https_listen: None,
        quick_exit_url: None,
        metrics_listen: None,
        turn_urls: Vec::new(),
        turn_secret_file: None,
    }) {
        Command::Demo {
            listen,
            credentials,
            sfu_port,
            sfu_shards,
            quic_listen,
            no_quic,
            quic_announce_port,
            not_safe_word,
            https_listen,
            quick_exit_url,
            metrics_listen,
            turn_urls,
            turn_secret_file,
        } => {
            init_logs();
            let turn = match (turn_urls.is_empty(), turn_secret_file) {
                (true, None) => None,
                (false, Some(secret_file)) => Some(approdo_relay::turn::TurnConfigFile {
                    urls: turn_urls,
                    secret_file,
                    lifetime_secs: approdo_relay::turn::DEFAULT_LIFETIME_SECS,
                }),
                _ => anyhow::bail!("--turn-url and --turn-secret-file go together"),
            };
            let quic = (!no_quic).then(|| {
                (
                    quic_listen.unwrap_or(SocketAddr::new(listen.ip(), 0)),
                    quic_announce_port,
                )
            });
            let addresses = DemoAddresses {
                listen,
                https: https_listen,
                quic,
                metrics: metrics_listen
                    .unwrap_or(SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0))),
            };
            demo(
                addresses,
                credentials,
                (sfu_port, sfu_shards),
                not_safe_word,
                quick_exit_url,
                turn,
            )
        }
        Command::Serve {
            config,
            bus_node,
            bus_seed_file,
            sfu_bind_ip,
            sfu_public_ip,
        } => {
            init_logs();
            let overrides = NodeOverrides {
                bus_node,
                bus_seed_file,
                sfu_bind_ip,
                sfu_public_ip,
            };
            serve(config, overrides)
        }
        Command::Admin { action } => admin_command(action),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Where the demo listens.
struct DemoAddresses {
    /// Plain HTTP and WebSocket.
    listen: SocketAddr,
    /// HTTPS, when asked for.
    https: Option<SocketAddr>,
    /// QUIC, and the port to announce instead of the bound one; `None`: WebSocket only.
    quic: Option<(SocketAddr, Option<u16>)>,
    /// The metrics listener.
    metrics: SocketAddr,
}

fn demo(
    addresses: DemoAddresses,
    credentials: PathBuf,
    (sfu_port, sfu_shards): (u16, usize),
    not_safe_word: Option<String>,
    quick_exit_url: Option<String>,
    turn: Option<approdo_relay::turn::TurnConfigFile>,
) -> Result<()> {
    let DemoAddresses {
        listen,
        https: https_listen,
        quic,
        metrics: metrics_listen,
    } = addresses;
    let (org, staff) = admin::write_demo_organisation(&credentials)?;
    let store = tempfile::Builder::new()
        .prefix("approdo-store-")
        .tempdir()?;
    let mut config = admin::demo_config(&org, store.path().join("sessions"));
    config.sfu.udp_port = sfu_port;
    config.sfu.shards = sfu_shards;
    config.not_safe_word = not_safe_word;
    config.quick_exit_url = quick_exit_url;
    config.turn = match &turn {
        Some(t) => Some(approdo_relay::turn::Turn::load(t)?),
        None => None,
    };
    if !listen.ip().is_unspecified() {
        config.sfu.bind_ip = listen.ip();
    }
    // The self-signed certificate QUIC and HTTPS use; its names cover loopback, plus the
    // address the demo listens on when it is another one.
    let hosts = [Some(listen.ip()), https_listen.map(|a| a.ip())]
        .into_iter()
        .flatten()
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
        .map(|ip| ip.to_string())
        .collect();
    config.tls = Some(approdo_relay::tls::TlsSource::SelfSigned { hosts });
    drop(org); // the demo key is not needed once the credentials exist
    let org_hex = hex::encode(config.org.0);
    runtime()?.block_on(async move {
        let mut relay = approdo_relay::Relay::new(config.clone())?;
        let http = tokio::net::TcpListener::bind(listen).await.context("binding the listen address")?;
        let addr = http.local_addr()?;
        let https_addr = match https_listen {
            Some(a) => {
                let https = tokio::net::TcpListener::bind(a).await.context("binding the HTTPS address")?;
                let addr = https.local_addr()?;
                relay.serve_https(https)?;
                Some(addr)
            }
            None => None,
        };
        let metrics = tokio::net::TcpListener::bind(metrics_listen)
            .await
            .context("binding the metrics address")?;
        let metrics_addr = metrics.local_addr()?;
        relay.serve_metrics(metrics);
        let quic_port = match quic {
            Some((q, announce)) => {
                let mut l = QuicListener::bind(q).context("binding the QUIC (UDP) address")?;
                l.advertised_port = announce;
                let port = l.advertised_port();
                relay.serve_quic(l)?;
                Some(port)
            }
            None => None,
        };
        println!("Approdo demo relay");
        println!("  person's page       http://{addr}/");
        println!("  staff desk          http://{addr}/desk");
        println!("  organisation key    {org_hex}");
        println!("  ephemeral store     {} (deleted on exit)", store.path().display());
        let desks: Vec<&str> = config.desks.iter().map(|d| d.id.as_str()).collect();
        println!("  desks               {}", desks.join(", "));
        let shards = config.sfu.shard_count();
        match config.sfu.udp_port {
            0 => println!("  call media          udp {} (free ports, {shards} shards)", config.sfu.bind_ip),
            p => println!(
                "  call media          udp {}:{}-{} ({shards} shards)",
                config.sfu.bind_ip,
                p,
                usize::from(p) + shards - 1
            ),
        }
        if let Some(https) = https_addr {
            println!("  https (self-signed) https://{https}/");
        }
        if let Some(port) = quic_port {
            println!(
                "  quic (udp)          {}:{port} (native approdo/1, WebTransport {})",
                addr.ip(),
                approdo_relay::quic::WT_PATH
            );
        }
        println!(
            "  metrics             http://{metrics_addr}{} (Prometheus, counts only; keep it private)",
            approdo_relay::metrics::PATH
        );
        if let Some(certificates) = relay.certificates() {
            let hashes: Vec<String> =
                certificates.web_transport_hashes().iter().map(hex::encode).collect();
            println!("  certificate sha256  {} (self-signed, renewed every {:.1} days; next {})",
                hashes.first().map_or("none", String::as_str),
                approdo_relay::tls::RENEW_EVERY.as_secs_f64() / 86_400.0,
                hashes.get(1).map_or("none", String::as_str));
        }
        if let Some(hash) = relay.bundle_hash() {
            println!("  bundle hash         {hash} (changes at each certificate renewal)");
        }
        if !approdo_relay::pages::built() {
            println!("  (web pages not built: run scripts/build-web, then rebuild the relay)");
        }
        println!("Demo staff credentials (load them in the desk page, or use `approdo`):");
        for s in &staff {
            println!(
                "  {:<12} {:<20} file {}  passphrase {}",
                s.spec.role.as_str(),
                s.spec.label,
                s.path.display(),
                s.passphrase
            );
        }
        println!("In a terminal:");
        println!("  target/release/approdo --relay ws://{addr}/ws --org {org_hex} person --language en");
        println!(
            "  PASS={} target/release/approdo --relay ws://{addr}/ws --org {org_hex} staff --credential {} --passphrase-env PASS",
            staff[0].passphrase,
            staff[0].path.display()
        );
        println!("listening {addr}");
        if let Some(port) = quic_port {
            println!("quic port {port}");
        }
        relay.run(Listeners::http(http), shutdown_signal()).await?;
        drop(store);
        Ok(())
    })
}

fn serve(path: PathBuf, overrides: NodeOverrides) -> Result<()> {
    let mut file =
        ConfigFile::read(&path).with_context(|| format!("reading {}", path.display()))?;
    file.override_node(overrides)
        .context("applying the command line's node settings")?;
    let approdo_relay::config::Loaded {
        config,
        listen,
        https_listen,
        metrics_listen,
        quic_listen,
        quic_advertised_port,
        revocations_path,
    } = file.load().context("loading the configuration")?;
    runtime()?.block_on(async move {
        let store_dir = config.store_dir.clone();
        let mut relay = approdo_relay::Relay::new(config)?;
        // Not secret: what the organisation publishes so anyone can check the pages, its
        // key and its revocation list (scripts/bundle-hash URL recomputes it).
        tracing::info!(
            bundle_hash = relay.bundle_hash().as_deref().unwrap_or("none"),
            "serving pages"
        );
        if let Some(c) = relay.certificates().filter(|c| c.is_self_signed()) {
            tracing::info!(
                certificate_sha256 = %hex::encode(c.current_hash()),
                "self-signed certificate; the bundle hash changes at each renewal"
            );
        }
        #[cfg(unix)]
        {
            let reloader =
                approdo_relay::hangup::reload_on_hangup(relay.inspector(), Some(revocations_path))
                    .context("listening for SIGHUP (reloads)")?;
            relay.supervise("reloader", reloader);
        }
        #[cfg(not(unix))]
        let _ = revocations_path;
        let http = tokio::net::TcpListener::bind(listen)
            .await
            .context("binding the listen address")?;
        if let Some(addr) = https_listen {
            let https = tokio::net::TcpListener::bind(addr)
                .await
                .context("binding the HTTPS address")?;
            relay.serve_https(https)?;
        }
        if let Some(addr) = metrics_listen {
            let metrics = tokio::net::TcpListener::bind(addr)
                .await
                .context("binding the metrics address")?;
            relay.serve_metrics(metrics);
            tracing::info!("serving metrics on metrics_listen");
        }
        if let Some(addr) = quic_listen {
            let mut l = QuicListener::bind(addr).context("binding the QUIC (UDP) address")?;
            l.advertised_port = quic_advertised_port;
            relay.serve_quic(l)?;
            tracing::info!(
                bundle_hash = relay.bundle_hash().as_deref().unwrap_or("none"),
                "serving QUIC; the bundle hash lists its port"
            );
        }
        let result = relay.run(Listeners { http }, shutdown_signal()).await;
        // `run` wiped the store; make sure of it whatever happened.
        remove_store(&store_dir);
        result?;
        Ok(())
    })
}

/// Remove the session store directory (after `run` has ended).
fn remove_store(dir: &std::path::Path) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::error!(error = %e, "the session store could not be removed"),
    }
}

fn admin_command(action: Admin) -> Result<()> {
    match action {
        Admin::OrgKey { out } => {
            let public = admin::create_org_key(&out)?;
            println!("{}", hex::encode(public.0));
        }
        Admin::BusNode { node, out } => {
            println!("{}", approdo_relay::bus::create_node_key(&node, &out)?);
        }
        Admin::Issue {
            org_key,
            role,
            label,
            desks,
            languages,
            days,
            out,
            passphrase_env,
        } => {
            let org = admin::load_org_key(&org_key)?;
            let role = match role.as_str() {
                "operator" => Role::Operator,
                "interpreter" => Role::Interpreter,
                "coordinator" => Role::Coordinator,
                other => bail!("unknown role {other:?}"),
            };
            let desks = desks
                .into_iter()
                .map(Tag::new)
                .collect::<Result<Vec<_>, _>>()?;
            let languages = languages
                .into_iter()
                .map(Tag::new)
                .collect::<Result<Vec<_>, _>>()?;
            let (passphrase, generated) = match passphrase_env {
                Some(var) => (
                    std::env::var(&var).with_context(|| format!("reading {var}"))?,
                    false,
                ),
                None => (admin::random_passphrase(), true),
            };
            let spec = StaffSpec {
                role,
                label,
                desks,
                languages,
                valid_days: days,
            };
            let (text, serial) = admin::issue_credential(&org, &spec, &passphrase)?;
            std::fs::write(&out, text)?;
            println!("serial {serial}");
            if generated {
                println!("passphrase {passphrase}");
            }
        }
        Admin::Revoke {
            org_key,
            list,
            serials,
        } => {
            let org = admin::load_org_key(&org_key)?;
            admin::revoke(&org, &list, &serials)?;
            println!(
                "revoked {} serial(s); distribute {}",
                serials.len(),
                list.display()
            );
        }
    }
    Ok(())
}
