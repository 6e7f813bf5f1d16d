//! The observatory record: the one thing that outlives a session.
//!
//! It carries the fixed indicators of the national anti-trafficking observatory and
//! nothing else: no session id, no participant, no free text, and no time finer than the
//! month (which the relay adds when it stores the record).

use serde::{Deserialize, Serialize};

use crate::ids::Tag;

/// Gender of the possible victim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Gender {
    /// Female.
    Female,
    /// Male.
    Male,
    /// Transgender.
    Transgender,
    /// Not known or not said.
    NotKnown,
}

/// Age band of the possible victim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AgeBand {
    /// Under 18: a minor, which changes the services involved.
    Under18,
    /// 18 to 25.
    From18To25,
    /// 26 to 35.
    From26To35,
    /// 36 to 50.
    From36To50,
    /// Over 50.
    Over50,
    /// Not known.
    NotKnown,
}

/// Type of exploitation, as the observatory lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Exploitation {
    /// Sexual, on the street.
    SexualStreet,
    /// Sexual, indoors.
    SexualIndoor,
    /// Labour: construction.
    LabourConstruction,
    /// Labour: agriculture.
    LabourAgriculture,
    /// Labour: catering.
    LabourCatering,
    /// Labour: domestic and care work.
    LabourDomesticCare,
    /// Forced begging.
    Begging,
    /// Forced illegal activities.
    ForcedIllegalActivities,
    /// Forced marriage.
    ForcedMarriage,
    /// Not (yet) identified.
    NotIdentified,
}

/// Who started the contact ("soggetto attivatore").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Activator {
    /// The person themself.
    Person,
    /// Staff of a reception centre (CAS) or of SPRAR/SAI.
    CasSprar,
    /// The Prefecture.
    Prefecture,
    /// The Territorial Commission for international protection.
    TerritorialCommission,
    /// Police or Carabinieri.
    PoliceCarabinieri,
    /// Labour inspector or trade union.
    LabourInspectorUnion,
    /// Social or health services, emergency rooms.
    SocialHealthServices,
    /// A street unit.
    StreetUnit,
    /// A private citizen.
    PrivateCitizen,
}

/// Outcome of the contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Outcome {
    /// Counselling and information.
    Counselling,
    /// An interview (colloquio) with the person.
    Interview,
    /// Immediate shelter and first assistance.
    ShelterFirstAssistance,
    /// Multi-agency proactive action.
    MultiAgencyAction,
    /// Referral to a regional project.
    ReferralRegionalProject,
}

/// The observatory record an operator files when closing a case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservatoryRecord {
    /// Gender of the possible victim.
    pub gender: Gender,
    /// Age band.
    pub age: AgeBand,
    /// Territory (region tag) where the case emerged.
    pub territory_emerged: Option<Tag>,
    /// Territory (region tag) of exploitation.
    pub territory_exploitation: Option<Tag>,
    /// Types of exploitation (one case may have several).
    pub exploitation: Vec<Exploitation>,
    /// Who activated the contact.
    pub activator: Activator,
    /// Outcome of the contact.
    pub outcome: Outcome,
}

/// A stored record as the relay keeps it: the record and the month, nothing else.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRecord {
    /// `YYYY-MM`.
    pub month: String,
    /// The record.
    pub record: ObservatoryRecord,
}

/// Who the person says is asking, sent end-to-end to staff as the first thing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Seeker {
    /// "I need help for myself".
    Myself,
    /// "I am a worker reporting a possible case", and which kind of worker.
    Worker(Activator),
}

// ----- codes --------------------------------------------------------------------------
//
// The stable text codes of every indicator: what the pages, the wasm layer and the
// terminal client read and write (see `web-client/CONTRACT.md`). One table each, so no
// two clients spell a value differently.

/// Genders and their codes.
pub const GENDERS: &[(Gender, &str)] = &[
    (Gender::Female, "female"),
    (Gender::Male, "male"),
    (Gender::Transgender, "transgender"),
    (Gender::NotKnown, "unknown"),
];

/// Age bands and their codes.
pub const AGES: &[(AgeBand, &str)] = &[
    (AgeBand::Under18, "under-18"),
    (AgeBand::From18To25, "18-25"),
    (AgeBand::From26To35, "26-35"),
    (AgeBand::From36To50, "36-50"),
    (AgeBand::Over50, "over-50"),
    (AgeBand::NotKnown, "unknown"),
];

