//! The door: a scan (ticket token + staff key + device) becomes exactly one of
//! admitted, duplicate, expired, revoked, wrong_event or invalid, and is recorded.
//! The staff key finds the community (the narrow `checkin` purpose), and the lookup
//! that follows is scoped to it. One conditional `UPDATE … WHERE status = 'confirmed'`
//! admits, so of any number of concurrent scans of a ticket exactly one is admitted.
//! The door's throughput is its number of round trips (`benches/checkin.rs`): one
//! lookup (`db::door_lookup`: key, scope and ticket) decides every refusal, which the
//! refusal log (`refusals`) then records in a batch with those that arrived beside
//! it; an admission is a transaction of one statement that moves the ticket and
//! records the scan, then the role job and the audit entry.
//! Offline batches carry their own scan ids (a replay records nothing twice) and
//! times (the earliest scan of a ticket is the admission). Tokens, keys and IPs are
//! only ever handled as digests here and never logged.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};
use uuid::Uuid;

use super::db::{self, DoorTicket, NewScan, RefusedScan, Ticket};
pub use super::limiter::{INVALID_PER_MINUTE, Limiter};
pub use super::refusals::{NotRecorded, RefusalLog};
use super::ticket::{self, TicketStatus};
use crate::audit::{self, Actor, NewEntry};
use crate::db::tenant;

