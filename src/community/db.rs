//! SQL for communities, members and settings. Discord snowflakes become `bigint`
//! here and nowhere else.

use serenity::all::{ChannelId, GuildId, RoleId, UserId};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{Community, GuildSnapshot, MemberSnapshot, Provisioned, Settings};

/// Snowflakes are u64 but fit in i64 until the year 2084; PostgreSQL has no u64.
pub(crate) fn sf(id: u64) -> i64 {
    id as i64
}

fn unsf(id: i64) -> u64 {
    id as u64
}

/// Column lists shared by several statements; macros so `concat!` keeps SQL static.
macro_rules! community_columns {
    () => {
        "id, slug, name, discord_guild_id, owner_discord_id, status, created_at"
    };
}
macro_rules! settings_columns {
    () => {
        "admin_channel_id, mod_log_channel_id, moderator_role_ids, \
         welcome_channel_id, welcome_message, farewell_message, auto_role_ids, \
         quarantine_role_id, mute_role_id"
    };
}

fn community_from_row(row: &PgRow) -> Result<Community, sqlx::Error> {
    Ok(Community {
        id: row.try_get("id")?,
        slug: row.try_get("slug")?,
        name: row.try_get("name")?,
        guild_id: GuildId::new(unsf(row.try_get("discord_guild_id")?)),
        owner_id: UserId::new(unsf(row.try_get("owner_discord_id")?)),
        active: row.try_get::<String, _>("status")? == "active",
        created_at: row.try_get("created_at")?,
    })
}

/// The slug itself when free (or already this guild's), else the slug with the guild id.
pub async fn free_slug(
    conn: &mut PgConnection,
    base: &str,
    guild_id: GuildId,
) -> Result<String, sqlx::Error> {
    let taken: bool = sqlx::query_scalar(
        "select exists(select 1 from communities where slug = $1 and discord_guild_id <> $2)",
    )
    .bind(base)
    .bind(sf(guild_id.get()))
    .fetch_one(&mut *conn)
    .await?;
    Ok(if taken {
        format!("{base}-{}", guild_id.get())
    } else {
        base.to_owned()
    })
}

/// Insert-or-refresh keyed on the guild id, so a replayed GUILD_CREATE can never make
/// a second community. `xmax = 0` tells an insert from an update; the old status is
/// read in the same statement to tell a reactivation.
pub async fn upsert_community(
    conn: &mut PgConnection,
    guild: &GuildSnapshot,
    slug: &str,
    new_id: Uuid,
) -> Result<(Community, Provisioned), sqlx::Error> {
    let sql = concat!(
        "with previous as (select status from communities where discord_guild_id = $3)
         insert into communities (id, slug, name, discord_guild_id, owner_discord_id)
         values ($1, $2, $4, $3, $5)
         on conflict (discord_guild_id) do update
            set name = excluded.name, owner_discord_id = excluded.owner_discord_id,
                status = 'active', deactivated_at = null, updated_at = now()
         returning ",
        community_columns!(),
        ", (xmax = 0) as inserted, (select status from previous) as previous_status"
    );
    let row = sqlx::query(sql)
        .bind(new_id)
        .bind(slug)
        .bind(sf(guild.guild_id.get()))
        .bind(guild.name.chars().take(100).collect::<String>())
        .bind(sf(guild.owner_id.get()))
        .fetch_one(&mut *conn)
        .await?;
    let outcome = if row.try_get::<bool, _>("inserted")? {
        Provisioned::Created
    } else if row
        .try_get::<Option<String>, _>("previous_status")?
        .as_deref()
        == Some("inactive")
    {
        Provisioned::Reactivated
    } else {
        Provisioned::AlreadyActive
    };
    Ok((community_from_row(&row)?, outcome))
}

