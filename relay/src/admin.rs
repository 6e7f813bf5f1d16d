//! Admin commands: the organisation key, staff credentials and revocation, and the demo
//! organisation the README's first command starts with.
//!
//! Files: the organisation key file holds the hex of its 32-byte seed (mode 0600); the
//! public key is printed as hex to pin in clients and the relay's configuration; the
//! revocation list is JSON with the signed body and signature in hex.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use approdo_core::credential::StaffCredential;
use approdo_core::identity::{
    Certificate, OrgPublicKey, OrgSigningKey, RevocationList, Role, SignedRevocationList,
    StaffSigningKey,
};
use approdo_core::ids::{DeskId, Language, fill_random};
use approdo_core::noise::NoiseStaticKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::config::{Config, DeskConfig, Limits};
use crate::error::RelayError;

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Write a secret file readable by its owner only.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> Result<(), RelayError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    opts.open(path)?.write_all(contents)?;
    Ok(())
}

/// Create an organisation key file; returns the public key to pin.
pub fn create_org_key(path: &Path) -> Result<OrgPublicKey, RelayError> {
    if path.exists() {
        return Err(RelayError::Config(format!(
            "{} exists; refusing to overwrite an organisation key",
            path.display()
        )));
    }
    let key = OrgSigningKey::generate();
    let hex = Zeroizing::new(hex::encode(*key.seed()));
    write_private(path, hex.as_bytes())?;
    Ok(key.public())
}

/// Read an organisation key file.
pub fn load_org_key(path: &Path) -> Result<OrgSigningKey, RelayError> {
    let text = Zeroizing::new(std::fs::read_to_string(path)?);
    let mut seed = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), seed.as_mut())
        .map_err(|_| RelayError::Config("the organisation key file is damaged".into()))?;
    Ok(OrgSigningKey::from_seed(&seed))
}

/// Parse a hex public key.
pub fn parse_public_key(hex_key: &str) -> Result<OrgPublicKey, RelayError> {
    let mut k = [0u8; 32];
    hex::decode_to_slice(hex_key.trim(), &mut k)
        .map_err(|_| RelayError::Config("bad organisation public key".into()))?;
    Ok(OrgPublicKey(k))
}

/// What a new staff credential says.
#[derive(Clone, Debug)]
pub struct StaffSpec {
    /// Role.
    pub role: Role,
    /// Label shown to colleagues.
    pub label: String,
    /// Desks.
    pub desks: Vec<DeskId>,
    /// Languages.
    pub languages: Vec<Language>,
    /// Days of validity.
    pub valid_days: u64,
}

/// Issue a credential: new keys, a certificate, sealed under `passphrase`. Returns the
/// file text and the serial.
pub fn issue_credential(
    org: &OrgSigningKey,
    spec: &StaffSpec,
    passphrase: &str,
) -> Result<(String, u64), RelayError> {
    let noise = NoiseStaticKey::generate();
    let signing = StaffSigningKey::generate();
    let mut serial_bytes = [0u8; 8];
    fill_random(&mut serial_bytes);
    let serial = u64::from_be_bytes(serial_bytes) >> 12; // stays exact in JavaScript numbers
    let info = Certificate {
        serial,
        role: spec.role,
        label: spec.label.clone(),
        desks: spec.desks.clone(),
        languages: spec.languages.clone(),
        noise_key: noise.public(),
        signing_key: signing.public(),
        not_after: unix_now() + spec.valid_days * 86_400,
    };
    let certificate = org.certify(&info);
    let cred = StaffCredential {
        noise,
        signing,
        certificate,
        info,
    };
    Ok((cred.to_file(passphrase)?, serial))
}

/// A random passphrase of five groups of four letters and digits (about 100 bits).
pub fn random_passphrase() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 20];
    fill_random(&mut bytes);
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

#[derive(Serialize, Deserialize)]
struct RevocationFile {
    body: String,
    signature: String,
}

