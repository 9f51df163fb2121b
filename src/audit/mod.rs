//! The audit log: [`record`] appends an entry inside the caller's transaction,
//! [`seal`] gives committed entries their place in the community's hash chain,
//! [`verify`] walks the chain and names the first broken entry, [`recent`] and
//! [`export`] read it back, [`erase_personal_data`] is the one permitted deletion.
//! The design, with measured figures, is in `docs/audit.md`.
//!
//! Sealing is asynchronous and in order: the change's transaction only inserts its
//! entry; the daemon's sealer ([`seal::run`]) then locks the community's chain head
//! and seals committed entries in batches, `hash = SHA-256(prev ‖ seq ‖ canonical
//! entry)`, within a fraction of a second. Sealing in the request's transaction held
//! the head's row lock until commit; what is left on the request's path is one
//! insert (`benches/audit.rs`, figures in the docs).

mod chain;
mod db;
pub mod seal;
mod verify;

pub use seal::seal;

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
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub correlation_id: Option<String>,
    pub personal_digest: Option<Vec<u8>>,
    /// `None` until the sealer gives the entry its place in the chain.
    pub seq: Option<i64>,
    pub hash: Option<Vec<u8>>,
    pub personal: Option<Personal>,
}

/// An appended entry; the sealer gives it its place in the chain once committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    pub id: Uuid,
}

/// The outcome of verifying one community's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Every sealed entry fits; `pending` newer ones await their seal.
    Intact {
        community_id: Uuid,
        entries: i64,
        pending: i64,
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
                pending,
            } => {
                write!(
                    f,
                    "community {community_id}: {entries} entries, chain intact"
                )?;
                if *pending > 0 {
                    write!(f, " ({pending} newer awaiting their seal)")?;
                }
                Ok(())
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
    #[error("the audit chain head of community {0} is not a 32-byte hash")]
    CorruptHead(Uuid),
    #[error("entries of community {0} were sealed outside the sealer")]
    SealedElsewhere(Uuid),
}

/// Appends `entry` inside the caller's transaction: it commits or rolls back with the
/// change it records. The sealer chains it once committed.
#[tracing::instrument(skip_all, fields(community.id = %entry.community_id, audit.action = entry.action))]
pub async fn record(conn: &mut PgConnection, entry: NewEntry) -> Result<Recorded, sqlx::Error> {
    let id = Uuid::now_v7();
    let personal = personal_of(&entry);
    let digest = personal
        .as_ref()
        .map(|p| chain::personal_digest(&p.salt, p.reason.as_deref(), &p.names));
    let actor = entry.actor.to_string();
    let row = db::NewRow {
        id,
        community_id: entry.community_id,
        occurred_at: Utc::now(),
        actor: &actor,
        action: entry.action,
        target: &entry.target,
        before: entry.before.as_ref(),
        after: entry.after.as_ref(),
        correlation_id: entry.correlation_id.as_deref(),
        personal_digest: digest.as_ref().map(|d| d.as_slice()),
    };
    db::insert(&mut *conn, &row).await?;
    if let Some(p) = &personal {
        db::insert_personal(conn, id, entry.community_id, p).await?;
    }
    Ok(Recorded { id })
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

/// Verifies one community's sealed chain from its first entry to its head, at one
/// snapshot, and counts the entries still awaiting their seal.
#[tracing::instrument(skip_all, fields(community.id = %community_id))]
pub async fn verify(pool: &PgPool, community_id: Uuid) -> Result<Report, Error> {
    let mut tx = pool.begin().await?;
    // The isolation level must be set before the first statement, so scope after it.
    db::begin_snapshot(&mut tx).await?;
    tenant::scope(&mut tx, community_id).await?;
    let head = db::head(&mut tx, community_id).await?;
    let pending = db::pending_count(&mut tx, community_id).await?;
    let mut verifier = verify::Verifier::new();
    let outcome = {
        let mut rows = std::pin::pin!(db::entries(&mut tx, community_id));
        let mut outcome = Ok(());
        while let Some(entry) = rows.try_next().await? {
            outcome = match stored(&entry) {
                Some(stored) => verifier.push(&stored),
                None => Err((verifier.count() + 1, Break::Missing)),
            };
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
            pending,
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
        if !matches!(
            report,
            Report::Intact {
                entries: 0,
                pending: 0,
                ..
            }
        ) {
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

/// The entry as verification and sealing see it; `None` for an unsealed one.
fn stored(entry: &Entry) -> Option<verify::Stored<'_>> {
    Some(verify::Stored {
        seq: entry.seq?,
        fields: fields(entry),
        hash: entry.hash.as_deref()?,
        personal: entry
            .personal
            .as_ref()
            .map(|p| (p.salt.as_slice(), p.reason.as_deref(), p.names.as_slice())),
    })
}

/// The hashed fields, read back from the database: sealing and verification both
/// encode this stored form, so they agree byte for byte.
fn fields(entry: &Entry) -> chain::Fields<'_> {
    chain::Fields {
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
    }
}

/// The newest entries of a community, newest first.
pub async fn recent(pool: &PgPool, community_id: Uuid, limit: i64) -> Result<Vec<Entry>, Error> {
    let mut tx = tenant::begin(pool, community_id).await?;
    let entries = db::recent(&mut tx, community_id, limit).await?;
    tx.commit().await?;
    Ok(entries)
}

/// Writes entries as JSON lines (one community, or all), in chain order; entries
/// awaiting their seal are left to the next export.
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
            "hash": self.hash.as_ref().map(hex::encode),
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