pub async fn ensure_settings(
    conn: &mut PgConnection,
    community_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("insert into community_settings (community_id) values ($1) on conflict do nothing")
        .bind(community_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the roster GUILD_CREATE carries in one statement (unnest, not a loop).
pub async fn upsert_members(
    conn: &mut PgConnection,
    community_id: Uuid,
    members: &[MemberSnapshot],
) -> Result<(), sqlx::Error> {
    if members.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = members.iter().map(|m| sf(m.user_id.get())).collect();
    let bots: Vec<bool> = members.iter().map(|m| m.is_bot).collect();
    let joined: Vec<Option<chrono::DateTime<chrono::Utc>>> =
        members.iter().map(|m| m.joined_at).collect();
    // Postgres has no array-of-arrays of varying length, so roles travel as JSON.
    let roles: Vec<serde_json::Value> = members
        .iter()
        .map(|m| serde_json::Value::from(m.roles.iter().map(|r| r.get()).collect::<Vec<_>>()))
        .collect();
    sqlx::query(
        "insert into community_members (community_id, discord_user_id, is_bot, joined_at, roles)
         select $1, u.id, u.bot, u.joined,
                coalesce(array(select jsonb_array_elements_text(u.roles)::bigint), '{}')
         from unnest($2::bigint[], $3::bool[], $4::timestamptz[], $5::jsonb[]) as u(id, bot, joined, roles)
         on conflict (community_id, discord_user_id) do update
            set roles = excluded.roles, is_bot = excluded.is_bot,
                joined_at = coalesce(excluded.joined_at, community_members.joined_at),
                left_at = null, updated_at = now()",
    )
    .bind(community_id)
    .bind(ids)
    .bind(bots)
    .bind(joined)
    .bind(roles)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks the guild's community inactive; its id when it was active until now.
pub async fn deactivate(
    conn: &mut PgConnection,
    guild_id: GuildId,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "update communities set status = 'inactive', deactivated_at = now(), updated_at = now()
         where discord_guild_id = $1 and status = 'active'
         returning id",
    )
    .bind(sf(guild_id.get()))
    .fetch_optional(conn)
    .await
}

pub async fn find_by_guild(
    conn: &mut PgConnection,
    guild_id: GuildId,
) -> Result<Option<Community>, sqlx::Error> {
    let sql = concat!(
        "select ",
        community_columns!(),
        " from communities where discord_guild_id = $1"
    );
    let row = sqlx::query(sql)
        .bind(sf(guild_id.get()))
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(community_from_row).transpose()
}

pub async fn record_join(
    conn: &mut PgConnection,
    community_id: Uuid,
    member: &MemberSnapshot,
) -> Result<(), sqlx::Error> {
    let roles: Vec<i64> = member.roles.iter().map(|r| sf(r.get())).collect();
    sqlx::query(
        "insert into community_members (community_id, discord_user_id, is_bot, joined_at, roles)
         values ($1, $2, $3, coalesce($4, now()), $5)
         on conflict (community_id, discord_user_id) do update
            set joined_at = coalesce($4, now()), left_at = null, roles = $5,
                is_bot = $3, updated_at = now()",
    )
    .bind(community_id)
    .bind(sf(member.user_id.get()))
    .bind(member.is_bot)
    .bind(member.joined_at)
    .bind(roles)
    .execute(conn)
    .await?;
    Ok(())
}

/// The member's current roles; a member never seen before is recorded as present.
pub async fn record_roles(
    conn: &mut PgConnection,
    community_id: Uuid,
    user_id: UserId,
    roles: &[RoleId],
) -> Result<(), sqlx::Error> {
    let roles: Vec<i64> = roles.iter().map(|r| sf(r.get())).collect();
    sqlx::query(
        "insert into community_members (community_id, discord_user_id, roles)
         values ($1, $2, $3)
         on conflict (community_id, discord_user_id) do update
            set roles = $3, updated_at = now()",
    )
    .bind(community_id)
    .bind(sf(user_id.get()))
    .bind(roles)
    .execute(conn)
    .await?;
    Ok(())
}

/// Returns when the membership that ended began (keys its farewell).
pub async fn record_leave(
    conn: &mut PgConnection,
    community_id: Uuid,
    user_id: UserId,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, sqlx::Error> {
    // A leave for someone we never saw join (joined before we were invited, in a large
    // guild) still gets a row, so the leave is not lost.
    sqlx::query_scalar(
        "insert into community_members (community_id, discord_user_id, left_at)
         values ($1, $2, now())
         on conflict (community_id, discord_user_id) do update
            set left_at = now(), updated_at = now()
         returning joined_at",
    )
    .bind(community_id)
    .bind(sf(user_id.get()))
    .fetch_one(conn)
    .await
}

pub async fn is_present(
    conn: &mut PgConnection,
    community_id: Uuid,
    user_id: UserId,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "select exists(select 1 from community_members
                       where community_id = $1 and discord_user_id = $2 and left_at is null)",
    )
    .bind(community_id)
    .bind(sf(user_id.get()))
    .fetch_one(conn)
    .await
}

fn settings_from_row(row: &PgRow) -> Result<Settings, sqlx::Error> {
    let channel = |name: &str| -> Result<Option<ChannelId>, sqlx::Error> {
        Ok(row
            .try_get::<Option<i64>, _>(name)?
            .map(|id| ChannelId::new(unsf(id))))
    };
    let roles = |name: &str| -> Result<Vec<RoleId>, sqlx::Error> {
        Ok(row
            .try_get::<Vec<i64>, _>(name)?
            .into_iter()
            .map(|id| RoleId::new(unsf(id)))
            .collect())
    };
    Ok(Settings {
        admin_channel: channel("admin_channel_id")?,
        mod_log_channel: channel("mod_log_channel_id")?,
        moderator_roles: roles("moderator_role_ids")?,
        welcome_channel: channel("welcome_channel_id")?,
        welcome_message: row.try_get("welcome_message")?,
        farewell_message: row.try_get("farewell_message")?,
        auto_roles: roles("auto_role_ids")?,
        quarantine_role: row
            .try_get::<Option<i64>, _>("quarantine_role_id")?
            .map(|id| RoleId::new(unsf(id))),
        mute_role: row
            .try_get::<Option<i64>, _>("mute_role_id")?
            .map(|id| RoleId::new(unsf(id))),
    })
}

pub async fn settings(
    conn: impl sqlx::PgExecutor<'_>,
    community_id: Uuid,
) -> Result<Settings, sqlx::Error> {
    let sql = concat!(
        "select ",
        settings_columns!(),
        " from community_settings where community_id = $1"
    );
    let row = sqlx::query(sql).bind(community_id).fetch_one(conn).await?;
    settings_from_row(&row)
}

/// Locks the row so two concurrent `/setup` changes apply one after the other.
pub async fn settings_for_update(
    conn: &mut PgConnection,
    community_id: Uuid,
) -> Result<Settings, sqlx::Error> {
    let sql = concat!(
        "select ",
        settings_columns!(),
        " from community_settings where community_id = $1 for update"
    );
    let row = sqlx::query(sql).bind(community_id).fetch_one(conn).await?;
    settings_from_row(&row)
}

pub async fn save_settings(
    conn: &mut PgConnection,
    community_id: Uuid,
    s: &Settings,
    actor: UserId,
) -> Result<(), sqlx::Error> {
    let ids = |roles: &[RoleId]| roles.iter().map(|r| sf(r.get())).collect::<Vec<_>>();
    sqlx::query(
        "update community_settings
            set admin_channel_id = $2, mod_log_channel_id = $3, moderator_role_ids = $4,
                welcome_channel_id = $5, welcome_message = $6, farewell_message = $7,
                auto_role_ids = $8, updated_by_discord_id = $9, updated_at = now(),
                quarantine_role_id = $10, mute_role_id = $11
          where community_id = $1",
    )
    .bind(community_id)
    .bind(s.admin_channel.map(|c| sf(c.get())))
    .bind(s.mod_log_channel.map(|c| sf(c.get())))
    .bind(ids(&s.moderator_roles))
    .bind(s.welcome_channel.map(|c| sf(c.get())))
    .bind(&s.welcome_message)
    .bind(&s.farewell_message)
    .bind(ids(&s.auto_roles))
    .bind(sf(actor.get()))
    .bind(s.quarantine_role.map(|r| sf(r.get())))
    .bind(s.mute_role.map(|r| sf(r.get())))
    .execute(conn)
    .await?;
    Ok(())
}

/// The guild of a community (work that knows only the community: scheduled jobs,
/// webhooks once scoped).
pub async fn guild_of(conn: &mut PgConnection, community: Uuid) -> Result<GuildId, sqlx::Error> {
    let id: i64 = sqlx::query_scalar("select discord_guild_id from communities where id = $1")
        .bind(community)
        .fetch_one(conn)
        .await?;
    Ok(GuildId::new(id as u64))
}
