//! The outbox (low level): what to do, not doing it. Job kinds as data, the job status
//! state machine, and [`enqueue`], which domain code calls inside its own transaction
//! so an effect is recorded exactly when the state change that caused it commits.
//! Applying jobs is `crate::jobs`' business.

mod db;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serenity::all::{ChannelId, GuildId, MessageId, RoleId, UserId};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::db::tenant;
pub use db::FailedJob;

/// The channel workers `LISTEN` on; `enqueue` notifies it.
pub const CHANNEL: &str = "guildops_jobs";

/// One effect, as data. Stored as the `payload` column (with its `kind` tag).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    AddRole {
        guild_id: GuildId,
        user_id: UserId,
        role_id: RoleId,
        reason: String,
    },
    RemoveRole {
        guild_id: GuildId,
        user_id: UserId,
        role_id: RoleId,
        reason: String,
    },
    SendMessage {
        channel_id: ChannelId,
        content: String,
    },
    SendDm {
        user_id: UserId,
        content: String,
        /// Scheduled work to enqueue if the DM can never be delivered (DMs closed, no
        /// mutual server), e.g. noting it on a moderation case.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_failure: Option<FollowUp>,
    },
    /// A DM with one file (a ticket's QR code). The runtime empties `content` and the
    /// attachment once the job is done, since they may carry a secret (`crate::jobs::db::finish`).
    SendDmFile {
        user_id: UserId,
        content: String,
        attachment: Attachment,
    },
    ModLog {
        channel_id: ChannelId,
        title: String,
        description: String,
        /// Buttons under the entry (e.g. automod's "false positive").
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        buttons: Vec<Button>,
        /// Scheduled work to enqueue once the message is posted, with the new message's
        /// id added to its data as `message_id` (e.g. an event learning its post's id).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_posted: Option<FollowUp>,
    },
    /// Replaces a posted embed (and its buttons; none removes them). A message that is
    /// gone counts as done: there is nothing left to correct.
    EditMessage {
        channel_id: ChannelId,
        message_id: MessageId,
        title: String,
        description: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        buttons: Vec<Button>,
    },
    /// Deleting a message that is already gone counts as done.
    DeleteMessage {
        channel_id: ChannelId,
        message_id: MessageId,
        reason: String,
    },
    /// Discord's timeout (communication disabled) until `until` (at most 28 days ahead).
    TimeoutMember {
        guild_id: GuildId,
        user_id: UserId,
        until: DateTime<Utc>,
        reason: String,
    },
    /// A message to the community's admins about failed jobs. Its own kind so that a
    /// failing alert never raises another alert.
    AdminAlert {
        channel_id: ChannelId,
        content: String,
    },
    KickMember {
        guild_id: GuildId,
        user_id: UserId,
        reason: String,
    },
    BanMember {
        guild_id: GuildId,
        user_id: UserId,
        /// How much of their recent history Discord deletes (at most 7 days).
        delete_message_secs: u32,
        reason: String,
    },
    /// Lifting a ban that is already gone counts as done.
    UnbanMember {
        guild_id: GuildId,
        user_id: UserId,
        reason: String,
    },
    ClearTimeout {
        guild_id: GuildId,
        user_id: UserId,
        reason: String,
    },
    /// Time-based work for later issues (sanction expiry, grace periods, reminders):
    /// `name` picks the handler, `data` is its input; enqueue it with a future `run_at`.
    Scheduled {
        name: String,
        data: serde_json::Value,
    },
}

impl Job {
    /// The `kind` column: the serde tag.
    pub fn kind(&self) -> &'static str {
        match self {
            Job::AddRole { .. } => "add_role",
            Job::RemoveRole { .. } => "remove_role",
            Job::SendMessage { .. } => "send_message",
            Job::SendDm { .. } => "send_dm",
            Job::SendDmFile { .. } => "send_dm_file",
            Job::ModLog { .. } => "mod_log",
            Job::EditMessage { .. } => "edit_message",
            Job::DeleteMessage { .. } => "delete_message",
            Job::TimeoutMember { .. } => "timeout_member",
            Job::KickMember { .. } => "kick_member",
            Job::BanMember { .. } => "ban_member",
            Job::UnbanMember { .. } => "unban_member",
            Job::ClearTimeout { .. } => "clear_timeout",
            Job::AdminAlert { .. } => "admin_alert",
            Job::Scheduled { .. } => "scheduled",
        }
    }
}

/// A `Job::Scheduled` to enqueue later: `name` picks the handler, `data` is its input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUp {
    pub name: String,
    pub data: serde_json::Value,
}

/// A file sent with a message, base64 in the payload (small files only: a QR code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub data_base64: String,
}

/// A button on a posted message; its click arrives as a component interaction with
/// `custom_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    pub custom_id: String,
    pub label: String,
}

/// A job to enqueue: the effect, its owner, its idempotency key and when it is due.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub job: Job,
    pub community_id: Option<Uuid>,
    pub idempotency_key: String,
    pub run_at: DateTime<Utc>,
}

