//! Paid tiers end to end: the real daemon, real PostgreSQL, the fake Discord and the
//! fake Stripe API; webhooks built from Stripe's own fixture objects, signed with the
//! endpoint secret and posted over loopback. Roles are checked where they end up: on
//! the member in the fake Discord.

use std::time::Duration;

use chrono::Utc;
use guildops::Daemon;
use guildops::membership::{self, GrantRequest, Interval, NewTier, Tier};
use guildops_harness::stripe::{self as fake, FakeStripe};
use serde_json::{Value, json};
use serenity::all::{GuildId, UserId};

use crate::support::{World, deliver, stripe_secrets};

pub struct Paid {
    pub world: World,
    pub stripe: FakeStripe,
    pub daemon: Daemon,
    pub client: reqwest::Client,
    pub role: u64,
    pub tier: Tier,
}

impl Paid {
    pub async fn start() -> Paid {
        let world = World::new().await;
        let stripe = FakeStripe::start().await;
        let mut config = world.config();
        config.stripe.api_base = Some(stripe.base_url());
        config.jobs.sweep_interval_ms = 100;
        let daemon = world
            .start_daemon_with_secrets(config, stripe_secrets(&world.discord))
            .await;
        let role = world.discord.add_role(world.guild.id, "Gold", 0, 10);
        let tier = membership::create_tier(
            &daemon.app.pool,
            daemon.app.stripe.as_deref(),
            guild(&world),
            UserId::new(world.guild.owner_id),
            NewTier {
                name: "Gold".into(),
                description: Some("Supporters".into()),
                role_id: serenity::all::RoleId::new(role),
                unit_amount: 499,
                currency: "eur".into(),
                interval: Interval::Month,
            },
            chrono::Duration::hours(1),
        )
        .await
        .expect("tier created through the fake Stripe");
        Paid {
            world,
            stripe,
            daemon,
            client: reqwest::Client::new(),
            role,
            tier,
        }
    }

    /// A member of the guild, recorded by the daemon.
    pub async fn member(&self, name: &str) -> u64 {
        let user = self.world.discord.add_user(name);
        self.world
            .discord
            .add_member(self.world.guild.id, user, &[]);
        let pool = self.world.pool.clone();
        self.world
            .wait_for(|| {
                let pool = pool.clone();
                async move { present(&pool, user).await }
            })
            .await;
        user
    }

    /// `/subscribe` then paying: returns the subscription id.
    pub async fn subscribe(&self, user: u64) -> String {
        let (_, url) = membership::checkout(
            &self.daemon.app.pool,
            self.daemon.app.stripe.as_deref(),
            guild(&self.world),
            UserId::new(user),
            Some("gold"),
        )
        .await
        .expect("checkout url");
        let session = self.stripe.last_session().expect("a session");
        assert_eq!(session["url"], json!(url));
        let done = self
            .stripe
            .complete_checkout(session["id"].as_str().expect("id"));
        let event = fake::event(
            &evt(),
            "checkout.session.completed",
            fake::now(),
            done.clone(),
        );
        assert_eq!(self.send(&event).await, 200);
        done["subscription"]
            .as_str()
            .expect("subscription")
            .to_owned()
    }

    pub async fn send(&self, event: &Value) -> u16 {
        deliver(&self.client, self.daemon.http_addr, event).await.0
    }

    pub fn has_role(&self, user: u64) -> bool {
        self.world
            .discord
            .member_roles(self.world.guild.id, user)
            .is_some_and(|r| r.contains(&self.role))
    }

