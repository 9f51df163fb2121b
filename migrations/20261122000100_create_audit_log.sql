-- The audit log: every state change appends one entry in the same transaction as the
-- change. Entries form a per-community hash chain (see docs/audit.md) and are never
-- updated or deleted; personal data that a member may have erased lives in a side
-- table whose digest, not its content, is part of the hashed entry.
create table audit_log (
    id uuid primary key,
    community_id uuid not null references communities (id),
    seq bigint not null check (seq >= 1),
    occurred_at timestamptz not null,
    actor text not null check (actor ~ '^(user:[0-9]+|system:[a-z][a-z0-9_.-]*)$'),
    action text not null check (action ~ '^[a-z][a-z0-9_.]*$'),
    target text not null,
    before jsonb,
    after jsonb,
    correlation_id text,
    personal_digest bytea check (octet_length(personal_digest) = 32),
    hash bytea not null check (octet_length(hash) = 32),
    created_at timestamptz not null default now(),
    unique (community_id, seq)
);

-- The tip of each community's chain. Appending locks this row until commit, which
-- orders appends within a community while different communities never wait on
-- each other.
create table audit_chain_heads (
    community_id uuid primary key references communities (id),
    last_seq bigint not null,
    last_hash bytea not null check (octet_length(last_hash) = 32),
    updated_at timestamptz not null default now()
);

-- Erasable personal data (free-text reasons, names). The entry hashes
-- sha256(salt || content) in personal_digest; the random salt dies with the row so an
-- erased short reason cannot be guessed back from the digest.
create table audit_personal_data (
    entry_id uuid primary key references audit_log (id),
    salt bytea not null check (octet_length(salt) = 16),
    reason text,
    names text[] not null default '{}',
    created_at timestamptz not null default now()
);

create function audit_refuse_change() returns trigger language plpgsql as $$
begin
    raise exception 'audit entries are append-only: % on % is refused', tg_op, tg_table_name
        using errcode = 'insufficient_privilege';
end;
$$;

create trigger audit_log_append_only
    before update or delete on audit_log
    for each row execute function audit_refuse_change();

create trigger audit_log_no_truncate
    before truncate on audit_log
    for each statement execute function audit_refuse_change();

-- Personal data may only be erased (deleted), never rewritten.
create trigger audit_personal_data_no_update
    before update on audit_personal_data
    for each row execute function audit_refuse_change();
