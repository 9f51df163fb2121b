//! Communities: the tenant behind each Discord guild. Owns provisioning when the bot
//! joins (exactly once, however often Discord re-sends GUILD_CREATE), deactivation
//! when it is removed, the member roster, and the owner's `/setup` settings.

mod db;
pub mod welcome;

pub use db::guild_of;

use chrono::{DateTime, Utc};
use serenity::all::{ChannelId, GuildId, RoleId, UserId};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::audit::{self, Actor, NewEntry};
use crate::db::tenant::{self, CrossCommunity};
use crate::outbox;

/// The audit actor for changes that follow Discord's gateway events.
const GATEWAY: Actor = Actor::System("gateway");

/// What a GUILD_CREATE tells us about a guild.
#[derive(Debug, Clone)]
pub struct GuildSnapshot {
    pub guild_id: GuildId,
    pub name: String,
    pub owner_id: UserId,
    pub members: Vec<MemberSnapshot>,
}

#[derive(Debug, Clone)]
pub struct MemberSnapshot {
    pub user_id: UserId,
    pub is_bot: bool,
    pub joined_at: Option<DateTime<Utc>>,
    pub roles: Vec<RoleId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioned {
    Created,
    Reactivated,
    AlreadyActive,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Community {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub guild_id: GuildId,
    pub owner_id: UserId,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

/// The owner's configuration from `/setup`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub admin_channel: Option<ChannelId>,
    pub mod_log_channel: Option<ChannelId>,
    pub moderator_roles: Vec<RoleId>,
    pub welcome_channel: Option<ChannelId>,
    pub welcome_message: Option<String>,
    pub farewell_message: Option<String>,
    pub auto_roles: Vec<RoleId>,
    /// The role that hides the server (automod's and moderators' quarantine).
    pub quarantine_role: Option<RoleId>,
    /// The role `/mute` gives (it should deny Send Messages).
    pub mute_role: Option<RoleId>,
}

/// One `/setup` change; `None` fields are left as they are.
#[derive(Debug, Clone, Default)]
pub struct SettingsChange {
    pub admin_channel: Option<ChannelId>,
    pub mod_log_channel: Option<ChannelId>,
    pub add_moderator_role: Option<RoleId>,
    pub remove_moderator_role: Option<RoleId>,
    pub welcome_channel: Option<ChannelId>,
    pub welcome_message: Option<String>,
    pub farewell_message: Option<String>,
    pub add_auto_role: Option<RoleId>,
    pub remove_auto_role: Option<RoleId>,
    pub quarantine_role: Option<RoleId>,
    pub mute_role: Option<RoleId>,
}

/// Discord's own cap on a message; a welcome text longer than this could never be sent.
pub const MAX_MESSAGE_CHARS: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "this server is not connected to a community yet; give me a moment after inviting me and try again"
    )]
    NotProvisioned,
    #[error("a message can be at most {MAX_MESSAGE_CHARS} characters (yours has {0})")]
    MessageTooLong(usize),
    #[error("nothing to change: give at least one option")]
    NothingToChange,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl Error {
    /// Whether the person who asked caused it (and should be told) or something broke.
    pub fn is_user_error(&self) -> bool {
        !matches!(self, Error::Database(_))
    }
}

/// Connects the guild to its community: creates it the first time, reactivates it if
/// the bot was removed before, and otherwise only refreshes name, owner and roster.
#[tracing::instrument(skip_all, fields(guild.id = %guild.guild_id))]
pub async fn provision(
    pool: &PgPool,
    guild: &GuildSnapshot,
) -> Result<(Community, Provisioned), Error> {
    let mut tx = tenant::begin_cross_community(pool, CrossCommunity::Provisioning).await?;
    let slug = db::free_slug(&mut tx, &slugify(&guild.name), guild.guild_id).await?;
    let (community, outcome) = db::upsert_community(&mut tx, guild, &slug, Uuid::now_v7()).await?;
    tenant::scope(&mut tx, community.id).await?;
    db::ensure_settings(&mut tx, community.id).await?;
    db::upsert_members(&mut tx, community.id, &guild.members).await?;
    if let Some(entry) = provision_entry(&community, outcome) {
        audit::record(&mut tx, entry).await?;
    }
    tx.commit().await?;
    if outcome != Provisioned::AlreadyActive {
        tracing::info!(community.id = %community.id, ?outcome, "community provisioned");
    }
    Ok((community, outcome))
}

