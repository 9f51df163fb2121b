//! The door: a scan (ticket token + staff key + device) becomes exactly one of
//! admitted, duplicate, expired, revoked, wrong_event or invalid, and is recorded.
//! The staff key finds the community (the narrow `checkin` purpose), then the
//! transaction is scoped to it. One conditional `UPDATE … WHERE status = 'confirmed'`
//! admits, so of any number of concurrent scans of a ticket exactly one is admitted.
//! Offline batches carry their own scan ids (a replay records nothing twice) and
//! times (the earliest scan of a ticket is the admission). Tokens, keys and IPs are
//! only ever handled as digests here and never logged.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::db::{self, NewScan, Ticket};
use super::ticket::{self, TicketEvent, TicketStatus};
use crate::audit::{self, Actor, NewEntry};
use crate::db::tenant::{self, CrossCommunity};

/// A ticket still admits this long after its event's end (late arrivals, overruns).
pub const EXPIRY_MARGIN_HOURS: i64 = 6;
/// Invalid scans one staff key or one address may make per minute before it is
/// refused for the rest of that minute: guessing tokens is hopeless at 256 bits, but
/// a burst is a broken or hostile scanner and should not fill the scan log.
pub const INVALID_PER_MINUTE: u32 = 20;
/// The largest offline batch.
pub const MAX_BATCH: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    Admitted { name: String, tier: Option<String> },
    Duplicate { first_scan_at: DateTime<Utc> },
    Expired,
    Revoked,
    WrongEvent,
    Invalid,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Admitted { .. } => "admitted",
            Outcome::Duplicate { .. } => "duplicate",
            Outcome::Expired => "expired",
            Outcome::Revoked => "revoked",
            Outcome::WrongEvent => "wrong_event",
            Outcome::Invalid => "invalid",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckinError {
    #[error("too many invalid scans; wait a minute")]
    RateLimited,
    #[error("unknown or revoked staff key")]
    UnknownStaffKey,
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Counts invalid scans per staff key and per address (both as digests), and salts
/// the address digests stored with scans. The salt is drawn when the daemon starts,
/// so a stored digest cannot be reversed by hashing every IPv4 address.
pub struct Limiter {
    salt: [u8; 32],
    windows: Mutex<HashMap<Vec<u8>, (Instant, u32)>>,
}

impl Limiter {
    pub fn new() -> Self {
        let mut salt = [0u8; 32];
        if getrandom::fill(&mut salt).is_err() {
            // No OS randomness: a v4 UUID (itself random) still makes digests unlinkable.
            salt[..16].copy_from_slice(Uuid::new_v4().as_bytes());
        }
        Self {
            salt,
            windows: Mutex::new(HashMap::new()),
        }
    }

    pub fn ip_hash(&self, ip: IpAddr) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update(ip.to_string().as_bytes());
        h.finalize().to_vec()
    }

    fn blocked(&self, keys: &[&[u8]]) -> bool {
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter().any(|k| {
            windows.get(*k).is_some_and(|(start, n)| {
                start.elapsed() < StdDuration::from_secs(60) && *n >= INVALID_PER_MINUTE
            })
        })
    }

    fn note_invalid(&self, keys: &[&[u8]]) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > 10_000 {
            windows.retain(|_, (start, _)| start.elapsed() < StdDuration::from_secs(60));
        }
        for k in keys {
            let entry = windows.entry(k.to_vec()).or_insert((Instant::now(), 0));
            if entry.0.elapsed() >= StdDuration::from_secs(60) {
                *entry = (Instant::now(), 0);
            }
            entry.1 += 1;
        }
    }
}

impl Default for Limiter {
    fn default() -> Self {
        Self::new()
    }
}

/// Who is scanning, from where.
#[derive(Debug, Clone)]
pub struct Door {
    pub staff_key: String,
    pub device_id: String,
    pub ip: Option<IpAddr>,
}

/// One scan: live (no scan id, scanned now) or from an offline batch.
#[derive(Debug, Clone)]
pub struct Scan {
    pub token: String,
    pub scan_id: Option<Uuid>,
    pub scanned_at: Option<DateTime<Utc>>,
}

/// What a scan came to; `replayed` when its scan id was recorded before.
#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    #[serde(flatten)]
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan_id: Option<Uuid>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
}

