-- Automod (issue 5): each community's rules, as owners wrote them (the `spec` jsonb is
-- `automod::rules::RuleSpec`, validated by the daemon before it is stored), and the
-- hits they produced. Rules are compiled in memory; the message path reads neither
-- table. A hit is recorded once per message and rule (a gateway replay after a resume
-- does not act twice). Both tables are community-owned, under the `tenant` policy.

create table automod_rules (
    id uuid primary key,
    community_id uuid not null references communities (id),
    name text not null check (char_length(name) between 1 and 64),
    spec jsonb not null,
    created_by bigint not null,
    created_at timestamptz not null default now(),
    updated_by bigint not null,
    updated_at timestamptz not null default now()
);
create unique index automod_rules_name on automod_rules (community_id, lower(name));

create table automod_hits (
    id bigint generated always as identity primary key,
    community_id uuid not null references communities (id),
    -- Kept when the rule is removed later: the log still says what fired.
    rule_id uuid references automod_rules (id) on delete set null,
    rule_name text not null,
    discord_user_id bigint not null,
    discord_channel_id bigint not null,
    discord_message_id bigint not null,
    -- What matched, in the rule's normalised view (member content: erasable).
    evidence text,
    -- The actions taken (or, when dry_run, that would have been taken).
    actions jsonb not null,
    dry_run boolean not null,
    escalated boolean not null default false,
    -- Moderator feedback from the mod-log entry's button.
    feedback text check (feedback in ('false_positive')),
    feedback_by bigint,
    feedback_at timestamptz,
    created_at timestamptz not null default now(),
    unique (community_id, discord_message_id, rule_name),
    check ((feedback is null) = (feedback_by is null))
);
-- Escalation counts a member's recent hits of one rule.
create index automod_hits_member on automod_hits (community_id, rule_name, discord_user_id, created_at);
create index automod_hits_recent on automod_hits (community_id, created_at desc);

alter table automod_rules enable row level security;
alter table automod_rules force row level security;
create policy tenant on automod_rules
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());

alter table automod_hits enable row level security;
alter table automod_hits force row level security;
create policy tenant on automod_hits
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());

-- The role automod's `quarantine` action (and, later, moderators) gives: it should
-- hide the server's channels. Set with `/setup quarantine`.
alter table community_settings add column quarantine_role_id bigint;
-- The role moderators' `/mute` gives (it should deny Send Messages). `/setup mute`.
alter table community_settings add column mute_role_id bigint;