    pub async fn wait_role(&self, user: u64, held: bool) {
        let deadline = tokio::time::Instant::now() + crate::support::WAIT;
        while self.has_role(user) != held {
            assert!(
                tokio::time::Instant::now() < deadline,
                "member {user} never {} the paid role",
                if held { "got" } else { "lost" }
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// A subscription event carrying the fake's current object for `sub`.
    pub fn sub_event(&self, kind: &str, sub: &str, created: i64) -> Value {
        let object = self.stripe.subscription(sub).expect("known subscription");
        fake::event(&evt(), kind, created, object)
    }
}

pub fn guild(world: &World) -> GuildId {
    GuildId::new(world.guild.id)
}

pub fn evt() -> String {
    format!("evt_{}", uuid::Uuid::new_v4().simple())
}

async fn present(pool: &sqlx::PgPool, user: u64) -> bool {
    sqlx::query_scalar(
        "select exists(select 1 from community_members where discord_user_id = $1 and left_at is null)",
    )
    .bind(user as i64)
    .fetch_one(pool)
    .await
    .expect("member")
}

/// An invoice of `sub` (Stripe's fixture, with the current API's parent shape).
pub fn invoice(id: &str, sub: &str, customer: &str, charge: Option<&str>) -> Value {
    let mut inv = fake::fixture("invoice");
    inv["id"] = json!(id);
    inv["customer"] = json!(customer);
    inv["amount_due"] = json!(499);
    inv["amount_paid"] = json!(499);
    inv["currency"] = json!("eur");
    inv["parent"] = json!({"type": "subscription_details",
        "subscription_details": {"subscription": sub, "metadata": {}}});
    if let Some(c) = charge {
        inv["charge"] = json!(c);
    }
    inv
}

#[tokio::test]
async fn checkout_grants_the_role_and_a_failed_payment_keeps_it_through_grace_only() {
    let paid = Paid::start().await;
    membership::set_policy(
        &paid.daemon.app.pool,
        guild(&paid.world),
        UserId::new(paid.world.guild.owner_id),
        Some(3),
        None,
        None,
    )
    .await
    .expect("policy");
    let alice = paid.member("alice").await;
    let sub = paid.subscribe(alice).await;
    paid.wait_role(alice, true).await;
    let session = paid.stripe.last_session().expect("session");
    assert!(
        session["client_reference_id"]
            .as_str()
            .is_some_and(|r| r.ends_with(&format!(":{alice}"))),
        "client_reference_id carries the interaction user's id"
    );
    let customer = paid.stripe.subscription(&sub).expect("sub")["customer"]
        .as_str()
        .expect("customer")
        .to_owned();

    // The renewal fails: kept through the grace period, removed when it ends.
    let t = fake::now();
    let failed = fake::event(
        &evt(),
        "invoice.payment_failed",
        t,
        invoice("in_1", &sub, &customer, None),
    );
    assert_eq!(paid.send(&failed).await, 200);
    paid.stripe
        .update_subscription(&sub, |s| s["status"] = json!("past_due"));
    assert_eq!(
        paid.send(&paid.sub_event("customer.subscription.updated", &sub, t))
            .await,
        200
    );
    assert!(paid.has_role(alice), "kept within the grace period");
    paid.wait_role(alice, false).await;
    assert!(
        Utc::now().timestamp() >= t + 3,
        "removed only once the grace period ended"
    );

    // Paying again restores it; deleting the subscription ends it.
    let paid_event = fake::event(
        &evt(),
        "invoice.paid",
        t + 10,
        invoice("in_1", &sub, &customer, None),
    );
    assert_eq!(paid.send(&paid_event).await, 200);
    paid.stripe
        .update_subscription(&sub, |s| s["status"] = json!("active"));
    assert_eq!(
        paid.send(&paid.sub_event("customer.subscription.updated", &sub, t + 11))
            .await,
        200
    );
    paid.wait_role(alice, true).await;

    // An older update arriving late changes nothing (high-water mark).
    paid.stripe
        .update_subscription(&sub, |s| s["status"] = json!("unpaid"));
    let stale = paid.sub_event("customer.subscription.updated", &sub, t + 5);
    assert_eq!(paid.send(&stale).await, 200);
    paid.stripe
        .update_subscription(&sub, |s| s["status"] = json!("canceled"));
    assert_eq!(
        paid.send(&paid.sub_event("customer.subscription.deleted", &sub, t + 20))
            .await,
        200
    );
    paid.wait_role(alice, false).await;

    let audited: i64 = sqlx::query_scalar(
        "select count(*) from audit_log where action = 'membership.roles_synced'",
    )
    .fetch_one(&paid.world.pool)
    .await
    .expect("audit");
    assert!(audited >= 4, "each role change is audited ({audited})");
    let payment: (String, i64) =
        sqlx::query_as("select status, amount from payments where stripe_invoice_id = 'in_1'")
            .fetch_one(&paid.world.pool)
            .await
            .expect("payment recorded");
    assert_eq!(payment, ("paid".to_owned(), 499));
    paid.daemon.stop().await.expect("stops");
}

#[tokio::test]
async fn cancel_at_period_end_keeps_the_role_until_then() {
    let paid = Paid::start().await;
    let bob = paid.member("bob").await;
    let sub = paid.subscribe(bob).await;
    paid.wait_role(bob, true).await;
    let end = fake::now() + 2;
    paid.stripe.update_subscription(&sub, |s| {
        s["cancel_at_period_end"] = json!(true);
        s["items"]["data"][0]["current_period_end"] = json!(end);
    });
    assert_eq!(
        paid.send(&paid.sub_event("customer.subscription.updated", &sub, fake::now() + 1))
            .await,
        200
    );
    assert!(paid.has_role(bob), "kept until the period ends");
    paid.wait_role(bob, false).await;
    assert!(
        Utc::now().timestamp() >= end,
        "removed at the period's end, not before"
    );
    paid.daemon.stop().await.expect("stops");
}

#[tokio::test]
async fn refunds_and_disputes_revoke_per_policy_and_a_won_dispute_restores() {
    let paid = Paid::start().await;
    let carol = paid.member("carol").await;
    let dave = paid.member("dave").await;
    let t = fake::now();
    for (user, charge, inv) in [
        (carol, "ch_carol", "in_carol"),
        (dave, "ch_dave", "in_dave"),
    ] {
        let sub = paid.subscribe(user).await;
        paid.wait_role(user, true).await;
        let customer = paid.stripe.subscription(&sub).expect("sub")["customer"].clone();
        let e = fake::event(
            &evt(),
            "invoice.paid",
            t,
            invoice(inv, &sub, customer.as_str().unwrap_or(""), Some(charge)),
        );
        assert_eq!(paid.send(&e).await, 200);
    }
    let mut charge = fake::fixture("charge");
    charge["id"] = json!("ch_carol");
    charge["refunded"] = json!(true);
    charge["amount_refunded"] = json!(499);
    assert_eq!(
        paid.send(&fake::event(&evt(), "charge.refunded", t + 1, charge))
            .await,
        200
    );
    paid.wait_role(carol, false).await;

    let mut dispute = fake::fixture("dispute");
    dispute["charge"] = json!("ch_dave");
    assert_eq!(
        paid.send(&fake::event(
            &evt(),
            "charge.dispute.created",
            t + 1,
            dispute.clone()
        ))
        .await,
        200
    );
    paid.wait_role(dave, false).await;
    dispute["status"] = json!("won");
    assert_eq!(
        paid.send(&fake::event(
            &evt(),
            "charge.dispute.closed",
            t + 2,
            dispute.clone()
        ))
        .await,
        200
    );
    paid.wait_role(dave, true).await;
    // A late `created` never reopens a closed dispute.
    assert_eq!(
        paid.send(&fake::event(
            &evt(),
            "charge.dispute.created",
            t + 1,
            dispute
        ))
        .await,
        200
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(paid.has_role(dave));
    assert!(!paid.has_role(carol));
    paid.daemon.stop().await.expect("stops");
}

#[tokio::test]
async fn a_refund_or_dispute_delivered_before_its_invoice_is_applied_when_the_invoice_arrives() {
    let paid = Paid::start().await;
    let erin = paid.member("erin").await;
    let frank = paid.member("frank").await;
    let t = fake::now();
    let mut subs = Vec::new();
    for user in [erin, frank] {
        let sub = paid.subscribe(user).await;
        paid.wait_role(user, true).await;
        subs.push(sub);
    }
    // Stripe does not promise order: the charge events come first.
    let mut charge = fake::fixture("charge");
    charge["id"] = json!("ch_erin");
    charge["invoice"] = Value::Null;
    charge["payment_intent"] = Value::Null;
    charge["refunded"] = json!(true);
    charge["amount_refunded"] = json!(499);
    let refund = fake::event(&evt(), "charge.refunded", t + 2, charge);
    assert_eq!(paid.send(&refund).await, 200);
    let mut dispute = fake::fixture("dispute");
    dispute["charge"] = json!("ch_frank");
    dispute["payment_intent"] = Value::Null;
    let disputed = fake::event(&evt(), "charge.dispute.created", t + 2, dispute);
    assert_eq!(paid.send(&disputed).await, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        paid.has_role(erin) && paid.has_role(frank),
        "nothing to apply them to yet"
    );

    for ((user, charge), sub) in [(erin, "ch_erin"), (frank, "ch_frank")]
        .into_iter()
        .zip(&subs)
    {
        let customer = paid.stripe.subscription(sub).expect("sub")["customer"].clone();
        let inv = invoice(
            &format!("in_{charge}"),
            sub,
            customer.as_str().unwrap_or(""),
            Some(charge),
        );
        assert_eq!(
            paid.send(&fake::event(&evt(), "invoice.paid", t + 1, inv))
                .await,
            200
        );
        paid.wait_role(user, false).await;
    }
    let late: i64 =
        sqlx::query_scalar("select count(*) from stripe_events where outcome = 'applied_late'")
            .fetch_one(&paid.world.pool)
            .await
            .expect("count");
    assert_eq!(late, 2, "both parked events were adopted by their invoice");
    // A redelivery of a parked event is a duplicate like any other.
    assert_eq!(paid.send(&refund).await, 200);
    let refunded: bool = sqlx::query_scalar(
        "select fully_refunded from payments where stripe_charge_id = 'ch_erin'",
    )
    .fetch_one(&paid.world.pool)
    .await
    .expect("payment");
    assert!(refunded);
    paid.daemon.stop().await.expect("stops");
}

#[tokio::test]
async fn leaving_and_rejoining_restores_paid_roles_and_grants_come_and_go() {
    let paid = Paid::start().await;
    let erin = paid.member("erin").await;
    paid.subscribe(erin).await;
    paid.wait_role(erin, true).await;
    paid.world.discord.remove_member(paid.world.guild.id, erin);
    let pool = paid.world.pool.clone();
    paid.world
        .wait_for(|| {
            let pool = pool.clone();
            async move { !present(&pool, erin).await }
        })
        .await;
    paid.world
        .discord
        .add_member(paid.world.guild.id, erin, &[]);
    paid.wait_role(erin, true).await;

    let frank = paid.member("frank").await;
    let owner = UserId::new(paid.world.guild.owner_id);
    let request = |revoke| GrantRequest {
        member: UserId::new(frank),
        tier: "Gold".into(),
        until: None,
        revoke,
    };
    let app = &paid.daemon.app;
    let added = membership::grant(
        &app.pool,
        guild(&paid.world),
        owner,
        request(false),
        "test:grant".into(),
    )
    .await
    .expect("grant");
    assert_eq!(added.added.len(), 1);
    paid.wait_role(frank, true).await;
    membership::grant(
        &app.pool,
        guild(&paid.world),
        owner,
        request(true),
        "test:revoke".into(),
    )
    .await
    .expect("revoke");
    paid.wait_role(frank, false).await;
    let again = membership::grant(
        &app.pool,
        guild(&paid.world),
        owner,
        request(true),
        "test:revoke2".into(),
    )
    .await;
    assert!(
        matches!(again, Err(e) if e.is_user_error()),
        "nothing left to revoke"
    );
    paid.daemon.stop().await.expect("stops");
}

#[tokio::test]
async fn a_tier_role_deleted_in_discord_fails_its_grant_with_one_admin_alert() {
    let paid = Paid::start().await;
    let g = &paid.world.guild;
    sqlx::query("update community_settings set admin_channel_id = $1")
        .bind(g.admin_channel as i64)
        .execute(&paid.world.pool)
        .await
        .expect("admin channel");
    paid.world.discord.delete_role(g.id, paid.role);
    let hana = paid.member("hana").await;
    paid.subscribe(hana).await;
    let alert = format!("Role <@&{}> no longer exists", paid.role);
    let discord = paid.world.discord.clone();
    let channel = g.admin_channel;
    paid.world
        .wait_for(|| {
            let discord = discord.clone();
            let alert = alert.clone();
            async move {
                discord
                    .channel_messages(channel)
                    .iter()
                    .any(|m| m["content"].as_str().is_some_and(|c| c.contains(&alert)))
            }
        })
        .await;
    let failed: i64 = sqlx::query_scalar(
        "select count(*) from jobs where kind = 'add_role' and status = 'failed' and failure_kind = 'unknown_role'",
    )
    .fetch_one(&paid.world.pool)
    .await
    .expect("failed jobs");
    assert_eq!(
        failed, 1,
        "the grant failed for good, visible in /ops failures"
    );
    paid.daemon.stop().await.expect("stops");
}

#[tokio::test]
async fn a_tier_that_kicks_on_lapse_removes_the_role_then_the_member_but_a_revoke_does_not() {
    let paid = Paid::start().await;
    let g = guild(&paid.world);
    let owner = UserId::new(paid.world.guild.owner_id);
    let change = membership::TierChange {
        lapse_kicks: Some(true),
        ..membership::TierChange::default()
    };
    let tier = membership::edit_tier(&paid.daemon.app.pool, g, owner, "Gold", change)
        .await
        .expect("edited");
    assert!(tier.lapse_kicks);

    let mia = paid.member("mia").await;
    let sub = paid.subscribe(mia).await;
    paid.wait_role(mia, true).await;
    paid.stripe
        .update_subscription(&sub, |s| s["status"] = json!("canceled"));
    let deleted = paid.sub_event("customer.subscription.deleted", &sub, fake::now() + 1);
    assert_eq!(paid.send(&deleted).await, 200);
    let world = &paid.world;
    world
        .wait_for(|| async { world.discord.member(world.guild.id, mia).is_none() })
        .await;
    let kick = world
        .discord
        .requests_matching("DELETE", &format!("/members/{mia}"))
        .into_iter()
        .find(|r| !r.path.contains("/roles/"))
        .expect("a kick");
    assert!(
        kick.audit_log_reason()
            .is_some_and(|r| r.contains("paid tier lapsed")),
        "{:?}",
        kick.audit_log_reason()
    );
    let removed = world
        .discord
        .requests_matching("DELETE", &format!("/members/{mia}/roles/"));
    assert_eq!(removed.len(), 1, "the role goes first");

    // An owner's revoke of a grant is not a lapse: the member stays.
    let ned = paid.member("ned").await;
    let request = |revoke| membership::GrantRequest {
        member: UserId::new(ned),
        tier: "Gold".into(),
        until: None,
        revoke,
    };
    let pool = &paid.daemon.app.pool;
    membership::grant(pool, g, owner, request(false), "test:grant".into())
        .await
        .expect("granted");
    paid.wait_role(ned, true).await;
    membership::grant(pool, g, owner, request(true), "test:revoke".into())
        .await
        .expect("revoked");
    paid.wait_role(ned, false).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(
        world.discord.member(world.guild.id, ned).is_some(),
        "not kicked"
    );
    paid.daemon.stop().await.expect("stops");
}