/// Read a signed revocation list file.
pub fn load_revocations(path: &Path) -> Result<SignedRevocationList, RelayError> {
    let f: RevocationFile = serde_json::from_str(&std::fs::read_to_string(path)?)
        .map_err(|_| RelayError::Config("the revocation list is damaged".into()))?;
    let body = hex::decode(f.body)
        .map_err(|_| RelayError::Config("the revocation list is damaged".into()))?;
    let mut signature = [0u8; 64];
    hex::decode_to_slice(f.signature, &mut signature)
        .map_err(|_| RelayError::Config("the revocation list is damaged".into()))?;
    Ok(SignedRevocationList { body, signature })
}

/// Write a signed revocation list file.
pub fn save_revocations(path: &Path, list: &SignedRevocationList) -> Result<(), RelayError> {
    let f = RevocationFile {
        body: hex::encode(&list.body),
        signature: hex::encode(list.signature),
    };
    std::fs::write(
        path,
        serde_json::to_string_pretty(&f).map_err(|e| RelayError::Config(e.to_string()))?,
    )?;
    Ok(())
}

/// Add serials to the revocation list at `path` (created if missing) and sign it anew.
pub fn revoke(
    org: &OrgSigningKey,
    path: &Path,
    serials: &[u64],
) -> Result<SignedRevocationList, RelayError> {
    let mut list = if path.exists() {
        org.public().open_revocations(&load_revocations(path)?)?
    } else {
        RevocationList::default()
    };
    list.serials.extend_from_slice(serials);
    list.issued_at = unix_now().max(list.issued_at + 1);
    let signed = org.sign_revocations(&list);
    save_revocations(path, &signed)?;
    Ok(signed)
}

/// The desks of the demo organisation, modelled on the Italian network.
pub fn demo_desks() -> Vec<DeskConfig> {
    let tag = |s: &str| DeskId::new(s).expect("static tags are valid");
    let names = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(l, n)| ((*l).to_owned(), (*n).to_owned()))
            .collect()
    };
    vec![
        DeskConfig {
            id: tag("national"),
            name: "Numero Verde Antitratta (national)".into(),
            fallback_numbers: vec!["800 290 290".into()],
            names: names(&[
                ("en", "National anti-trafficking helpline"),
                ("it", "Numero Verde Antitratta (nazionale)"),
                ("fr", "Numéro vert national contre la traite"),
                ("es", "Línea nacional contra la trata"),
                ("ro", "Linia națională împotriva traficului de persoane"),
                ("ru", "Национальная линия против торговли людьми"),
                ("uk", "Національна лінія проти торгівлі людьми"),
                ("zh", "全国反人口贩运热线"),
                ("sq", "Linja kombëtare kundër trafikimit"),
                ("ar", "الخط الوطني لمكافحة الاتجار بالبشر"),
                ("pcm", "National helpline against people trafficking"),
                ("ur", "انسانی اسمگلنگ کے خلاف قومی ہیلپ لائن"),
            ]),
        },
        DeskConfig {
            id: tag("toscana"),
            name: "Toscana — progetto regionale".into(),
            fallback_numbers: vec!["800 186 086".into()],
            names: names(&[
                ("en", "Tuscany — regional project"),
                ("it", "Toscana — progetto regionale"),
                ("fr", "Toscane — projet régional"),
                ("es", "Toscana — proyecto regional"),
                ("ro", "Toscana — proiect regional"),
                ("ru", "Тоскана — региональный проект"),
                ("uk", "Тоскана — регіональний проєкт"),
                ("zh", "托斯卡纳 — 地区项目"),
                ("sq", "Toskana — projekt rajonal"),
                ("ar", "توسكانا — مشروع إقليمي"),
                ("pcm", "Tuscany — project for di region"),
                ("ur", "ٹسکنی — علاقائی منصوبہ"),
            ]),
        },
        DeskConfig {
            id: tag("veneto"),
            name: "Veneto — N.A.Ve".into(),
            fallback_numbers: vec![],
            names: names(&[
                ("en", "Veneto — N.A.Ve"),
                ("fr", "Vénétie — N.A.Ve"),
                ("es", "Véneto — N.A.Ve"),
                ("ru", "Венето — N.A.Ve"),
                ("uk", "Венето — N.A.Ve"),
                ("zh", "威尼托 — N.A.Ve"),
                ("ar", "فينيتو — N.A.Ve"),
                ("ur", "وینیتو — N.A.Ve"),
            ]),
        },
    ]
}