/// The audit entry for a provisioning outcome; a refresh of an active one is none.
fn provision_entry(community: &Community, outcome: Provisioned) -> Option<NewEntry> {
    let action = match outcome {
        Provisioned::Created => "community.created",
        Provisioned::Reactivated => "community.reactivated",
        Provisioned::AlreadyActive => return None,
    };
    let mut entry = NewEntry::new(community.id, GATEWAY, action, target(community.id));
    entry.after = Some(serde_json::json!({
        "slug": community.slug,
        "name": community.name,
        "guild_id": community.guild_id.to_string(),
        "owner_id": community.owner_id.to_string(),
        "active": true,
    }));
    Some(entry)
}

fn target(community_id: Uuid) -> String {
    format!("community:{community_id}")
}

/// The bot was removed from the guild: keep everything, mark it inactive.
#[tracing::instrument(skip_all, fields(guild.id = %guild_id))]
pub async fn deactivate(pool: &PgPool, guild_id: GuildId) -> Result<bool, Error> {
    let mut tx = tenant::begin_cross_community(pool, CrossCommunity::Provisioning).await?;
    let Some(community_id) = db::deactivate(&mut tx, guild_id).await? else {
        return Ok(false);
    };
    tenant::scope(&mut tx, community_id).await?;
    let mut entry = NewEntry::new(
        community_id,
        GATEWAY,
        "community.deactivated",
        target(community_id),
    );
    entry.before = Some(serde_json::json!({ "active": true }));
    entry.after = Some(serde_json::json!({ "active": false }));
    audit::record(&mut tx, entry).await?;
    tx.commit().await?;
    tracing::info!("community deactivated: bot removed from guild");
    Ok(true)
}

#[tracing::instrument(skip_all, fields(guild.id = %guild_id, user.id = %member.user_id))]
pub async fn member_joined(
    pool: &PgPool,
    guild_id: GuildId,
    member: &MemberSnapshot,
) -> Result<(), Error> {
    let (community, mut tx) = begin(pool, guild_id).await?;
    db::record_join(&mut tx, community.id, member).await?;
    let settings = db::settings(&mut *tx, community.id).await?;
    for job in welcome::join_jobs(&community, &settings, member) {
        outbox::enqueue(&mut tx, job).await?;
    }
    tx.commit().await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(guild.id = %guild_id, user.id = %user_id))]
