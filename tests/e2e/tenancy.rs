//! Tenant isolation, proven on every community table the catalog knows about (so a
//! table added later is covered, or this test says which table it cannot seed): a
//! transaction scoped to community A cannot read, update, delete or re-home community
//! B's rows, and a connection with no scope sees no rows at all. Runs as the daemon
//! does, as the tenant role; the superuser pool only seeds and inspects.

use guildops::audit::{self, Actor, NewEntry};
use guildops::community::{self, GuildSnapshot, MemberSnapshot};
use guildops::db::tenant::{self, CrossCommunity};
use guildops::outbox::{self, Job, NewJob};
use serenity::all::{ChannelId, GuildId, RoleId, UserId};
use sqlx::{AssertSqlSafe, PgPool};
use uuid::Uuid;

use crate::support::{app_pool, migrated_database, pool};

/// Tables holding community data: every table with a `community_id` column, plus
/// `communities` itself (keyed by `id`). Read from the catalog, not listed by hand.
async fn community_tables(admin: &PgPool) -> Vec<(String, &'static str)> {
    let names: Vec<String> = sqlx::query_scalar(
        "select c.relname::text from pg_class c
           join pg_namespace n on n.oid = c.relnamespace
          where n.nspname = 'public' and c.relkind = 'r'
            and exists (select 1 from pg_attribute a where a.attrelid = c.oid
                          and a.attname = 'community_id' and not a.attisdropped)
          order by 1",
    )
    .fetch_all(admin)
    .await
    .expect("catalog");
    let mut tables = vec![("communities".to_owned(), "id")];
    tables.extend(names.into_iter().map(|n| (n, "community_id")));
    tables
}

fn guild(id: u64, name: &str) -> GuildSnapshot {
    GuildSnapshot {
        guild_id: GuildId::new(id),
        name: name.into(),
        owner_id: UserId::new(id + 1),
        members: vec![MemberSnapshot {
            user_id: UserId::new(id + 2),
            is_bot: false,
            joined_at: None,
            roles: vec![RoleId::new(id + 3)],
        }],
    }
}

/// Gives the community a row in every table the daemon's code writes today.
async fn seed(app: &PgPool, admin: &PgPool, guild_id: u64, name: &str) -> Uuid {
    let (community, _) = community::provision(app, &guild(guild_id, name))
        .await
        .expect("provision");
    let mut tx = tenant::begin(app, community.id).await.expect("scoped tx");
    let mut entry = NewEntry::new(
        community.id,
        Actor::User(UserId::new(7)),
        "test.note",
        "member:7".into(),
    );
    entry.reason = Some("personal text that may be erased".into());
    audit::record(&mut tx, entry).await.expect("audit entry");
    // A sealed chain has a head row and an unsealed entry sits beside it: seal one
    // entry, then record another.
    tx.commit().await.expect("commit");
    audit::seal(app, community.id).await.expect("seal");
    let mut tx = tenant::begin(app, community.id).await.expect("scoped tx");
    let entry = NewEntry::new(
        community.id,
        Actor::User(UserId::new(7)),
        "test.note",
        "member:8".into(),
    );
    audit::record(&mut tx, entry).await.expect("audit entry");
    let job = Job::SendMessage {
        channel_id: ChannelId::new(guild_id + 4),
        content: "hello".into(),
    };
    outbox::enqueue(
        &mut tx,
        NewJob::new(Some(community.id), format!("seed:{guild_id}"), job),
    )
    .await
    .expect("enqueue");
    tx.commit().await.expect("commit");
    // Written only by the job runtime after a failure; seeded directly.
    sqlx::query("insert into job_alerts (community_id, failure_kind) values ($1, 'seeded')")
        .bind(community.id)
        .execute(admin)
        .await
        .expect("alert slot");
    seed_membership(admin, community.id, guild_id).await;
    community.id
}

