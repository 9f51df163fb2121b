//! The audit log: [`record`] appends an entry inside the caller's transaction,
//! [`verify`] walks a community's hash chain and names the first broken entry,
//! [`recent`] and [`export`] read it back, [`erase_personal_data`] is the one
//! permitted deletion. The design, with measured figures, is in `docs/audit.md`.
//!
//! Sealing happens inside the request's transaction: one statement advances the
//! community's chain head (`audit_chain_heads`, row-locked until commit) and inserts
//! the entry with `hash = SHA-256(prev ‖ seq ‖ canonical entry)` computed by
//! PostgreSQL. The lock is per community, so communities never wait on each other,
//! and it adds one statement to a transaction that already does several.
//! `benches/audit.rs` measured an audited `/setup`-shaped change at 1.57× the
//! unchained one (goal 1.5×; 3,757 vs 5,883 changes/s over 8 communities) and
//! verification at ≈ 113k entries/s; `docs/audit.md` has the figures and the cheaper
//! append to try before moving to asynchronous sealing (which would leave committed
//! entries unsealed for a while).

mod chain;
mod db;
mod verify;

use chrono::{DateTime, Utc};
use futures::TryStreamExt as _;
use serde_json::{Value, json};
use serenity::all::UserId;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::db::tenant::{self, CrossCommunity};

pub use verify::Break;

/// Who made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    User(UserId),
    /// A component of the bot itself, e.g. `"gateway"` or `"stripe-webhook"`.
    System(&'static str),
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::User(id) => write!(f, "user:{id}"),
            Actor::System(name) => write!(f, "system:{name}"),
        }
    }
}

/// One state change to record. `reason` and `names` are personal data: they are kept
/// outside the hashed entry so a member's erasure request can remove them.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub community_id: Uuid,
    pub actor: Actor,
    /// Dotted lowercase, `domain.verb`: `community.created`, `settings.updated`.
    pub action: &'static str,
    pub target: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub reason: Option<String>,
    pub names: Vec<String>,
    /// Ties the entry to its request: an interaction id, a webhook event id.
    pub correlation_id: Option<String>,
}

impl NewEntry {
    /// An entry with no before/after, reason or correlation yet.
    pub fn new(community_id: Uuid, actor: Actor, action: &'static str, target: String) -> Self {
        NewEntry {
            community_id,
            actor,
            action,
            target,
            before: None,
            after: None,
            reason: None,
            names: Vec::new(),
            correlation_id: None,
        }
    }
}

/// Erasable personal data attached to an entry; `salt` keeps its digest unguessable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Personal {
    pub salt: Vec<u8>,
    pub reason: Option<String>,
    pub names: Vec<String>,
}

/// A stored entry. `personal` is `None` when there was none or it was erased.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: Uuid,
    pub community_id: Uuid,
    pub seq: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub correlation_id: Option<String>,
    pub personal_digest: Option<Vec<u8>>,
    pub hash: Vec<u8>,
    pub personal: Option<Personal>,
}

/// Where an appended entry landed in its community's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    pub id: Uuid,
    pub seq: i64,
}

/// The outcome of verifying one community's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Intact {
        community_id: Uuid,
        entries: i64,
    },
    Broken {
        community_id: Uuid,
        seq: i64,
        why: Break,
    },
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Report::Intact {
                community_id,
                entries,
            } => {
                write!(
                    f,
                    "community {community_id}: {entries} entries, chain intact"
                )
            }
            Report::Broken {
                community_id,
                seq,
                why,
            } => {
                write!(
                    f,
                    "community {community_id}: chain broken at entry #{seq}: {why}"
                )
            }
        }
    }
}