pub async fn member_left(pool: &PgPool, guild_id: GuildId, user_id: UserId) -> Result<(), Error> {
    let (community, mut tx) = begin(pool, guild_id).await?;
    let joined_at = db::record_leave(&mut tx, community.id, user_id).await?;
    let settings = db::settings(&mut *tx, community.id).await?;
    for job in welcome::leave_jobs(&community, &settings, user_id, joined_at) {
        outbox::enqueue(&mut tx, job).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Discord reported the member's roles (GUILD_MEMBER_UPDATE): keep the roster's copy
/// current, so drift repair compares with what Discord actually shows.
#[tracing::instrument(skip_all, fields(guild.id = %guild_id, user.id = %user_id))]
pub async fn member_roles_changed(
    pool: &PgPool,
    guild_id: GuildId,
    user_id: UserId,
    roles: &[RoleId],
) -> Result<(), Error> {
    let (community, mut tx) = begin(pool, guild_id).await?;
    db::record_roles(&mut tx, community.id, user_id, roles).await?;
    tx.commit().await?;
    Ok(())
}

/// The community behind a guild, read through the directory (the one lookup that
/// comes before knowing which community a request belongs to).
pub async fn find_by_guild(pool: &PgPool, guild_id: GuildId) -> Result<Community, Error> {
    let mut tx = tenant::begin_cross_community(pool, CrossCommunity::Directory).await?;
    let community = db::find_by_guild(&mut tx, guild_id).await?;
    tx.commit().await?;
    community.ok_or(Error::NotProvisioned)
}

/// Finds the guild's community and begins a transaction scoped to it: how domain code
/// that starts from a Discord guild id reaches its community's data.
pub async fn begin(
    pool: &PgPool,
    guild_id: GuildId,
) -> Result<(Community, Transaction<'static, Postgres>), Error> {
    let mut tx = tenant::begin_cross_community(pool, CrossCommunity::Directory).await?;
    let community = db::find_by_guild(&mut tx, guild_id)
        .await?
        .ok_or(Error::NotProvisioned)?;
    tenant::scope(&mut tx, community.id).await?;
    Ok((community, tx))
}

/// Whether a member is currently recorded as present (not left).
pub async fn is_present(pool: &PgPool, guild_id: GuildId, user_id: UserId) -> Result<bool, Error> {
    let (community, mut tx) = begin(pool, guild_id).await?;
    let present = db::is_present(&mut tx, community.id, user_id).await?;
    tx.commit().await?;
    Ok(present)
}

pub async fn settings(pool: &PgPool, guild_id: GuildId) -> Result<(Community, Settings), Error> {
    let (community, mut tx) = begin(pool, guild_id).await?;
    let settings = db::settings(&mut *tx, community.id).await?;
    tx.commit().await?;
    Ok((community, settings))
}

impl Settings {
    /// Moderators: members who can manage the server, or hold a moderator role from
    /// `/setup moderators`.
    pub fn is_moderator(&self, roles: &[RoleId], permissions: serenity::all::Permissions) -> bool {
        permissions.administrator()
            || permissions.manage_guild()
            || roles.iter().any(|r| self.moderator_roles.contains(r))
    }
}

/// The settings, read in the caller's transaction scoped to `community_id`.
pub async fn settings_in(
    conn: &mut sqlx::PgConnection,
    community_id: Uuid,
) -> Result<Settings, sqlx::Error> {
    db::settings(conn, community_id).await
}

/// Applies one `/setup` change made by `actor` and returns the resulting settings.
/// The audit entry (before and after) commits with the change. `correlation_id`
/// names the request, e.g. `interaction:<id>`.
#[tracing::instrument(skip_all, fields(guild.id = %guild_id, user.id = %actor))]
pub async fn update_settings(
    pool: &PgPool,
    guild_id: GuildId,
    actor: UserId,
    change: SettingsChange,
    correlation_id: Option<String>,
) -> Result<Settings, Error> {
    check_change(&change)?;
    let (community, mut tx) = begin(pool, guild_id).await?;
    let before = db::settings_for_update(&mut tx, community.id).await?;
    let mut settings = before.clone();
    apply_change(&mut settings, change);
    db::save_settings(&mut tx, community.id, &settings, actor).await?;
    let mut entry = NewEntry::new(
        community.id,
        Actor::User(actor),
        "settings.updated",
        target(community.id),
    );
    entry.before = Some(settings_json(&before));
    entry.after = Some(settings_json(&settings));
    entry.correlation_id = correlation_id;
    audit::record(&mut tx, entry).await?;
    tx.commit().await?;
    Ok(settings)
}

/// Settings as the audit log shows them; snowflakes as strings, as Discord does.
pub fn settings_json(s: &Settings) -> serde_json::Value {
    let id = |c: Option<ChannelId>| c.map(|c| c.to_string());
    let roles = |r: &[RoleId]| r.iter().map(|r| r.to_string()).collect::<Vec<_>>();
    serde_json::json!({
        "admin_channel": id(s.admin_channel),
        "mod_log_channel": id(s.mod_log_channel),
        "moderator_roles": roles(&s.moderator_roles),
        "welcome_channel": id(s.welcome_channel),
        "welcome_message": s.welcome_message,
        "farewell_message": s.farewell_message,
        "auto_roles": roles(&s.auto_roles),
        "quarantine_role": s.quarantine_role.map(|r| r.to_string()),
        "mute_role": s.mute_role.map(|r| r.to_string()),
    })
}

fn check_change(change: &SettingsChange) -> Result<(), Error> {
    let empty = change.admin_channel.is_none()
        && change.mod_log_channel.is_none()
        && change.add_moderator_role.is_none()
        && change.remove_moderator_role.is_none()
        && change.welcome_channel.is_none()
        && change.welcome_message.is_none()
        && change.farewell_message.is_none()
        && change.add_auto_role.is_none()
        && change.remove_auto_role.is_none()
        && change.quarantine_role.is_none()
        && change.mute_role.is_none();
    if empty {
        return Err(Error::NothingToChange);
    }
    for text in [&change.welcome_message, &change.farewell_message]
        .into_iter()
        .flatten()
    {
        let chars = text.chars().count();
        if chars > MAX_MESSAGE_CHARS {
            return Err(Error::MessageTooLong(chars));
        }
    }
    Ok(())
}

/// Pure: the settings after a change. An empty message text clears that message.
pub fn apply_change(settings: &mut Settings, change: SettingsChange) {
    if let Some(c) = change.admin_channel {
        settings.admin_channel = Some(c);
    }
    if let Some(c) = change.mod_log_channel {
        settings.mod_log_channel = Some(c);
    }
    if let Some(role) = change.add_moderator_role
        && !settings.moderator_roles.contains(&role)
    {
        settings.moderator_roles.push(role);
    }
    if let Some(role) = change.remove_moderator_role {
        settings.moderator_roles.retain(|r| *r != role);
    }
    if let Some(c) = change.welcome_channel {
        settings.welcome_channel = Some(c);
    }
    if let Some(text) = change.welcome_message {
        settings.welcome_message = Some(text).filter(|t| !t.trim().is_empty());
    }
    if let Some(text) = change.farewell_message {
        settings.farewell_message = Some(text).filter(|t| !t.trim().is_empty());
    }
    if let Some(role) = change.add_auto_role
        && !settings.auto_roles.contains(&role)
    {
        settings.auto_roles.push(role);
    }
    if let Some(role) = change.remove_auto_role {
        settings.auto_roles.retain(|r| *r != role);
    }
    if let Some(role) = change.quarantine_role {
        settings.quarantine_role = Some(role);
    }
    if let Some(role) = change.mute_role {
        settings.mute_role = Some(role);
    }
}

/// A URL-safe handle from a guild name: lowercase ASCII letters, digits and dashes.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_end_matches('-').chars().take(60).collect();
    let slug = slug.trim_end_matches('-').to_owned();
    if slug.is_empty() {
        "community".into()
    } else {
        slug
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_ascii_dashed_and_never_empty() {
        assert_eq!(
            slugify("Rust Programming  Community!"),
            "rust-programming-community"
        );
        assert_eq!(slugify("  ✨✨ "), "community");
        assert_eq!(slugify("Café Ünïcode"), "caf-n-code");
        assert!(slugify(&"x".repeat(300)).len() <= 60);
    }

    #[test]
    fn moderator_roles_are_a_set_and_empty_text_clears() {
        let mut s = Settings {
            welcome_message: Some("hi".into()),
            ..Settings::default()
        };
        let role = RoleId::new(5);
        apply_change(
            &mut s,
            SettingsChange {
                add_moderator_role: Some(role),
                ..Default::default()
            },
        );
        apply_change(
            &mut s,
            SettingsChange {
                add_moderator_role: Some(role),
                ..Default::default()
            },
        );
        assert_eq!(s.moderator_roles, vec![role]);
        apply_change(
            &mut s,
            SettingsChange {
                welcome_message: Some(" ".into()),
                ..Default::default()
            },
        );
        assert_eq!(s.welcome_message, None);
        apply_change(
            &mut s,
            SettingsChange {
                remove_moderator_role: Some(role),
                ..Default::default()
            },
        );
        assert!(s.moderator_roles.is_empty());
    }

    #[test]
    fn empty_and_oversized_changes_are_refused() {
        assert!(matches!(
            check_change(&SettingsChange::default()),
            Err(Error::NothingToChange)
        ));
        let long = SettingsChange {
            welcome_message: Some("a".repeat(2001)),
            ..Default::default()
        };
        assert!(matches!(
            check_change(&long),
            Err(Error::MessageTooLong(2001))
        ));
    }
}
