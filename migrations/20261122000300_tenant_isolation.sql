-- Tenant isolation. The daemon's pooled connections run as `guildops_app`, a role that
-- owns nothing, so row-level security applies to it (FORCE covers a table owner too,
-- unless it is a superuser). Every community-owned table admits only the rows of the
-- community named by the transaction-local setting `app.community_id`; with no setting
-- a query sees nothing. Work that spans communities names its purpose in
-- `app.cross_community`, and each purpose has its own policy on the few tables it needs.
-- See src/db/tenant.rs.

-- Roles are cluster-wide: another database of the same cluster may have made it
-- (concurrently, in tests).
do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'guildops_app') then
        create role guildops_app nologin nosuperuser nobypassrls noinherit;
    end if;
exception when duplicate_object or unique_violation then
    null;
end
$$;

-- The migrating user is the one the daemon connects as; it must be able to SET ROLE.
do $$
begin
    if not pg_has_role(current_user, 'guildops_app', 'member') then
        execute format('grant guildops_app to %I', current_user);
    end if;
end
$$;

create function guildops_current_community() returns uuid
    language sql stable
    as $$ select nullif(current_setting('app.community_id', true), '')::uuid $$;

create function guildops_cross_community() returns text
    language sql stable
    as $$ select coalesce(current_setting('app.cross_community', true), '') $$;

grant usage on schema public to guildops_app;
grant select, insert, update, delete on all tables in schema public to guildops_app;
grant usage, select on all sequences in schema public to guildops_app;
grant execute on function guildops_current_community(), guildops_cross_community() to guildops_app;
-- Tables made by later migrations get the same grants (each still needs its policies).
alter default privileges in schema public
    grant select, insert, update, delete on tables to guildops_app;
alter default privileges in schema public
    grant usage, select on sequences to guildops_app;

-- Schema history is the migrator's, not the daemon's.
do $$
begin
    if to_regclass('_sqlx_migrations') is not null then
        revoke all on _sqlx_migrations from guildops_app;
    end if;
end
$$;
-- The audit log is append-only for the daemon by privilege as well as by trigger;
-- personal data may be erased (deleted), never rewritten.
revoke update, delete, truncate on audit_log from guildops_app;
revoke update, truncate on audit_personal_data from guildops_app;
revoke truncate on all tables in schema public from guildops_app;

-- audit_personal_data was reachable only through its entry; give it its own tenant
-- column so its policy needs no join. Filled from the entries it belongs to (the
-- no-update trigger is lifted for this one statement, inside this migration).
alter table audit_personal_data add column community_id uuid references communities (id);
alter table audit_personal_data disable trigger audit_personal_data_no_update;
update audit_personal_data p set community_id = e.community_id
  from audit_log e where e.id = p.entry_id;
alter table audit_personal_data enable trigger audit_personal_data_no_update;
alter table audit_personal_data alter column community_id set not null;

-- communities: a tenant sees its own row; the directory may read every row (to find
-- the community behind a guild); provisioning may create and update them.
alter table communities enable row level security;
alter table communities force row level security;
create policy tenant on communities
    using (id = guildops_current_community())
    with check (id = guildops_current_community());
create policy directory on communities for select
    using (guildops_cross_community() = 'directory');
create policy provisioning on communities
    using (guildops_cross_community() = 'provisioning')
    with check (guildops_cross_community() = 'provisioning');

-- jobs: domain code enqueues and lists its own community's jobs; the job runtime's
-- connections (app.cross_community = job_queue for the session) claim across all.
alter table jobs enable row level security;
alter table jobs force row level security;
create policy tenant on jobs
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());
create policy job_queue on jobs
    using (guildops_cross_community() = 'job_queue')
    with check (guildops_cross_community() = 'job_queue');

-- The rest are plain community-owned tables.
alter table community_members enable row level security;
alter table community_members force row level security;
create policy tenant on community_members
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());

alter table community_settings enable row level security;
alter table community_settings force row level security;
create policy tenant on community_settings
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());

alter table audit_log enable row level security;
alter table audit_log force row level security;
create policy tenant on audit_log
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());

alter table audit_chain_heads enable row level security;
alter table audit_chain_heads force row level security;
create policy tenant on audit_chain_heads
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());

alter table audit_personal_data enable row level security;
alter table audit_personal_data force row level security;
create policy tenant on audit_personal_data
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());

alter table job_alerts enable row level security;
alter table job_alerts force row level security;
create policy tenant on job_alerts
    using (community_id = guildops_current_community())
    with check (community_id = guildops_current_community());