/// A ticket still admits this long after its event's end (late arrivals, overruns).
pub const EXPIRY_MARGIN_HOURS: i64 = 6;
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
    #[error(transparent)]
    NotRecorded(#[from] NotRecorded),
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

/// The digests a door is limited by: its staff key's, and its address's when known.
struct Limits {
    key: Vec<u8>,
    ip: Option<Vec<u8>>,
}

impl Limits {
    fn new(limiter: &Limiter, door: &Door) -> Self {
        Limits {
            key: ticket::digest(&door.staff_key),
            ip: door.ip.map(|ip| limiter.ip_hash(ip)),
        }
    }

    fn all(&self) -> Vec<&[u8]> {
        let mut keys: Vec<&[u8]> = vec![&self.key];
        keys.extend(self.ip.as_deref());
        keys
    }

    /// An unknown staff key counts against the address only (there is no key to block).
    fn address(&self) -> Vec<&[u8]> {
        self.ip.as_deref().into_iter().collect()
    }
}

/// A live scan at the door. One round trip finds the staff key's event, scopes to its
/// community and looks the ticket up; a refusal is then answered once the refusal log
/// has committed it, and only an admission opens a transaction. (A scan with its own
/// scan id is a batch of one.)
#[tracing::instrument(skip_all, fields(device.id = %door.device_id))]
pub async fn checkin(
    pool: &PgPool,
    limiter: &Limiter,
    refusals: &RefusalLog,
    door: &Door,
    scan: Scan,
) -> Result<Recorded, CheckinError> {
    if scan.scan_id.is_some() {
        let mut all = checkin_batch(pool, limiter, door, vec![scan]).await?;
        return all
            .pop()
            .ok_or_else(|| CheckinError::BadRequest("no scan".into()));
    }
    check_door(door)?;
    let limits = Limits::new(limiter, door);
    if limiter.blocked(&limits.all()) {
        return Err(CheckinError::RateLimited);
    }
    let token = token_digest(&scan.token);
    let mut conn = pool.acquire().await?;
    let Some(found) = db::door_lookup(&mut conn, &limits.key, token.as_deref()).await? else {
        limiter.note_invalid(&limits.address());
        return Err(CheckinError::UnknownStaffKey);
    };
    let ctx = ScanContext {
        community: found.community,
        event: found.event,
        door,
        ip_hash: limits.ip.as_deref(),
    };
    let outcome = live(conn, refusals, &ctx, found.ticket.as_ref()).await?;
    if outcome == Outcome::Invalid {
        limiter.note_invalid(&limits.all());
    }
    Ok(Recorded {
        outcome,
        scan_id: None,
        replayed: false,
    })
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
    let limits = Limits::new(limiter, door);
    if limiter.blocked(&limits.all()) {
        return Err(CheckinError::RateLimited);
    }
    let found = db::door_lookup(&mut *pool.acquire().await?, &limits.key, None).await?;
    let Some(db::DoorLookup {
        community, event, ..
    }) = found
    else {
        limiter.note_invalid(&limits.address());
        return Err(CheckinError::UnknownStaffKey);
    };
    scans.sort_by_key(|s| s.scanned_at);
    let ctx = ScanContext {
        community,
        event,
        door,
        ip_hash: limits.ip.as_deref(),
    };
    let mut out = Vec::with_capacity(scans.len());
    for scan in scans {
        let recorded = offline(pool, &ctx, scan).await?;
        if recorded.outcome == Outcome::Invalid && !recorded.replayed {
            limiter.note_invalid(&limits.all());
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

impl ScanContext<'_> {
    /// The scan's row, with the result still to be decided.
    fn scan(
        &self,
        ticket: Option<&DoorTicket>,
        scan_id: Option<Uuid>,
        scanned_at: DateTime<Utc>,
    ) -> NewScan<'_> {
        NewScan {
            event: self.event,
            ticket: ticket.map(|f| f.ticket.id),
            scan_id,
            result: "invalid",
            device_id: &self.door.device_id,
            ip_hash: self.ip_hash,
            scanned_at,
        }
    }
}

/// What the ticket as looked up says about a scan at `scanned_at`.
#[derive(Debug, PartialEq)]
enum Verdict<'a> {
    Refuse(Outcome),
    /// Checked in already, at that time.
    AlreadyIn(&'a DoorTicket, DateTime<Utc>),
    Admit(&'a DoorTicket),
}

fn judge(event: Uuid, found: Option<&DoorTicket>, scanned_at: DateTime<Utc>) -> Verdict<'_> {
    let Some(f) = found else {
        return Verdict::Refuse(Outcome::Invalid);
    };
    if f.ticket.event_id != event {
        return Verdict::Refuse(Outcome::WrongEvent);
    }
    if f.event_status == "cancelled"
        || matches!(
            f.ticket.status,
            TicketStatus::Revoked | TicketStatus::Cancelled
        )
    {
        return Verdict::Refuse(Outcome::Revoked);
    }
    if scanned_at > f.ends_at + Duration::hours(EXPIRY_MARGIN_HOURS) {
        return Verdict::Refuse(Outcome::Expired);
    }
    match (f.ticket.status, f.ticket.checked_in_at) {
        (TicketStatus::Confirmed, _) => Verdict::Admit(f),
        (TicketStatus::CheckedIn, Some(at)) => Verdict::AlreadyIn(f, at),
        // A waitlisted ticket has no token; the CHECKs rule out the rest.
        _ => Verdict::Refuse(Outcome::Invalid),
    }
}

/// The digest a token is looked up by; none for a token too long to be one of ours.
fn token_digest(token: &str) -> Option<Vec<u8>> {
    (token.len() <= 200).then(|| ticket::digest(token))
}

async fn find(conn: &mut PgConnection, token: &str) -> Result<Option<DoorTicket>, sqlx::Error> {
    match token_digest(token) {
        Some(digest) => db::ticket_by_token(conn, &digest).await,
        None => Ok(None),
    }
}

/// A live scan of the ticket `found` (if any) as looked up: an admission is a
/// transaction on `conn`; a refusal gives `conn` back and waits for the refusal log
/// to commit it.
async fn live(
    mut conn: PoolConnection<Postgres>,
    refusals: &RefusalLog,
    ctx: &ScanContext<'_>,
    found: Option<&DoorTicket>,
) -> Result<Outcome, CheckinError> {
    let scanned_at = Utc::now();
    let outcome = match judge(ctx.event, found, scanned_at) {
        Verdict::Admit(f) => {
            let new = ctx.scan(found, None, scanned_at);
            let mut tx = tenant::begin_on(&mut conn, ctx.community).await?;
            let outcome = admit_live(&mut tx, ctx, f, &new).await?;
            tx.commit().await?;
            return Ok(outcome);
        }
        Verdict::AlreadyIn(_, at) => Outcome::Duplicate { first_scan_at: at },
        Verdict::Refuse(outcome) => outcome,
    };
    // Back to the pool first: the refusal log's writer needs a connection to commit.
    drop(conn);
    refusals
        .record(RefusedScan {
            community: ctx.community,
            event: ctx.event,
            ticket: found.map(|f| f.ticket.id),
            result: outcome.as_str(),
            device_id: ctx.door.device_id.clone(),
            ip_hash: ctx.ip_hash.map(<[u8]>::to_vec),
            scanned_at,
        })
        .await?;
    Ok(outcome)
}

async fn admit_live(
    conn: &mut PgConnection,
    ctx: &ScanContext<'_>,
    f: &DoorTicket,
    new: &NewScan<'_>,
) -> Result<Outcome, sqlx::Error> {
    let (scan, won) = db::admit_scanned(conn, ctx.community, new).await?;
    if won {
        give_attended_role(conn, ctx.community, f).await?;
        // Last before the commit: the community's audit chain head stays locked from
        // here until then, and every change of the community queues behind it.
        audit_admission(conn, ctx.community, &f.ticket, scan).await?;
        return Ok(admitted(&f.ticket));
    }
    // Another door (or an organiser) changed the ticket since the lookup; the scan
    // was recorded as a duplicate, which it is unless the ticket was revoked.
    let outcome = match db::admission_for_update(conn, f.ticket.id).await? {
        Some((Some(at), _, status)) if status == TicketStatus::CheckedIn.as_str() => {
            Outcome::Duplicate { first_scan_at: at }
        }
        Some((_, _, status))
            if matches!(
                TicketStatus::parse(&status),
                Some(TicketStatus::Revoked | TicketStatus::Cancelled)
            ) =>
        {
            Outcome::Revoked
        }
        _ => Outcome::Invalid,
    };
    if !matches!(outcome, Outcome::Duplicate { .. }) {
        db::set_scan_result(conn, scan, outcome.as_str()).await?;
    }
    Ok(outcome)
}

/// A scan from an offline device: recorded first by its scan id (a replay records
/// nothing and answers what was recorded), then decided; an earlier scan takes the
/// admission over from a later one.
async fn offline(
    pool: &PgPool,
    ctx: &ScanContext<'_>,
    scan: Scan,
) -> Result<Recorded, CheckinError> {
    let mut tx = tenant::begin(pool, ctx.community).await?;
    let found = find(&mut tx, &scan.token).await?;
    let scanned_at = scan.scanned_at.unwrap_or_else(Utc::now);
    let new = ctx.scan(found.as_ref(), scan.scan_id, scanned_at);
    let Some(row) = db::insert_scan(&mut tx, ctx.community, &new).await? else {
        let outcome = replayed(&mut tx, scan.scan_id, found.as_ref().map(|f| &f.ticket)).await?;
        tx.commit().await?;
        return Ok(Recorded {
            outcome,
            scan_id: scan.scan_id,
            replayed: true,
        });
    };
    let outcome = decide_offline(&mut tx, ctx, found.as_ref(), scanned_at, row).await?;
    db::set_scan_result(&mut tx, row, outcome.as_str()).await?;
    tx.commit().await?;
    Ok(Recorded {
        outcome,
        scan_id: scan.scan_id,
        replayed: false,
    })
}

async fn decide_offline(
    conn: &mut PgConnection,
    ctx: &ScanContext<'_>,
    found: Option<&DoorTicket>,
    scanned_at: DateTime<Utc>,
    scan: i64,
) -> Result<Outcome, sqlx::Error> {
    let f = match judge(ctx.event, found, scanned_at) {
        Verdict::Refuse(outcome) => return Ok(outcome),
        Verdict::Admit(f) if db::admit(conn, f.ticket.id, scanned_at).await? => {
            db::set_admitted_scan(conn, f.ticket.id, scan).await?;
            give_attended_role(conn, ctx.community, f).await?;
            audit_admission(conn, ctx.community, &f.ticket, scan).await?;
            return Ok(admitted(&f.ticket));
        }
        Verdict::Admit(f) | Verdict::AlreadyIn(f, _) => f,
    };
    // Admitted before (or just now by another door): read it as it is now.
    let Some((at, by, status)) = db::admission_for_update(conn, f.ticket.id).await? else {
        return Ok(Outcome::Invalid);
    };
    match (TicketStatus::parse(&status), at) {
        (Some(TicketStatus::CheckedIn), Some(at)) if scanned_at < at => {
            // This device saw the ticket first: its scan is the admission.
            db::set_admission(conn, f.ticket.id, scanned_at, scan).await?;
            if let Some(previous) = by {
                db::set_scan_result(conn, previous, "duplicate").await?;
            }
            Ok(admitted(&f.ticket))
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

/// Attendance can earn a role (`/event attended-role`): a job, like every effect. The
/// role came with the ticket's lookup.
async fn give_attended_role(
    conn: &mut PgConnection,
    community: Uuid,
    f: &DoorTicket,
) -> Result<(), sqlx::Error> {
    let Some((guild_id, role_id)) = f.attended_role else {
        return Ok(());
    };
    let job = crate::outbox::Job::AddRole {
        guild_id,
        user_id: f.ticket.user,
        role_id,
        reason: "attended an event".into(),
    };
    let key = format!("event-attended:{}", f.ticket.id);
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

#[cfg(test)]
mod tests {
    use super::*;
    use serenity::all::UserId;

    fn door_ticket(event: Uuid, status: TicketStatus, event_status: &str) -> DoorTicket {
        let at = Utc::now();
        DoorTicket {
            ticket: Ticket {
                id: Uuid::now_v7(),
                event_id: event,
                user: UserId::new(5),
                display_name: "Ann".into(),
                tier_name: None,
                status,
                checked_in_at: (status == TicketStatus::CheckedIn).then_some(at),
            },
            ends_at: at + Duration::hours(1),
            event_status: event_status.into(),
            attended_role: None,
        }
    }

    #[test]
    fn the_lookup_decides_every_refusal() {
        let (event, other) = (Uuid::now_v7(), Uuid::now_v7());
        let now = Utc::now();
        let late = now + Duration::hours(EXPIRY_MARGIN_HOURS + 2);
        let confirmed = door_ticket(event, TicketStatus::Confirmed, "scheduled");
        let checked_in = door_ticket(event, TicketStatus::CheckedIn, "scheduled");
        let revoked = door_ticket(event, TicketStatus::Revoked, "scheduled");
        let called_off = door_ticket(event, TicketStatus::Confirmed, "cancelled");
        let elsewhere = door_ticket(other, TicketStatus::Confirmed, "scheduled");
        let refused = |f: Option<&DoorTicket>, at| match judge(event, f, at) {
            Verdict::Refuse(o) => Some(o),
            _ => None,
        };
        assert_eq!(refused(None, now), Some(Outcome::Invalid));
        assert_eq!(refused(Some(&elsewhere), now), Some(Outcome::WrongEvent));
        assert_eq!(refused(Some(&revoked), now), Some(Outcome::Revoked));
        assert_eq!(refused(Some(&called_off), now), Some(Outcome::Revoked));
        assert_eq!(refused(Some(&confirmed), late), Some(Outcome::Expired));
        assert_eq!(refused(Some(&checked_in), late), Some(Outcome::Expired));
        assert_eq!(
            judge(event, Some(&confirmed), now),
            Verdict::Admit(&confirmed)
        );
        assert!(matches!(
            judge(event, Some(&checked_in), now),
            Verdict::AlreadyIn(_, at) if Some(at) == checked_in.ticket.checked_in_at
        ));
    }
}