/// One demo staff member, as written by [`write_demo_organisation`]. `Debug` leaves out
/// the passphrase.
#[derive(Clone)]
pub struct DemoStaff {
    /// What they are.
    pub spec: StaffSpec,
    /// Credential file.
    pub path: PathBuf,
    /// Its passphrase (printed for the newcomer: this is a demo).
    pub passphrase: String,
}

impl std::fmt::Debug for DemoStaff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoStaff")
            .field("spec", &self.spec)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Create a demo organisation: a fresh key, a national operator, a regional operator, four
/// interpreters (a session and its call hold six: the person, an operator and four
/// interpreters is the largest the demo can show) and a coordinator, with credential files
/// in `dir`. Returns the key and the staff.
pub fn write_demo_organisation(dir: &Path) -> Result<(OrgSigningKey, Vec<DemoStaff>), RelayError> {
    std::fs::create_dir_all(dir)?;
    let org = OrgSigningKey::generate();
    let tags = |v: &[&str]| {
        v.iter()
            .map(|s| Language::new(*s).expect("static tags are valid"))
            .collect::<Vec<_>>()
    };
    let specs = [
        (
            "operator-national",
            Role::Operator,
            tags(&["national"]),
            tags(&["it", "en", "fr", "es"]),
        ),
        (
            "operator-toscana",
            Role::Operator,
            tags(&["toscana"]),
            tags(&["it", "en"]),
        ),
        (
            "interpreter",
            Role::Interpreter,
            tags(&["national", "toscana", "veneto"]),
            tags(&["en", "pcm", "ro", "ru", "uk", "zh", "sq", "ar", "ur"]),
        ),
        (
            "interpreter-2",
            Role::Interpreter,
            tags(&["national", "toscana", "veneto"]),
            tags(&["en", "ar", "ur"]),
        ),
        (
            "interpreter-3",
            Role::Interpreter,
            tags(&["national", "toscana", "veneto"]),
            tags(&["en", "zh", "ru", "uk"]),
        ),
        (
            "interpreter-4",
            Role::Interpreter,
            tags(&["national", "toscana", "veneto"]),
            tags(&["en", "sq", "pcm"]),
        ),
        (
            "coordinator",
            Role::Coordinator,
            tags(&["national"]),
            tags(&[]),
        ),
    ];
    let mut staff = Vec::new();
    for (label, role, desks, languages) in specs {
        let spec = StaffSpec {
            role,
            label: label.into(),
            desks,
            languages,
            valid_days: 30,
        };
        let passphrase = random_passphrase();
        let (text, _) = issue_credential(&org, &spec, &passphrase)?;
        let path = dir.join(format!("{label}.credential"));
        write_private(&path, text.as_bytes())?;
        staff.push(DemoStaff {
            spec,
            path,
            passphrase,
        });
    }
    Ok((org, staff))
}

/// A configuration for the demo organisation. The observatory goes beside the store
/// (`<store_dir>-observatory`).
pub fn demo_config(org: &OrgSigningKey, store_dir: PathBuf) -> Config {
    let mut observatory_dir = store_dir.clone().into_os_string();
    observatory_dir.push("-observatory");
    Config {
        observatory_dir: observatory_dir.into(),
        org: org.public(),
        revocations: org.sign_revocations(&RevocationList {
            issued_at: unix_now(),
            serials: vec![],
        }),
        desks: demo_desks(),
        store_dir,
        limits: Limits::default(),
        client_address_header: None,
        not_safe_word: None,
        quick_exit_url: None,
        sfu: crate::sfu::SfuConfig::default(),
        tls: None,
        turn: None,
        bus: None,
    }
}