fn check_door(door: &Door) -> Result<(), CheckinError> {
    let n = door.device_id.chars().count();
    if n == 0 || n > 100 {
        return Err(CheckinError::BadRequest(
            "device_id must be 1 to 100 characters".into(),
        ));
    }
    if door.staff_key.len() > 200 {
        return Err(CheckinError::UnknownStaffKey);
    }
    Ok(())
}

/// A live scan at the door.
#[tracing::instrument(skip_all, fields(device.id = %door.device_id))]
pub async fn checkin(
    pool: &PgPool,
    limiter: &Limiter,
    door: &Door,
    scan: Scan,
) -> Result<Recorded, CheckinError> {
    let mut all = checkin_batch(pool, limiter, door, vec![scan]).await?;
    all.pop()
        .ok_or_else(|| CheckinError::BadRequest("no scan".into()))
}

/// Scans in time order (so within a batch the earliest wins too), each in its own
/// transaction so one bad scan does not undo the rest.
pub async fn checkin_batch(
    pool: &PgPool,
    limiter: &Limiter,
    door: &Door,
    mut scans: Vec<Scan>,
) -> Result<Vec<Recorded>, CheckinError> {
    check_door(door)?;
    if scans.len() > MAX_BATCH {
        return Err(CheckinError::BadRequest(format!(
            "at most {MAX_BATCH} scans per batch"
        )));
    }
    let latest = Utc::now() + Duration::minutes(5);
    if scans
        .iter()
        .any(|s| s.scanned_at.is_some_and(|t| t > latest))
    {
        return Err(CheckinError::BadRequest(
            "a scan time is in the future".into(),
        ));
    }
    let key_hash = ticket::digest(&door.staff_key);
    let ip_hash = door.ip.map(|ip| limiter.ip_hash(ip));
    let mut limit_keys: Vec<&[u8]> = vec![&key_hash];
    if let Some(ip) = &ip_hash {
        limit_keys.push(ip);
    }
    if limiter.blocked(&limit_keys) {
        return Err(CheckinError::RateLimited);
    }
    let mut tx = tenant::begin_cross_community(pool, CrossCommunity::Checkin).await?;
    let found = db::staff_key(&mut tx, &key_hash).await?;
    tx.commit().await?;
    let Some((community, event)) = found else {
        limiter.note_invalid(&limit_keys[1..]);
        return Err(CheckinError::UnknownStaffKey);
    };
    scans.sort_by_key(|s| s.scanned_at);
    let mut out = Vec::with_capacity(scans.len());
    for scan in scans {
        let ctx = ScanContext {
            community,
            event,
            door,
            ip_hash: ip_hash.as_deref(),
        };
        let recorded = one(pool, &ctx, scan).await?;
        if recorded.outcome == Outcome::Invalid && !recorded.replayed {
            limiter.note_invalid(&limit_keys);
        }
        out.push(recorded);
    }
    Ok(out)
}

struct ScanContext<'a> {
    community: Uuid,
    event: Uuid,
    door: &'a Door,
    ip_hash: Option<&'a [u8]>,
}

async fn one(pool: &PgPool, ctx: &ScanContext<'_>, scan: Scan) -> Result<Recorded, CheckinError> {
    let mut tx = tenant::begin(pool, ctx.community).await?;
    let found = if scan.token.len() <= 200 {
        db::ticket_by_token(&mut tx, &ticket::digest(&scan.token)).await?
    } else {
        None
    };
    let scanned_at = scan.scanned_at.unwrap_or_else(Utc::now);
    let new = NewScan {
        event: ctx.event,
        ticket: found.as_ref().map(|(t, _, _)| t.id),
        scan_id: scan.scan_id,
        // Decided below, in this transaction; a scan is never left like this.
        result: "invalid",
        device_id: &ctx.door.device_id,
        ip_hash: ctx.ip_hash,
        scanned_at,
    };
    let Some(row) = db::insert_scan(&mut tx, ctx.community, &new).await? else {
        let outcome = replayed(&mut tx, scan.scan_id, found.as_ref().map(|(t, _, _)| t)).await?;
        tx.commit().await?;
        return Ok(Recorded {
            outcome,
            scan_id: scan.scan_id,
            replayed: true,
        });
    };
    let offline = scan.scan_id.is_some();
    let outcome = decide(&mut tx, ctx, found, scanned_at, row, offline).await?;
    db::set_scan_result(&mut tx, row, outcome.as_str()).await?;
    tx.commit().await?;
    Ok(Recorded {
        outcome,
        scan_id: scan.scan_id,
        replayed: false,
    })
}

