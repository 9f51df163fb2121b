-- Reports and appeals (issue 6). A report is about a member (and, from the message
-- context menu, one of their messages: several reports of one message merge into one
-- report with several reporters). Its status machine is
-- `moderation::report::Status::transition`; the trigger below enforces the same
-- transitions in the database. An appeal asks to lift a case; one open appeal per
-- case. All tables are community-owned, under the `tenant` policy.

create table reports (
    id uuid primary key,
    community_id uuid not null references communities (id),
    number integer not null check (number > 0),
    target_discord_id bigint not null,
    channel_discord_id bigint,
    message_discord_id bigint,
    category text not null check (category in ('scam', 'harassment', 'coercion', 'hate',
        'doxxing', 'unsafe', 'spam', 'other')),
    status text not null default 'open'
        check (status in ('open', 'investigating', 'resolved', 'dismissed')),
    claimed_by bigint,
    decided_by bigint,
    -- A dismissal's note, or what resolving did.
    outcome text check (char_length(outcome) <= 1000),
    case_id uuid references cases (id),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (community_id, number),
    check (status not in ('resolved', 'dismissed') or decided_by is not null)
);
-- One report per reported message.
create unique index reports_message on reports (community_id, message_discord_id)
    where message_discord_id is not null;

create table report_reporters (
    report_id uuid not null references reports (id),
    community_id uuid not null references communities (id),
    reporter_discord_id bigint not null,
    -- What the reporter said (erasable personal data).
    reason text not null check (char_length(reason) between 1 and 1000),
    created_at timestamptz not null default now(),
    primary key (report_id, reporter_discord_id)
);
create index report_reporters_recent on report_reporters (community_id, reporter_discord_id, created_at);

-- Reporters a moderator muted for bad-faith reports.
create table reporter_mutes (
    community_id uuid not null references communities (id),
    reporter_discord_id bigint not null,
    muted_by bigint not null,
    until timestamptz not null,
    primary key (community_id, reporter_discord_id)
);

create function guildops_report_transition() returns trigger
language plpgsql as $$
begin
    if new.status is distinct from old.status and not (
        (old.status = 'open' and new.status in ('investigating', 'resolved', 'dismissed'))
        or (old.status = 'investigating' and new.status in ('resolved', 'dismissed'))
    ) then
        raise exception 'a % report cannot become %', old.status, new.status
            using errcode = 'check_violation';
    end if;
    return new;
end $$;

create trigger reports_transition before update of status on reports
    for each row execute function guildops_report_transition();

create table report_numbers (
    community_id uuid primary key references communities (id),
    last_number integer not null check (last_number >= 0)
);

create table appeals (
    id uuid primary key,
    community_id uuid not null references communities (id),
    case_id uuid not null references cases (id),
    appellant_discord_id bigint not null,
    reason text not null check (char_length(reason) between 1 and 1000),
    status text not null default 'open' check (status in ('open', 'approved', 'denied', 'closed')),
    decided_by bigint,
    decided_at timestamptz,
    created_at timestamptz not null default now(),
    check ((status = 'open') = (decided_by is null))
);
create unique index appeals_one_open on appeals (case_id) where status = 'open';

alter table cases add column appeals_closed boolean not null default false;

alter table reports enable row level security;
alter table reports force row level security;
create policy tenant on reports
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());

alter table report_reporters enable row level security;
alter table report_reporters force row level security;
create policy tenant on report_reporters
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());

alter table reporter_mutes enable row level security;
alter table reporter_mutes force row level security;
create policy tenant on reporter_mutes
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());

alter table report_numbers enable row level security;
alter table report_numbers force row level security;
create policy tenant on report_numbers
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());

alter table appeals enable row level security;
alter table appeals force row level security;
create policy tenant on appeals
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());

-- The `appeals` purpose: a member appealing from a DM names only a case number, so the
-- daemon reads the directory and the cases' numbers and targets to find which
-- communities it could mean (then scopes to the one it picked).
create policy appeals_lookup on communities for select
    using (guildops_cross_community() = 'appeals');
create policy appeals_lookup on cases for select
    using (guildops_cross_community() = 'appeals');
