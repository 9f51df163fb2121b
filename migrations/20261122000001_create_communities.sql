-- Communities are the tenant: each Discord guild the bot joins is connected to exactly
-- one. Rows are never deleted when the bot is removed (status goes inactive) so that a
-- re-invite finds its history, settings and paid tiers intact.
create table communities (
    id uuid primary key,
    slug text not null unique check (slug ~ '^[a-z0-9][a-z0-9-]{0,79}$'),
    name text not null check (char_length(name) between 1 and 100),
    discord_guild_id bigint not null unique,
    owner_discord_id bigint not null,
    status text not null default 'active' check (status in ('active', 'inactive')),
    settings jsonb not null default '{}'::jsonb,
    deactivated_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    check ((status = 'inactive') = (deactivated_at is not null))
);

-- Who is (or was) in the community's guild. A leave sets left_at instead of deleting
-- the row: moderation history, tiers and analytics outlive a membership.
create table community_members (
    community_id uuid not null references communities (id),
    discord_user_id bigint not null,
    joined_at timestamptz,
    left_at timestamptz,
    is_bot boolean not null default false,
    roles bigint[] not null default '{}',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (community_id, discord_user_id)
);

create index community_members_present on community_members (community_id) where left_at is null;

-- What the owner configured through /setup. One row per community, created with it.
create table community_settings (
    community_id uuid primary key references communities (id),
    admin_channel_id bigint,
    mod_log_channel_id bigint,
    moderator_role_ids bigint[] not null default '{}',
    welcome_channel_id bigint,
    welcome_message text check (char_length(welcome_message) <= 2000),
    farewell_message text check (char_length(farewell_message) <= 2000),
    auto_role_ids bigint[] not null default '{}',
    updated_by_discord_id bigint,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
