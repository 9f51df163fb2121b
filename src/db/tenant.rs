//! Tenant scoping. Every community-owned table has row-level security keyed to the
//! transaction-local setting `app.community_id`; the daemon's connections run as the
//! non-owner role `guildops_app`, so a query outside a scoped transaction sees no
//! community rows at all. Domain code opens its transactions here.
//!
//! Work that spans communities (claiming jobs, finding the community behind a guild,
//! provisioning one) goes through [`begin_cross_community`], which names its purpose;
//! each purpose is granted by its own policies on the few tables it needs, never by
//! switching row-level security off.

use sqlx::postgres::PgConnectOptions;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

/// The role every pooled connection assumes; see `migrations/*_tenant_isolation.sql`.
pub const APP_ROLE: &str = "guildops_app";

/// A reason to look past one community, each allowed on named tables only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrossCommunity {
    /// Read the community directory (guild → community), nothing else.
    Directory,
    /// Create or update a community row for a guild; its owned rows are then
    /// written after [`scope`] narrows the same transaction to it.
    Provisioning,
    /// Claim, finish and prune jobs of every community.
    JobQueue,
    /// Find the community behind a Stripe object (read the directory and the Stripe ids
    /// of subscriptions and payments), record and deduplicate webhook events before
    /// scoping, prune old events and schedule that clean-up.
    StripeWebhook,
    /// Find the cases a member may appeal from a DM (no server named yet): read the
    /// directory and the cases' numbers and targets.
    Appeals,
    /// Find the event and community behind a door staff key (read `event_staff_keys`
    /// by digest), before scoping to that community.
    Checkin,
    /// Find the communities whose committed audit entries await their seal (read
    /// `audit_log.community_id` of unsealed rows), before sealing each in its scope.
    AuditSealer,
}

impl CrossCommunity {
    /// The value of `app.cross_community` that the policies test for.
    pub fn as_str(self) -> &'static str {
        match self {
            CrossCommunity::Directory => "directory",
            CrossCommunity::Provisioning => "provisioning",
            CrossCommunity::JobQueue => "job_queue",
            CrossCommunity::Appeals => "appeals",
            CrossCommunity::StripeWebhook => "stripe_webhook",
            CrossCommunity::Checkin => "checkin",
            CrossCommunity::AuditSealer => "audit_sealer",
        }
    }
}

/// Begins a transaction that sees and writes only `community`'s rows.
pub async fn begin(
    pool: &PgPool,
    community: Uuid,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    scope(&mut tx, community).await?;
    Ok(tx)
}

/// Begins a transaction on a connection the caller holds, scoped like [`begin`].
pub async fn begin_on(
    conn: &mut PgConnection,
    community: Uuid,
) -> Result<Transaction<'_, Postgres>, sqlx::Error> {
    let mut tx = sqlx::Connection::begin(conn).await?;
    scope(&mut tx, community).await?;
    Ok(tx)
}

/// Narrows the current transaction to `community` until it ends, dropping any
/// cross-community purpose it had (provisioning first finds or makes the community's
/// row, then writes its owned rows as that community only).
pub async fn scope(conn: &mut PgConnection, community: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "select set_config('app.community_id', $1, true),
                set_config('app.cross_community', '', true)",
    )
    .bind(community.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

/// Begins a transaction for work that spans communities, limited to `purpose`.
pub async fn begin_cross_community(
    pool: &PgPool,
    purpose: CrossCommunity,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("select set_config('app.cross_community', $1, true)")
        .bind(purpose.as_str())
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Connection options for the daemon's pools: every session runs as [`APP_ROLE`],
/// which owns no table, so row-level security always applies. Migrations connect
/// without this (they create what the role is granted).
pub fn app_role(options: PgConnectOptions) -> PgConnectOptions {
    options.options([("role", APP_ROLE)])
}

/// Options for a pool whose every session keeps one cross-community purpose: the job
/// runtime's own pool, which claims jobs of all communities in single statements.
pub fn cross_community_session(
    options: PgConnectOptions,
    purpose: CrossCommunity,
) -> PgConnectOptions {
    options.options([("app.cross_community", purpose.as_str())])
}
