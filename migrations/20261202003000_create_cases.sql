-- Moderation cases (issue 6): every sanction, note and reversal is a case with a
-- per-community sequential number. A temporary sanction (ban, timeout, quarantine,
-- role mute) is `active` until it expires (a scheduled job lifts it) or is revoked by
-- a reversal case; the status machine is `moderation::CaseStatus::transition`,
-- mirrored by the CHECKs below. Edits of the reason and duration are kept as history.
-- Both tables are community-owned, under the `tenant` policy.

create table case_numbers (
    community_id uuid primary key references communities (id),
    last_number integer not null check (last_number >= 0)
);

create table cases (
    id uuid primary key,
    community_id uuid not null references communities (id),
    number integer not null check (number > 0),
    kind text not null check (kind in ('note', 'warn', 'timeout', 'kick', 'ban', 'softban',
        'unban', 'untimeout', 'quarantine', 'unquarantine', 'mute', 'unmute')),
    target_discord_id bigint not null,
    moderator_discord_id bigint not null,
    -- Free text about a member: erasable (the audit log hashes only its digest).
    reason text not null check (char_length(reason) between 1 and 1000),
    evidence text[] not null default '{}',
    duration_secs bigint check (duration_secs > 0),
    expires_at timestamptz,
    -- A sanction that lasts is active until it expires or is reversed; the rest are
    -- recorded facts with nothing to lift.
    status text not null check (status in ('recorded', 'active', 'expired', 'revoked')),
    hidden boolean not null default false,
    appealable boolean not null default true,
    -- Whether the member was told by DM.
    dm text not null default 'none' check (dm in ('none', 'queued', 'sent', 'undeliverable')),
    -- Where the case came from.
    source text not null default 'command' check (source in ('command', 'discord', 'automod', 'escalation', 'appeal')),
    reverses uuid references cases (id),
    -- For a case taken by hand in Discord's interface: its audit-log entry (a replayed
    -- gateway event records nothing twice).
    discord_entry_id bigint,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (community_id, number),
    unique (community_id, discord_entry_id),
    check ((expires_at is null) = (duration_secs is null)),
    check (status <> 'active' or kind in ('timeout', 'ban', 'quarantine', 'mute')),
    check (duration_secs is null or kind in ('timeout', 'ban', 'quarantine', 'mute'))
);
create index cases_target on cases (community_id, target_discord_id, created_at desc);
create index cases_moderator on cases (community_id, moderator_discord_id, created_at desc);
create index cases_active on cases (community_id, target_discord_id) where status = 'active';

create table case_edits (
    id bigint generated always as identity primary key,
    community_id uuid not null references communities (id),
    case_id uuid not null references cases (id),
    editor_discord_id bigint not null,
    field text not null check (field in ('reason', 'duration', 'hidden', 'appealable')),
    before text,
    after text,
    edited_at timestamptz not null default now()
);
create index case_edits_case on case_edits (case_id, edited_at);

alter table case_numbers enable row level security;
alter table case_numbers force row level security;
create policy tenant on case_numbers
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());

alter table cases enable row level security;
alter table cases force row level security;
create policy tenant on cases
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());

alter table case_edits enable row level security;
alter table case_edits force row level security;
create policy tenant on case_edits
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());
