-- Paid tiers (issue 4): a community sells Discord roles through Stripe subscriptions.
-- Stripe is the truth about payments; these tables hold what guildops learned from it
-- (order-independently: a per-subscription high-water mark on event time), the
-- complimentary grants owners give, and which paid roles guildops holds on each member,
-- so intended and actual roles can be compared and repaired. Every table is
-- community-owned and under the `tenant` policy (docs/tenancy.md). The webhook finds a
-- community through the narrow `stripe_webhook` purpose before it scopes to it.

create table tiers (
    id uuid primary key,
    community_id uuid not null references communities (id),
    name text not null check (char_length(name) between 1 and 100),
    description text check (char_length(description) <= 500),
    discord_role_id bigint not null,
    stripe_product_id text,
    stripe_price_id text not null,
    unit_amount bigint not null check (unit_amount >= 0),
    currency text not null check (currency ~ '^[a-z]{3}$'),
    billing_interval text not null check (billing_interval in ('month', 'year')),
    -- No new sales; current subscribers keep the role until their period ends.
    archived_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (community_id, name),
    unique (community_id, stripe_price_id)
);

-- Per-community rules; a community without a row uses the defaults below.
create table membership_policies (
    community_id uuid primary key references communities (id),
    -- How long a member with a failed payment keeps their roles (3 days by default).
    grace_secs integer not null default 259200 check (grace_secs between 0 and 2592000),
    refund_revokes boolean not null default true,
    dispute_revokes boolean not null default true,
    updated_at timestamptz not null default now()
);

-- One row per Stripe subscription. `last_event_at`/`last_event_id` are the high-water
-- mark: a snapshot older than it is never applied. Grace is order-independent too:
-- `good_standing_at` is the newest sign of good standing (a paid invoice, a snapshot
-- not past_due) and `failure_times` the signs of delinquency newer than it; the grace
-- period runs from the oldest of those.
create table subscriptions (
    stripe_subscription_id text primary key,
    community_id uuid not null references communities (id),
    discord_user_id bigint not null,
    stripe_customer_id text,
    price_ids text[] not null default '{}',
    status text not null check (status in ('incomplete', 'incomplete_expired', 'trialing',
        'active', 'past_due', 'canceled', 'unpaid', 'paused')),
    current_period_end timestamptz,
    cancel_at_period_end boolean not null default false,
    last_event_at timestamptz,
    last_event_id text,
    good_standing_at timestamptz,
    failure_times timestamptz[] not null default '{}',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create index subscriptions_member on subscriptions (community_id, discord_user_id);
create index subscriptions_customer on subscriptions (stripe_customer_id);

-- Complimentary access from /tier grant; a revocation sets revoked_at (history stays).
create table grants (
    id uuid primary key,
    community_id uuid not null references communities (id),
    tier_id uuid not null references tiers (id),
    discord_user_id bigint not null,
    granted_by bigint not null,
    expires_at timestamptz,
    revoked_at timestamptz,
    revoked_by bigint,
    created_at timestamptz not null default now()
);

create index grants_member on grants (community_id, discord_user_id) where revoked_at is null;

-- Invoices paid or failed, with their refunds and disputes; amounts in minor units.
-- Refunds and disputes only ever move forward (a closed dispute is never reopened by
-- a late `created`), so their order of arrival does not matter.
create table payments (
    stripe_invoice_id text primary key,
    community_id uuid not null references communities (id),
    stripe_subscription_id text,
    discord_user_id bigint,
    amount bigint not null check (amount >= 0),
    currency text not null,
    status text not null check (status in ('paid', 'failed')),
    stripe_charge_id text,
    stripe_payment_intent_id text,
    amount_refunded bigint not null default 0 check (amount_refunded >= 0),
    fully_refunded boolean not null default false,
    stripe_dispute_id text,
    dispute_status text check (dispute_status in ('open', 'won', 'lost')),
    paid_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create index payments_charge on payments (stripe_charge_id);
create index payments_intent on payments (stripe_payment_intent_id);
create index payments_recent on payments (community_id, paid_at);
-- Every sync reads a subscription's refund and dispute flags.
create index payments_subscription on payments (community_id, stripe_subscription_id);

-- Every authentic delivery, kept 30 days for debugging (a scheduled clean-up deletes
-- older ones). The unique id is what makes a duplicate delivery a no-op; it is written
-- in the same transaction as the event's effects. `community_id` is null when no
-- community could be found for the event.
create table stripe_events (
    id text primary key,
    community_id uuid references communities (id),
    event_type text not null,
    api_version text,
    event_created_at timestamptz not null,
    outcome text not null,
    payload jsonb not null,
    received_at timestamptz not null default now()
);

-- Compressing each payload on insert costs more CPU on the webhook's hot path than the
-- disk it saves over 30 days of retention.
alter table stripe_events alter column payload set storage external;

create index stripe_events_received on stripe_events (received_at);
create index stripe_events_community on stripe_events (community_id, received_at desc);

-- Which paid roles guildops holds on each member (what it intends and last applied).
-- The entitlement function's answer is compared with this; the difference becomes
-- outbox jobs, so one state change enqueues each role change exactly once.
create table paid_roles (
    community_id uuid not null references communities (id),
    discord_user_id bigint not null,
    discord_role_id bigint not null,
    granted_at timestamptz not null default now(),
    primary key (community_id, discord_user_id, discord_role_id)
);

alter table tiers enable row level security;
alter table tiers force row level security;
create policy tenant on tiers
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());

alter table membership_policies enable row level security;
alter table membership_policies force row level security;
create policy tenant on membership_policies
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());

alter table subscriptions enable row level security;
alter table subscriptions force row level security;
create policy tenant on subscriptions
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());

alter table grants enable row level security;
alter table grants force row level security;
create policy tenant on grants
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());

alter table payments enable row level security;
alter table payments force row level security;
create policy tenant on payments
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());

alter table stripe_events enable row level security;
alter table stripe_events force row level security;
create policy tenant on stripe_events
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());

alter table paid_roles enable row level security;
alter table paid_roles force row level security;
create policy tenant on paid_roles
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());

-- The `stripe_webhook` purpose: find the community behind a Stripe object (read the
-- directory and the ids of subscriptions and payments), record and deduplicate events before scoping,
-- and prune old events. Nothing else.
create policy stripe_webhook on communities for select
    using (guildops_cross_community() = 'stripe_webhook');
create policy stripe_webhook on subscriptions for select
    using (guildops_cross_community() = 'stripe_webhook');
create policy stripe_webhook on payments for select
    using (guildops_cross_community() = 'stripe_webhook');
create policy stripe_webhook_read on stripe_events for select
    using (guildops_cross_community() = 'stripe_webhook');
create policy stripe_webhook_record on stripe_events for insert
    with check (guildops_cross_community() = 'stripe_webhook');
create policy stripe_webhook_prune on stripe_events for delete
    using (guildops_cross_community() = 'stripe_webhook');
-- The clean-up is daemon-wide work (events of no community too): it schedules its next
-- run as a job of no community.
create policy stripe_webhook_schedule on jobs for insert
    with check (guildops_cross_community() = 'stripe_webhook' and community_id is null
                and kind = 'scheduled');
create policy stripe_webhook_scheduled on jobs for select
    using (guildops_cross_community() = 'stripe_webhook' and community_id is null
           and kind = 'scheduled');