impl Report {
    pub fn is_intact(&self) -> bool {
        matches!(self, Report::Intact { .. })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("cannot write the export: {0}")]
    Io(#[from] std::io::Error),
}

/// Appends `entry` to its community's chain inside the caller's transaction: it
/// commits or rolls back with the change it records.
#[tracing::instrument(skip_all, fields(community.id = %entry.community_id, audit.action = entry.action))]
pub async fn record(conn: &mut PgConnection, entry: NewEntry) -> Result<Recorded, sqlx::Error> {
    let id = Uuid::now_v7();
    // PostgreSQL keeps microseconds; hash exactly what will be read back.
    let now = Utc::now();
    let occurred_at = DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
    let personal = personal_of(&entry);
    let digest = personal
        .as_ref()
        .map(|p| chain::personal_digest(&p.salt, p.reason.as_deref(), &p.names));
    let actor = entry.actor.to_string();
    let fields = chain::Fields {
        id,
        community_id: entry.community_id,
        occurred_at_micros: occurred_at.timestamp_micros(),
        actor: &actor,
        action: entry.action,
        target: &entry.target,
        before: entry.before.as_ref(),
        after: entry.after.as_ref(),
        correlation_id: entry.correlation_id.as_deref(),
        personal_digest: digest.as_ref().map(|d| d.as_slice()),
    };
    let canonical = chain::canonical(&fields);
    let row = db::AppendRow {
        id,
        community_id: entry.community_id,
        occurred_at,
        actor: &actor,
        action: entry.action,
        target: &entry.target,
        before: fields.before,
        after: fields.after,
        correlation_id: fields.correlation_id,
        personal_digest: fields.personal_digest,
        canonical: &canonical,
    };
    let seq = db::append(&mut *conn, &row).await?;
    if let Some(p) = &personal {
        db::insert_personal(conn, id, entry.community_id, p).await?;
    }
    Ok(Recorded { id, seq })
}

fn personal_of(entry: &NewEntry) -> Option<Personal> {
    if entry.reason.is_none() && entry.names.is_empty() {
        return None;
    }
    Some(Personal {
        salt: Uuid::new_v4().as_bytes().to_vec(),
        reason: entry.reason.clone(),
        names: entry.names.clone(),
    })
}

/// Verifies one community's chain from its first entry to its head, at one snapshot.
#[tracing::instrument(skip_all, fields(community.id = %community_id))]
pub async fn verify(pool: &PgPool, community_id: Uuid) -> Result<Report, Error> {
    let mut tx = pool.begin().await?;
    // The isolation level must be set before the first statement, so scope after it.
    db::begin_snapshot(&mut tx).await?;
    tenant::scope(&mut tx, community_id).await?;
    let head = db::head(&mut tx, community_id).await?;
    let mut verifier = verify::Verifier::new();
    let outcome = {
        let mut rows = std::pin::pin!(db::entries(&mut tx, community_id));
        let mut outcome = Ok(());
        while let Some(entry) = rows.try_next().await? {
            outcome = verifier.push(&stored(&entry));
            if outcome.is_err() {
                break;
            }
        }
        outcome
    };
    tx.rollback().await?;
    let result = outcome
        .and_then(|()| verifier.finish(head.as_ref().map(|(seq, hash)| (*seq, hash.as_slice()))));
    Ok(match result {
        Ok(entries) => Report::Intact {
            community_id,
            entries,
        },
        Err((seq, why)) => Report::Broken {
            community_id,
            seq,
            why,
        },
    })
}

/// Verifies every community's chain (the CLI without `--community`). A community
/// that has never recorded anything has no chain and is left out.
pub async fn verify_all(pool: &PgPool) -> Result<Vec<Report>, Error> {
    let mut reports = Vec::new();
    for community_id in community_ids(pool).await? {
        let report = verify(pool, community_id).await?;
        if !matches!(report, Report::Intact { entries: 0, .. }) {
            reports.push(report);
        }
    }
    Ok(reports)
}

/// Every community, oldest first, from the directory.
async fn community_ids(pool: &PgPool) -> Result<Vec<Uuid>, sqlx::Error> {
    let mut tx = tenant::begin_cross_community(pool, CrossCommunity::Directory).await?;
    let ids = db::community_ids(&mut tx).await?;
    tx.commit().await?;
    Ok(ids)
}

fn stored(entry: &Entry) -> verify::Stored<'_> {
    verify::Stored {
        seq: entry.seq,
        fields: chain::Fields {
            id: entry.id,
            community_id: entry.community_id,
            occurred_at_micros: entry.occurred_at.timestamp_micros(),
            actor: &entry.actor,
            action: &entry.action,
            target: &entry.target,
            before: entry.before.as_ref(),
            after: entry.after.as_ref(),
            correlation_id: entry.correlation_id.as_deref(),
            personal_digest: entry.personal_digest.as_deref(),
        },
        hash: &entry.hash,
        personal: entry
            .personal
            .as_ref()
            .map(|p| (p.salt.as_slice(), p.reason.as_deref(), p.names.as_slice())),
    }
}

/// The newest entries of a community, newest first.
pub async fn recent(pool: &PgPool, community_id: Uuid, limit: i64) -> Result<Vec<Entry>, Error> {
    let mut tx = tenant::begin(pool, community_id).await?;
    let entries = db::recent(&mut tx, community_id, limit).await?;
    tx.commit().await?;
    Ok(entries)
}

/// Writes entries as JSON lines (one community, or all), in chain order.
pub async fn export(
    pool: &PgPool,
    community_id: Option<Uuid>,
    out: &mut impl std::io::Write,
) -> Result<u64, Error> {
    let communities = match community_id {
        Some(id) => vec![id],
        None => community_ids(pool).await?,
    };
    let mut written = 0;
    for id in communities {
        let mut tx = tenant::begin(pool, id).await?;
        let mut rows = std::pin::pin!(db::entries(&mut tx, id));
        while let Some(entry) = rows.try_next().await? {
            writeln!(out, "{}", entry.to_json())?;
            written += 1;
        }
    }
    Ok(written)
}

impl Entry {
    /// The export form: everything needed to re-verify the chain elsewhere.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "community_id": self.community_id,
            "seq": self.seq,
            "occurred_at": self.occurred_at,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "before": self.before,
            "after": self.after,
            "correlation_id": self.correlation_id,
            "personal_digest": self.personal_digest.as_ref().map(hex::encode),
            "hash": hex::encode(&self.hash),
            "personal": self.personal.as_ref().map(|p| json!({
                "salt": hex::encode(&p.salt), "reason": p.reason, "names": p.names,
            })),
        })
    }
}

/// Erases an entry's personal data (a member's erasure request) and records the
/// erasure itself, in one transaction. The chain stays verifiable: it hashed only
/// the digest. Returns whether there was anything to erase.
#[tracing::instrument(skip_all, fields(community.id = %community_id, audit.entry = %entry_id))]
pub async fn erase_personal_data(
    pool: &PgPool,
    community_id: Uuid,
    entry_id: Uuid,
    actor: Actor,
) -> Result<bool, Error> {
    let mut tx = tenant::begin(pool, community_id).await?;
    let erased = db::erase_personal(&mut tx, community_id, entry_id).await?;
    if erased {
        let entry = NewEntry::new(
            community_id,
            actor,
            "audit.personal_data_erased",
            format!("audit_entry:{entry_id}"),
        );
        record(&mut tx, entry).await?;
    }
    tx.commit().await?;
    Ok(erased)
}
