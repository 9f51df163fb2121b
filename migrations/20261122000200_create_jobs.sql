-- The outbox: every effect on the outside world (a Discord role change, a message, a
-- DM) and every piece of time-based work is a row here, written in the same
-- transaction as the state change that caused it, so a crash, an outage or a restart
-- loses nothing. Workers in any number of processes claim rows with
-- FOR UPDATE SKIP LOCKED and hold them under a lease that a crashed worker lets lapse.
create table jobs (
    id bigint generated always as identity primary key,
    kind text not null,
    payload jsonb not null,
    community_id uuid references communities (id),
    -- A second enqueue of the same effect (a replayed event) is a no-op.
    idempotency_key text not null unique,
    run_at timestamptz not null default now(),
    attempts integer not null default 0,
    status text not null default 'pending'
        check (status in ('pending', 'running', 'done', 'failed', 'dead')),
    lease_expires_at timestamptz,
    locked_by text,
    last_error text,
    -- Why a job failed for good ("missing_permissions", ...): groups admin alerts.
    failure_kind text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    finished_at timestamptz,
    check ((status = 'running') = (lease_expires_at is not null))
);

-- The claim query scans only due pending rows; the sweep only running ones.
create index jobs_due on jobs (run_at) where status = 'pending';
create index jobs_leases on jobs (lease_expires_at) where status = 'running';
create index jobs_unresolved on jobs (community_id, updated_at desc) where status in ('failed', 'dead');
create index jobs_finished on jobs (finished_at) where status = 'done';

-- When each community was last alerted about each failure kind, so a burst of
-- identical failures posts one alert per hour instead of one per job.
create table job_alerts (
    community_id uuid not null references communities (id),
    failure_kind text not null,
    last_sent_at timestamptz not null default now(),
    primary key (community_id, failure_kind)
);
