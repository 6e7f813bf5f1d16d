//! `approdo-relay`: run the relay (with a demo organisation by default) and manage the
//! organisation's keys.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use approdo_core::identity::Role;
use approdo_core::ids::Tag;
use approdo_relay::admin::{self, StaffSpec};
use approdo_relay::config::ConfigFile;
use approdo_relay::quic::QuicListener;
use approdo_relay::{Config, Listeners};
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
        /// UDP ports for call media, `FIRST-LAST` (one per call member).
        #[arg(long, default_value = "40000-40199")]
        sfu_ports: String,
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
    },
    /// Serve with a configuration file.
    Serve {
        /// TOML configuration (see deploy/relay.example.toml).
        #[arg(long)]
        config: PathBuf,
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
        sfu_ports: "40000-40199".into(),
        quic_listen: None,
        no_quic: false,
        quic_announce_port: None,
        not_safe_word: None,
    }) {
        Command::Demo {
            listen,
            credentials,
            sfu_ports,
            quic_listen,
            no_quic,
            quic_announce_port,
            not_safe_word,
        } => {
            init_logs();
            let quic = (!no_quic).then(|| {
                (
                    quic_listen.unwrap_or(SocketAddr::new(listen.ip(), 0)),
                    quic_announce_port,
                )
            });
            demo(listen, credentials, &sfu_ports, quic, not_safe_word)
        }
        Command::Serve { config } => {
            init_logs();
            serve(config)
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

/// The QUIC listener on `addr`, with the provisional self-signed certificate for `names`
/// (replaced by the relay's certificate store when it lands).
fn quic_listener(addr: SocketAddr, names: &[String]) -> Result<QuicListener> {
    let identity = approdo_relay::quic::provisional_certificate(names)?;
    QuicListener::bind(addr, identity).context("binding the QUIC (UDP) address")
}

/// Names the provisional certificate covers: `localhost` and the address's IP.
fn certificate_names(addr: SocketAddr) -> Vec<String> {
    let mut names = vec!["localhost".to_owned()];
    if !addr.ip().is_unspecified() {
        names.push(addr.ip().to_string());
    }
    names
}

fn demo(
    listen: SocketAddr,
    credentials: PathBuf,
    sfu_ports: &str,
    quic: Option<(SocketAddr, Option<u16>)>,
    not_safe_word: Option<String>,
) -> Result<()> {
    let (org, staff) = admin::write_demo_organisation(&credentials)?;
    let store = tempfile::Builder::new()
        .prefix("approdo-store-")
        .tempdir()?;
    let mut config = admin::demo_config(&org, store.path().join("sessions"));
    let (first, last) = sfu_ports
        .split_once('-')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .context("--sfu-ports takes FIRST-LAST, e.g. 40000-40199")?;
    config.sfu.udp_port_min = first;
    config.sfu.udp_port_max = last;
    config.not_safe_word = not_safe_word;
    if !listen.ip().is_unspecified() {
        config.sfu.bind_ip = listen.ip();
    }
    drop(org); // the demo key is not needed once the credentials exist
    let org_hex = hex::encode(config.org.0);
    runtime()?.block_on(async move {
        let relay = approdo_relay::Relay::new(config.clone())?;
        let http = tokio::net::TcpListener::bind(listen).await.context("binding the listen address")?;
        let addr = http.local_addr()?;
        let quic = quic
            .map(|(q, announce)| {
                let mut l = quic_listener(q, &certificate_names(q))?;
                l.advertised_port = announce;
                Ok::<_, anyhow::Error>(l)
            })
            .transpose()?;
        let advert = quic.as_ref().map(QuicListener::advert);
        println!("Approdo demo relay");
        println!("  person's page       http://{addr}/");
        println!("  staff desk          http://{addr}/desk");
        println!("  organisation key    {org_hex}");
        println!("  ephemeral store     {} (deleted on exit)", store.path().display());
        let desks: Vec<&str> = config.desks.iter().map(|d| d.id.as_str()).collect();
        println!("  desks               {}", desks.join(", "));
        println!(
            "  call media          udp {}:{}-{}",
            config.sfu.bind_ip, config.sfu.udp_port_min, config.sfu.udp_port_max
        );
        if let Some(a) = &advert {
            println!("  quic (udp)          {}:{} (native approdo/1, WebTransport {})", addr.ip(), a.port, approdo_relay::quic::WT_PATH);
            println!("  certificate sha256  {}", a.hashes.join(" "));
        }
        if let Some(hash) = approdo_relay::pages::bundle_hash(&config, advert.as_ref()) {
            println!("  bundle hash         {hash}");
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
        if let Some(a) = &advert {
            println!("quic port {}", a.port);
        }
        relay.run(Listeners { http, quic }, shutdown_signal()).await?;
        drop(store);
        Ok(())
    })
}

fn serve(path: PathBuf) -> Result<()> {
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let file: ConfigFile = toml::from_str(&text).context("parsing the configuration")?;
    let org = admin::parse_public_key(&file.org_public_key)?;
    let revocations = admin::load_revocations(&file.revocations)
        .with_context(|| format!("reading the revocation list {}", file.revocations.display()))?;
    let config = Config {
        org,
        revocations,
        desks: file.desks,
        store_dir: file.store_dir,
        observatory_dir: file.observatory_dir,
        limits: file.limits,
        client_address_header: file.client_address_header,
        not_safe_word: file.not_safe_word,
        sfu: file.sfu,
    };
    let listen: SocketAddr = file.listen.parse().context("the listen address")?;
    let quic_listen: Option<SocketAddr> = file
        .quic_listen
        .as_deref()
        .map(str::parse)
        .transpose()
        .context("the QUIC listen address")?;
    let revocations_path = file.revocations.clone();
    runtime()?.block_on(async move {
        let store_dir = config.store_dir.clone();
        // Not secret: what the organisation publishes so anyone can check the pages, its
        // key and its revocation list (scripts/bundle-hash URL recomputes it).
        let quic = quic_listen
            .map(|q| quic_listener(q, &certificate_names(q)))
            .transpose()?;
        let advert = quic.as_ref().map(QuicListener::advert);
        let bundle_hash = approdo_relay::pages::bundle_hash(&config, advert.as_ref());
        let mut relay = approdo_relay::Relay::new(config)?;
        tracing::info!(
            bundle_hash = bundle_hash.as_deref().unwrap_or("none"),
            "serving pages"
        );
        #[cfg(unix)]
        {
            let reloader = reload_revocations_on_hangup(relay.inspector(), revocations_path)?;
            relay.supervise("revocation reloader", reloader);
        }
        #[cfg(not(unix))]
        let _ = revocations_path;
        let http = tokio::net::TcpListener::bind(listen)
            .await
            .context("binding the listen address")?;
        let result = relay.run(Listeners { http, quic }, shutdown_signal()).await;
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

/// `kill -HUP` re-reads the revocation list: revoked staff are cut off at once, with no
/// restart (a restart would end every running session). The returned task is supervised by
/// the relay: if it dies, the relay stops rather than run on without revocations.
#[cfg(unix)]
fn reload_revocations_on_hangup(
    relay: approdo_relay::Inspector,
    path: PathBuf,
) -> Result<tokio::task::JoinHandle<()>> {
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("listening for SIGHUP (revocation reloads)")?;
    Ok(tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            match admin::load_revocations(&path)
                .map_err(anyhow::Error::from)
                .and_then(|list| relay.apply_revocations(list).map_err(anyhow::Error::from))
            {
                Ok(cut_off) => tracing::info!(cut_off, "revocation list reloaded"),
                Err(e) => tracing::error!(error = %e, "revocation list not reloaded"),
            }
        }
    }))
}

fn admin_command(action: Admin) -> Result<()> {
    match action {
        Admin::OrgKey { out } => {
            let public = admin::create_org_key(&out)?;
            println!("{}", hex::encode(public.0));
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
