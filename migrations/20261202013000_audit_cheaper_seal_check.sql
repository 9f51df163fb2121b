-- The seal check compares the entry before and after as rows of audit_log rather than
-- as two jsonb documents: the same rule (only seq and hash may change, once, from
-- unsealed to sealed), without building and diffing two documents for every entry the
-- sealer seals. A column added to audit_log later is compared too, as before. The
-- table is tested before any of its columns is read, since the function also guards
-- audit_personal_data and statement-level TRUNCATE, which have no such columns.
create or replace function audit_refuse_change() returns trigger language plpgsql as $$
declare
    unsealed audit_log;
begin
    if tg_op = 'UPDATE' and tg_table_name = 'audit_log' then
        if old.seq is null and new.seq is not null then
            unsealed := new;
            unsealed.seq := null;
            unsealed.hash := null;
            if unsealed is not distinct from old then
                return new;
            end if;
        end if;
    end if;
    raise exception 'audit entries are append-only: % on % is refused', tg_op, tg_table_name
        using errcode = 'insufficient_privilege';
end;
$$;
