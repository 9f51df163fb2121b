-- Events (issue 7): an event with a capacity, tickets that are confirmed or waitlisted,
-- staff keys for the door, and every check-in scan. A ticket's life is
-- `events::TicketStatus::transition`, mirrored by the CHECKs below. Secrets are never
-- stored raw: a ticket token, a staff key and a scanner's IP are kept only as SHA-256
-- digests (the IP salted). All four tables are community-owned, under the `tenant`
-- policy; the door endpoint finds its community from the staff key through the narrow
-- `checkin` purpose before it scopes to that community.

create table events (
    id uuid primary key,
    community_id uuid not null references communities (id),
    title text not null check (char_length(title) between 1 and 100),
    description text not null default '' check (char_length(description) <= 1500),
    starts_at timestamptz not null,
    ends_at timestamptz not null,
    -- IANA name or a UTC offset as the organiser typed it; times are stored in UTC.
    timezone text not null check (char_length(timezone) between 1 and 64),
    capacity integer not null check (capacity between 1 and 100000),
    venue text not null default '' check (char_length(venue) <= 300),
    -- Members of this tier only (its Discord role), when set.
    tier_id uuid references tiers (id),
    channel_id bigint,
    message_id bigint,
    status text not null check (status in ('scheduled', 'cancelled')),
    created_by bigint not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    check (ends_at > starts_at)
);
create index events_upcoming on events (community_id, starts_at) where status = 'scheduled';

create table event_tickets (
    id uuid primary key,
    community_id uuid not null references communities (id),
    event_id uuid not null references events (id),
    discord_user_id bigint not null,
    -- The name the door sees; erasable personal data like any name.
    display_name text not null check (char_length(display_name) between 1 and 100),
    tier_name text,
    status text not null check (status in ('confirmed', 'waitlisted', 'cancelled',
        'checked_in', 'revoked')),
    -- SHA-256 of the ticket's token: only a seated ticket has one.
    token_hash bytea unique check (octet_length(token_hash) = 32),
    -- Waitlist order: the earliest request is promoted first.
    requested_at timestamptz not null default now(),
    checked_in_at timestamptz,
    -- The scan that admitted it (the earliest one, after offline batches).
    admitted_scan_id bigint,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (event_id, discord_user_id),
    check ((status = 'checked_in') = (checked_in_at is not null)),
    check (token_hash is null or status in ('confirmed', 'checked_in', 'revoked'))
);
create index event_tickets_waitlist on event_tickets (event_id, requested_at)
    where status = 'waitlisted';

create table event_staff_keys (
    id uuid primary key,
    community_id uuid not null references communities (id),
    event_id uuid not null references events (id),
    key_hash bytea not null unique check (octet_length(key_hash) = 32),
    created_by bigint not null,
    created_at timestamptz not null default now(),
    revoked_at timestamptz
);

create table event_scans (
    id bigint generated always as identity primary key,
    community_id uuid not null references communities (id),
    event_id uuid not null references events (id),
    ticket_id uuid references event_tickets (id),
    -- An offline device's own id for the scan: a replayed batch records nothing twice.
    scan_id uuid,
    result text not null check (result in ('admitted', 'duplicate', 'expired', 'revoked',
        'wrong_event', 'invalid')),
    device_id text not null check (char_length(device_id) between 1 and 100),
    ip_hash bytea check (octet_length(ip_hash) = 32),
    scanned_at timestamptz not null,
    recorded_at timestamptz not null default now(),
    unique (community_id, scan_id)
);
create index event_scans_event on event_scans (event_id, scanned_at);

alter table events enable row level security;
alter table events force row level security;
create policy tenant on events
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());

alter table event_tickets enable row level security;
alter table event_tickets force row level security;
create policy tenant on event_tickets
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());

alter table event_staff_keys enable row level security;
alter table event_staff_keys force row level security;
create policy tenant on event_staff_keys
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());

alter table event_scans enable row level security;
alter table event_scans force row level security;
create policy tenant on event_scans
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());

-- The `checkin` purpose: the door presents only a staff key, so the endpoint reads the
-- key's row (by its digest) to learn the community, then scopes to it. Nothing else.
create policy checkin on event_staff_keys for select
    using (guildops_cross_community() = 'checkin');

-- Per-community event settings: who organises (besides Manage Events) and when
-- reminders go out.
create table event_settings (
    community_id uuid primary key references communities (id),
    organizer_role_id bigint,
    reminder_hours integer[] not null default '{24,1}'
        check (cardinality(reminder_hours) <= 5 and 0 < all (reminder_hours)),
    -- The role an admitted attendee gets at the door (none when null).
    attended_role_id bigint,
    updated_at timestamptz not null default now()
);

alter table event_settings enable row level security;
alter table event_settings force row level security;
create policy tenant on event_settings
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());