impl NewJob {
    /// Due now.
    pub fn new(community_id: Option<Uuid>, key: impl Into<String>, job: Job) -> Self {
        Self {
            job,
            community_id,
            idempotency_key: key.into(),
            run_at: Utc::now(),
        }
    }

    /// Due at `run_at` (scheduled work).
    pub fn at(mut self, run_at: DateTime<Utc>) -> Self {
        self.run_at = run_at;
        self
    }
}

/// Whether an enqueue created a job or found one with the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Created(i64),
    Duplicate,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("there is no failed job #{0} in this server")]
    NotFound(i64),
    #[error("job #{id} is {status}, only failed or dead jobs can be retried")]
    NotRetryable { id: i64, status: Status },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl Error {
    pub fn is_user_error(&self) -> bool {
        !matches!(self, Error::Database(_))
    }
}

/// Records `job` in the caller's transaction and wakes the workers (PostgreSQL delivers
/// the NOTIFY at commit, and not at all on rollback). A duplicate key is a no-op.
pub async fn enqueue(conn: &mut PgConnection, job: NewJob) -> Result<Enqueued, sqlx::Error> {
    let id = db::insert(&mut *conn, &job).await?;
    if id.is_some() {
        db::notify(conn).await?;
    }
    Ok(id.map_or(Enqueued::Duplicate, Enqueued::Created))
}

/// The latest failed and dead jobs of a community, newest first.
pub async fn failures(
    pool: &PgPool,
    community_id: Uuid,
    limit: i64,
) -> Result<Vec<FailedJob>, Error> {
    let mut tx = tenant::begin(pool, community_id).await?;
    let failed = db::failures(&mut tx, community_id, limit).await?;
    tx.commit().await?;
    Ok(failed)
}

/// Puts a failed or dead job back in the queue after its cause was fixed.
pub async fn retry(pool: &PgPool, community_id: Uuid, id: i64) -> Result<(), Error> {
    let mut tx = tenant::begin(pool, community_id).await?;
    let status = db::status_for_update(&mut tx, community_id, id)
        .await?
        .ok_or(Error::NotFound(id))?;
    let next = status
        .transition(Event::Resolve)
        .map_err(|_| Error::NotRetryable { id, status })?;
    db::requeue(&mut tx, id, next).await?;
    db::notify(&mut tx).await?;
    tx.commit().await?;
    Ok(())
}

/// A job's life. Stored as text with a CHECK listing exactly these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Running,
    Done,
    /// Can never succeed as things stand (missing permission, unknown member): an
    /// admin is told and may retry after fixing the cause.
    Failed,
    /// Ran out of attempts on errors that looked temporary.
    Dead,
}

/// What happens to a job; [`Status::transition`] is the only place that decides
/// which status follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Claim,
    Succeed,
    RetryLater,
    FailPermanently,
    GiveUp,
    LeaseExpired,
    Release,
    Resolve,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {from} job cannot {event:?}")]
pub struct InvalidTransition {
    pub from: Status,
    pub event: Event,
}

impl Status {
    pub fn transition(self, event: Event) -> Result<Status, InvalidTransition> {
        use {Event as E, Status as S};
        match (self, event) {
            (S::Pending, E::Claim) => Ok(S::Running),
            (S::Running, E::Succeed) => Ok(S::Done),
            (S::Running, E::RetryLater | E::LeaseExpired | E::Release) => Ok(S::Pending),
            (S::Running, E::FailPermanently) => Ok(S::Failed),
            (S::Running, E::GiveUp) => Ok(S::Dead),
            (S::Failed | S::Dead, E::Resolve) => Ok(S::Pending),
            (from, event) => Err(InvalidTransition { from, event }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Done => "done",
            Status::Failed => "failed",
            Status::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        [
            Status::Pending,
            Status::Running,
            Status::Done,
            Status::Failed,
            Status::Dead,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_follow_the_life_of_a_job() {
        assert_eq!(
            Status::Pending.transition(Event::Claim),
            Ok(Status::Running)
        );
        assert_eq!(Status::Running.transition(Event::Succeed), Ok(Status::Done));
        assert_eq!(
            Status::Running.transition(Event::LeaseExpired),
            Ok(Status::Pending)
        );
        assert_eq!(
            Status::Failed.transition(Event::Resolve),
            Ok(Status::Pending)
        );
        assert!(Status::Done.transition(Event::Resolve).is_err());
        assert!(Status::Pending.transition(Event::Succeed).is_err());
        assert!(Status::Done.transition(Event::Claim).is_err());
    }

    #[test]
    fn status_text_round_trips() {
        for s in ["pending", "running", "done", "failed", "dead"] {
            assert_eq!(Status::parse(s).map(Status::as_str), Some(s));
        }
        assert_eq!(Status::parse("lost"), None);
    }

    #[test]
    fn kind_is_the_serde_tag() {
        let job = Job::AddRole {
            guild_id: GuildId::new(1),
            user_id: UserId::new(2),
            role_id: RoleId::new(3),
            reason: "auto-role".into(),
        };
        let value = serde_json::to_value(&job).expect("serialises");
        assert_eq!(value["kind"], job.kind());
        assert_eq!(serde_json::from_value::<Job>(value).ok(), Some(job));
    }
}
