-- Audit entries are sealed asynchronously (docs/audit.md, "Sealing"): a change's
-- transaction inserts its entry without a place in the chain, and the sealer gives
-- committed entries their seq and hash, in order, a batch per community at a time.
alter table audit_log alter column seq drop not null;
alter table audit_log alter column hash drop not null;
alter table audit_log add constraint audit_log_sealed_whole
    check ((seq is null) = (hash is null));

-- What the sealer looks for; empty when it has caught up, so its poll costs nothing.
create index audit_log_unsealed on audit_log (community_id, id) where seq is null;

-- The one update an entry may ever see: being sealed, once, with nothing else
-- changed. Everything else stays refused, as before.
create or replace function audit_refuse_change() returns trigger language plpgsql as $$
begin
    if tg_op = 'UPDATE' and tg_table_name = 'audit_log'
       and old.seq is null and new.seq is not null
       and to_jsonb(old) - 'seq' - 'hash' = to_jsonb(new) - 'seq' - 'hash' then
        return new;
    end if;
    raise exception 'audit entries are append-only: % on % is refused', tg_op, tg_table_name
        using errcode = 'insufficient_privilege';
end;
$$;

-- The daemon may write a seal and nothing else of an entry.
grant update (seq, hash) on audit_log to guildops_app;

-- The sealer finds the communities with entries to seal, then seals each in a
-- transaction scoped to that community.
create policy audit_sealer on audit_log for select
    using (guildops_cross_community() = 'audit_sealer' and seq is null);