/// A row in each paid-tier table (the webhook and commands write them; seeded directly).
async fn seed_membership(admin: &PgPool, community: Uuid, n: u64) {
    let tier = Uuid::now_v7();
    let n = n as i64;
    let statements = [
        "insert into tiers (id, community_id, name, discord_role_id, stripe_price_id, unit_amount,
                            currency, billing_interval)
         values ($2, $1, 'Gold', $3, 'price_' || $3, 500, 'eur', 'month')",
        "insert into membership_policies (community_id) values ($1)",
        "insert into subscriptions (stripe_subscription_id, community_id, discord_user_id, status)
         values ('sub_' || $3, $1, $3, 'active')",
        "insert into grants (id, community_id, tier_id, discord_user_id, granted_by)
         values (gen_random_uuid(), $1, $2, $3, $3)",
        "insert into payments (stripe_invoice_id, community_id, amount, currency, status)
         values ('in_' || $3, $1, 500, 'eur', 'paid')",
        "insert into stripe_events (id, community_id, event_type, event_created_at, outcome, payload)
         values ('evt_' || $3, $1, 'invoice.paid', now(), 'applied', '{}')",
        "insert into paid_roles (community_id, discord_user_id, discord_role_id) values ($1, $3, $3)",
        "insert into automod_rules (id, community_id, name, spec, created_by, updated_by)
         values ($2, $1, 'rule', '{}', $3, $3)",
        "insert into automod_hits (community_id, rule_id, rule_name, discord_user_id,
                                   discord_channel_id, discord_message_id, actions, dry_run)
         values ($1, $2, 'rule', $3, $3, $3, '\"log\"', false)",
        "insert into case_numbers (community_id, last_number) values ($1, 1)",
        "insert into cases (id, community_id, number, kind, target_discord_id,
                            moderator_discord_id, reason, status)
         values ($2, $1, 1, 'warn', $3, $3, 'seed', 'recorded')",
        "insert into case_edits (community_id, case_id, editor_discord_id, field, before, after)
         values ($1, $2, $3, 'reason', 'a', 'b')",
        "insert into report_numbers (community_id, last_number) values ($1, 1)",
        "insert into reports (id, community_id, number, target_discord_id, category)
         values ($2, $1, 1, $3, 'spam')",
        "insert into report_reporters (report_id, community_id, reporter_discord_id, reason)
         values ($2, $1, $3, 'seed')",
        "insert into reporter_mutes (community_id, reporter_discord_id, muted_by, until)
         values ($1, $3, $3, now())",
        "insert into appeals (id, community_id, case_id, appellant_discord_id, reason)
         values ($2, $1, $2, $3, 'seed')",
        "insert into warning_policies (community_id) values ($1)",
        "insert into warning_thresholds (community_id, warnings, kind, duration_secs)
         values ($1, 3, 'timeout', 86400)",
        "insert into events (id, community_id, title, starts_at, ends_at, timezone, capacity,
                             status, created_by)
         values ($2, $1, 'Meetup', now(), now() + interval '1 hour', 'UTC', 10, 'scheduled', $3)",
        "insert into event_tickets (id, community_id, event_id, discord_user_id, display_name,
                                    status, token_hash)
         values ($2, $1, $2, $3, 'Ann', 'confirmed', sha256(('ticket' || $3)::bytea))",
        "insert into event_staff_keys (id, community_id, event_id, key_hash, created_by)
         values ($2, $1, $2, sha256(('key' || $3)::bytea), $3)",
        "insert into event_scans (community_id, event_id, ticket_id, result, device_id, scanned_at)
         values ($1, $2, $2, 'admitted', 'door-1', now())",
        "insert into event_settings (community_id) values ($1)",
    ];
    for sql in statements {
        sqlx::query(sql)
            .bind(community)
            .bind(tier)
            .bind(n)
            .execute(admin)
            .await
            .unwrap_or_else(|e| panic!("seeding {sql}: {e}"));
    }
}

async fn count(admin: &PgPool, table: &str, key: &str, community: Uuid) -> i64 {
    let sql = format!("select count(*) from {table} where {key} = $1");
    sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(community)
        .fetch_one(admin)
        .await
        .expect("count")
}

#[tokio::test]
async fn every_community_table_is_under_forced_row_level_security() {
    let url = migrated_database().await;
    let admin = pool(&url).await;
    for (table, _) in community_tables(&admin).await {
        let (enabled, forced): (bool, bool) = sqlx::query_as(
            "select relrowsecurity, relforcerowsecurity from pg_class
              where relname = $1 and relnamespace = 'public'::regnamespace",
        )
        .bind(&table)
        .fetch_one(&admin)
        .await
        .expect("pg_class");
        let policies: i64 =
            sqlx::query_scalar("select count(*) from pg_policies where tablename = $1")
                .bind(&table)
                .fetch_one(&admin)
                .await
                .expect("pg_policies");
        assert!(
            enabled && forced && policies > 0,
            "{table}: row level security enabled={enabled} forced={forced} policies={policies}"
        );
    }
    let role_is_plain: bool = sqlx::query_scalar(
        "select not rolsuper and not rolbypassrls from pg_roles where rolname = $1",
    )
    .bind(tenant::APP_ROLE)
    .fetch_one(&admin)
    .await
    .expect("role");
    assert!(role_is_plain, "the tenant role must not bypass RLS");
}

