-- Warning points (issue 6): a warning counts while it is younger than the community's
-- expiry (30 days unless set); reaching a threshold's number of active warnings
-- records the threshold's sanction as an escalation case. Community-owned, under the
-- `tenant` policy.

create table warning_policies (
    community_id uuid primary key references communities (id),
    expiry_days integer not null default 30 check (expiry_days between 1 and 365),
    -- Appeals of a ban must be approved by a moderator other than the one who banned.
    ban_appeal_needs_other_moderator boolean not null default false
);

create table warning_thresholds (
    community_id uuid not null references communities (id),
    warnings integer not null check (warnings between 1 and 100),
    kind text not null check (kind in ('timeout', 'kick', 'ban', 'quarantine')),
    duration_secs bigint check (duration_secs > 0),
    primary key (community_id, warnings),
    check (kind <> 'timeout' or duration_secs is not null),
    check (kind <> 'kick' or duration_secs is null)
);

alter table warning_policies enable row level security;
alter table warning_policies force row level security;
create policy tenant on warning_policies
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());

alter table warning_thresholds enable row level security;
alter table warning_thresholds force row level security;
create policy tenant on warning_thresholds
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());