/// Types of exploitation and their codes.
pub const EXPLOITATIONS: &[(Exploitation, &str)] = &[
    (Exploitation::SexualStreet, "sexual-street"),
    (Exploitation::SexualIndoor, "sexual-indoor"),
    (Exploitation::LabourConstruction, "labour-construction"),
    (Exploitation::LabourAgriculture, "labour-agriculture"),
    (Exploitation::LabourCatering, "labour-catering"),
    (Exploitation::LabourDomesticCare, "labour-domestic-care"),
    (Exploitation::Begging, "begging"),
    (
        Exploitation::ForcedIllegalActivities,
        "forced-illegal-activities",
    ),
    (Exploitation::ForcedMarriage, "forced-marriage"),
    (Exploitation::NotIdentified, "not-identified"),
];

/// Activators and their codes (`person` only appears in records).
pub const ACTIVATORS: &[(Activator, &str)] = &[
    (Activator::Person, "person"),
    (Activator::CasSprar, "cas-sprar"),
    (Activator::Prefecture, "prefecture"),
    (Activator::TerritorialCommission, "territorial-commission"),
    (Activator::PoliceCarabinieri, "police"),
    (Activator::LabourInspectorUnion, "labour"),
    (Activator::SocialHealthServices, "social-health"),
    (Activator::StreetUnit, "street-unit"),
    (Activator::PrivateCitizen, "private-citizen"),
];

/// Outcomes and their codes.
pub const OUTCOMES: &[(Outcome, &str)] = &[
    (Outcome::Counselling, "counselling"),
    (Outcome::Interview, "interview"),
    (Outcome::ShelterFirstAssistance, "shelter"),
    (Outcome::MultiAgencyAction, "multi-agency"),
    (Outcome::ReferralRegionalProject, "referral"),
];

/// The code of a value in one of the tables above (`unknown` if it is missing).
pub fn code_of<T: PartialEq>(table: &[(T, &'static str)], value: &T) -> &'static str {
    table
        .iter()
        .find(|(v, _)| v == value)
        .map_or("unknown", |(_, code)| code)
}

/// The value of a code in one of the tables above.
pub fn parse_code<T: Copy>(table: &[(T, &str)], code: &str) -> Option<T> {
    table.iter().find(|(_, c)| *c == code).map(|(v, _)| *v)
}

// ----- aggregates ---------------------------------------------------------------------
//
// What a coordinator receives: counts, never records. See `docs/protocol.md` §6.3.

/// Smallest count the relay discloses; smaller counts (zero included) are suppressed.
pub const MIN_DISCLOSED: u32 = 5;

/// One count of an aggregate table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cell {
    /// The exact count (at least [`MIN_DISCLOSED`]).
    Count(u32),
    /// Not disclosed: below [`MIN_DISCLOSED`], or withheld so that no other figure of the
    /// same answer reveals one that is.
    Suppressed,
}

/// What an aggregate table counts cases by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Dimension {
    /// Territory where the case emerged (desk tag, or `none`).
    Emerged,
    /// Territory of exploitation (desk tag, or `none`).
    Exploited,
    /// Type of exploitation: a case counts once under each of its types, so a month's
    /// counts do not add up to its cases.
    Exploitation,
    /// Gender.
    Gender,
    /// Age band.
    Age,
    /// Who activated the contact.
    Activator,
    /// Outcome.
    Outcome,
}

/// The dimensions and their codes, in the order the relay sends the tables.
pub const DIMENSIONS: &[(Dimension, &str)] = &[
    (Dimension::Emerged, "emerged"),
    (Dimension::Exploited, "exploited"),
    (Dimension::Exploitation, "exploitation"),
    (Dimension::Gender, "gender"),
    (Dimension::Age, "age"),
    (Dimension::Activator, "activator"),
    (Dimension::Outcome, "outcome"),
];

/// The code of a record without a territory, in the territory tables.
pub const NO_TERRITORY: &str = "none";

/// Cases counted by one dimension: over all months, and month by month.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    /// What the cases are counted by.
    pub dimension: Dimension,
    /// The values' codes (those of this module's tables, a desk tag or [`NO_TERRITORY`]),
    /// every value of the dimension, in a fixed order.
    pub values: Vec<String>,
    /// Per value, the cases of all the answer's months.
    pub total: Vec<Cell>,
    /// Per month of [`ObservatoryTables::months`], per value, the cases of that month.
    pub by_month: Vec<Vec<Cell>>,
}

/// The relay's answer to a coordinator: counts only, with small counts suppressed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservatoryTables {
    /// The months counted, `YYYY-MM`, oldest first (every month from the first with a
    /// record to the last, at most the most recent 24).
    pub months: Vec<String>,
    /// Cases in all the months.
    pub cases: Cell,
    /// Cases per month, in the order of `months`.
    pub cases_by_month: Vec<Cell>,
    /// One table per dimension, in the order of [`DIMENSIONS`].
    pub tables: Vec<Table>,
}