#[tokio::test]
async fn a_scoped_transaction_never_reaches_another_communitys_rows() {
    let url = migrated_database().await;
    let admin = pool(&url).await;
    let app = app_pool(&url).await;
    let a = seed(&app, &admin, 1_000, "Alpha").await;
    let b = seed(&app, &admin, 2_000, "Beta").await;
    let tables = community_tables(&admin).await;

    let mut before = Vec::new();
    for (table, key) in &tables {
        let rows = count(&admin, table, key, b).await;
        assert!(
            rows > 0 && count(&admin, table, key, a).await > 0,
            "{table} has no rows to test isolation with: seed it in tests/e2e/tenancy.rs"
        );
        before.push(rows);
    }

    for (table, key) in &tables {
        let mut tx = tenant::begin(&app, a).await.expect("scoped tx");
        let (own, foreign): (i64, i64) = sqlx::query_as(AssertSqlSafe(format!(
            "select count(*) filter (where {key} = $1), count(*) filter (where {key} <> $1)
               from {table}"
        )))
        .bind(a)
        .fetch_one(&mut *tx)
        .await
        .expect("select");
        assert!(own > 0, "{table}: A cannot see its own rows");
        assert_eq!(foreign, 0, "{table}: A sees B's rows");

        for (verb, sql) in [
            (
                "update",
                format!("update {table} set {key} = {key} where {key} = $1"),
            ),
            ("delete", format!("delete from {table} where {key} = $1")),
        ] {
            let outcome = sqlx::query(AssertSqlSafe(sql))
                .bind(b)
                .execute(&mut *tx)
                .await;
            match outcome {
                Ok(done) => assert_eq!(done.rows_affected(), 0, "{table}: A could {verb} B's rows"),
                // The audit tables refuse the statement outright; that is isolation too,
                // but it ends the transaction, so start another for the next check.
                Err(e) => {
                    assert!(
                        e.to_string().contains("permission denied"),
                        "{table}: {verb} failed oddly: {e}"
                    );
                    tx.rollback().await.expect("rollback");
                    tx = tenant::begin(&app, a).await.expect("scoped tx");
                }
            }
        }
        // Moving A's own row into B is refused by the policy's WITH CHECK.
        let moved = sqlx::query(AssertSqlSafe(format!(
            "update {table} set {key} = $2 where {key} = $1"
        )))
        .bind(a)
        .bind(b)
        .execute(&mut *tx)
        .await;
        assert!(moved.is_err(), "{table}: A moved a row into B");
        tx.rollback().await.expect("rollback");
    }

    for ((table, key), rows) in tables.iter().zip(before) {
        assert_eq!(
            count(&admin, table, key, b).await,
            rows,
            "{table}: B's rows changed"
        );
    }
}

#[tokio::test]
async fn a_query_without_a_scope_sees_nothing() {
    let url = migrated_database().await;
    let admin = pool(&url).await;
    let app = app_pool(&url).await;
    seed(&app, &admin, 3_000, "Gamma").await;
    for (table, _) in community_tables(&admin).await {
        let sql = format!("select count(*) from {table}");
        let unscoped: i64 = sqlx::query_scalar(AssertSqlSafe(sql.clone()))
            .fetch_one(&app)
            .await
            .expect("unscoped select");
        assert_eq!(unscoped, 0, "{table}: an unscoped query sees rows");
        // The directory may list communities and nothing else.
        let mut tx = tenant::begin_cross_community(&app, CrossCommunity::Directory)
            .await
            .expect("directory tx");
        let listed: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_one(&mut *tx)
            .await
            .expect("directory select");
        let expected = i64::from(table == "communities");
        assert_eq!(
            listed, expected,
            "{table}: the directory sees {listed} rows"
        );
    }
}