async fn decide(
    conn: &mut PgConnection,
    ctx: &ScanContext<'_>,
    found: Option<(Ticket, DateTime<Utc>, String)>,
    scanned_at: DateTime<Utc>,
    scan: i64,
    offline: bool,
) -> Result<Outcome, sqlx::Error> {
    let Some((t, ends_at, event_status)) = found else {
        return Ok(Outcome::Invalid);
    };
    if t.event_id != ctx.event {
        return Ok(Outcome::WrongEvent);
    }
    if event_status == "cancelled"
        || matches!(t.status, TicketStatus::Revoked | TicketStatus::Cancelled)
    {
        return Ok(Outcome::Revoked);
    }
    if scanned_at > ends_at + Duration::hours(EXPIRY_MARGIN_HOURS) {
        return Ok(Outcome::Expired);
    }
    if t.status.transition(TicketEvent::CheckIn).is_ok()
        && db::admit(conn, t.id, scanned_at).await?
    {
        db::set_admitted_scan(conn, t.id, scan).await?;
        audit_admission(conn, ctx.community, &t, scan).await?;
        give_attended_role(conn, ctx.community, &t).await?;
        return Ok(admitted(&t));
    }
    // Someone else admitted it (or it changed under us): read it as it is now.
    let Some((at, by, status)) = db::admission_for_update(conn, t.id).await? else {
        return Ok(Outcome::Invalid);
    };
    match (TicketStatus::parse(&status), at) {
        (Some(TicketStatus::CheckedIn), Some(at)) if offline && scanned_at < at => {
            // An offline device saw this ticket first: its scan is the admission.
            db::set_admission(conn, t.id, scanned_at, scan).await?;
            if let Some(previous) = by {
                db::set_scan_result(conn, previous, "duplicate").await?;
            }
            Ok(admitted(&t))
        }
        (Some(TicketStatus::CheckedIn), Some(at)) => Ok(Outcome::Duplicate { first_scan_at: at }),
        (Some(TicketStatus::Revoked | TicketStatus::Cancelled), _) => Ok(Outcome::Revoked),
        _ => Ok(Outcome::Invalid),
    }
}

fn admitted(t: &Ticket) -> Outcome {
    Outcome::Admitted {
        name: t.display_name.clone(),
        tier: t.tier_name.clone(),
    }
}

/// A replayed scan id answers what was recorded the first time.
async fn replayed(
    conn: &mut PgConnection,
    scan_id: Option<Uuid>,
    ticket: Option<&Ticket>,
) -> Result<Outcome, sqlx::Error> {
    let Some((result, _)) = db::scan_by_id(conn, scan_id.unwrap_or_default()).await? else {
        return Ok(Outcome::Invalid);
    };
    Ok(match (result.as_str(), ticket) {
        ("admitted", Some(t)) => admitted(t),
        ("duplicate", Some(t)) => Outcome::Duplicate {
            first_scan_at: t.checked_in_at.unwrap_or_else(Utc::now),
        },
        ("expired", _) => Outcome::Expired,
        ("revoked", _) => Outcome::Revoked,
        ("wrong_event", _) => Outcome::WrongEvent,
        _ => Outcome::Invalid,
    })
}

/// Attendance can earn a role (`/event attended-role`): a job, like every effect.
async fn give_attended_role(
    conn: &mut PgConnection,
    community: Uuid,
    t: &Ticket,
) -> Result<(), sqlx::Error> {
    let Some((guild_id, role_id)) = db::attended_role(conn, community).await? else {
        return Ok(());
    };
    let job = crate::outbox::Job::AddRole {
        guild_id,
        user_id: t.user,
        role_id,
        reason: "attended an event".into(),
    };
    let key = format!("event-attended:{}", t.id);
    crate::outbox::enqueue(conn, crate::outbox::NewJob::new(Some(community), key, job)).await?;
    Ok(())
}

async fn audit_admission(
    conn: &mut PgConnection,
    community: Uuid,
    t: &Ticket,
    scan: i64,
) -> Result<(), sqlx::Error> {
    let mut entry = NewEntry::new(
        community,
        Actor::System("checkin"),
        "ticket.checked_in",
        format!("user:{}", t.user),
    );
    entry.after = Some(json!({"event": t.event_id, "ticket": t.id, "scan": scan}));
    audit::record(conn, entry).await?;
    Ok(())
}
