//! `/ops`: operations views for admins (Manage Server). `failures` lists jobs that
//! failed for good or ran out of attempts; `retry` queues one again once its cause is
//! fixed. Replies are ephemeral.

use std::fmt::Write as _;

use crate::community;
use crate::outbox::{self, FailedJob};

use super::{CommandError, Context, reply};

/// How many failures one reply lists (Discord caps a message at 2,000 characters).
const SHOWN: i64 = 10;

impl From<outbox::Error> for CommandError {
    fn from(e: outbox::Error) -> Self {
        if e.is_user_error() {
            CommandError::User(e.to_string())
        } else {
            CommandError::Internal(e.into())
        }
    }
}

/// Operations: failed jobs and retries (Manage Server only)
#[poise::command(
    slash_command,
    guild_only,
    default_member_permissions = "MANAGE_GUILD",
    required_permissions = "MANAGE_GUILD",
    subcommands("failures", "retry"),
    subcommand_required
)]
pub async fn ops(_: Context<'_>) -> Result<(), CommandError> {
    Ok(())
}

/// List recent jobs that failed (missing permissions, unknown role, ...)
#[poise::command(slash_command, guild_only)]
async fn failures(ctx: Context<'_>) -> Result<(), CommandError> {
    let community = community_of(ctx).await?;
    let failed = outbox::failures(&ctx.data().pool, community.id, SHOWN).await?;
    reply(ctx, render(&failed)).await
}

/// Run a failed job again after fixing its cause
#[poise::command(slash_command, guild_only)]
async fn retry(
    ctx: Context<'_>,
    #[description = "The job number shown by /ops failures"]
    #[min = 1]
    id: i64,
) -> Result<(), CommandError> {
    let community = community_of(ctx).await?;
    outbox::retry(&ctx.data().pool, community.id, id).await?;
    reply(ctx, format!("Job #{id} is queued again.")).await
}

async fn community_of(ctx: Context<'_>) -> Result<community::Community, CommandError> {
    let guild = ctx
        .guild_id()
        .ok_or_else(|| CommandError::User("This command only works inside a server.".into()))?;
    Ok(community::find_by_guild(&ctx.data().pool, guild).await?)
}

fn render(failed: &[FailedJob]) -> String {
    if failed.is_empty() {
        return "No failed jobs. Everything I was asked to do got done.".into();
    }
    let mut out = String::from("**Recent failures** (`/ops retry id:` runs one again)\n");
    for job in failed {
        let error: String = job
            .last_error
            .as_deref()
            .unwrap_or("no reason recorded")
            .chars()
            .take(120)
            .collect();
        let _ = writeln!(
            out,
            "#{} `{}` {} after {} attempt(s), <t:{}:R>: {}",
            job.id,
            job.kind,
            job.status,
            job.attempts,
            job.updated_at.timestamp(),
            error
        );
    }
    out
}
