-- A live scan at the door (docs/events.md, "The door"): one round trip finds the
-- staff key's community and event, scopes to that community and looks the ticket up;
-- refusals are then recorded in batches, one statement and one durable commit for all
-- that arrived meanwhile. Each function sets the transaction-local scope itself,
-- exactly as `tenant::scope` does, so row-level security applies to everything it
-- reads or writes; called outside a transaction, that scope ends with the statement.

-- The door's view of a ticket, by its token's digest, in the scoped community: the
-- ticket with its event's end and status and the role an admission gives. The live
-- lookup below and the offline path (`events::db::ticket_by_token`) both read it.
create function door_ticket(token_digest bytea)
returns table (id uuid, event_id uuid, discord_user_id bigint, display_name text,
               tier_name text, status text, checked_in_at timestamptz,
               ends_at timestamptz, event_status text, discord_guild_id bigint,
               attended_role_id bigint)
language sql stable
as $$
    select k.id, k.event_id, k.discord_user_id, k.display_name, k.tier_name, k.status,
           k.checked_in_at, e.ends_at, e.status, c.discord_guild_id, es.attended_role_id
      from event_tickets k
      join events e on e.id = k.event_id
      join communities c on c.id = k.community_id
      left join event_settings es on es.community_id = k.community_id
     where k.token_hash = token_digest
$$;

create function door_lookup(key_digest bytea, token_digest bytea)
returns table (key_community_id uuid, key_event_id uuid, id uuid, event_id uuid,
               discord_user_id bigint, display_name text, tier_name text, status text,
               checked_in_at timestamptz, ends_at timestamptz, event_status text,
               discord_guild_id bigint, attended_role_id bigint)
language plpgsql volatile
as $$
#variable_conflict use_column
declare
    key_community uuid;
    key_event uuid;
begin
    -- The `checkin` purpose reads a live staff key by its digest, and nothing else.
    perform set_config('app.cross_community', 'checkin', true);
    select s.community_id, s.event_id into key_community, key_event
      from event_staff_keys s
     where s.key_hash = key_digest and s.revoked_at is null;
    perform set_config('app.cross_community', '', true);
    if key_community is null then
        return;
    end if;
    perform set_config('app.community_id', key_community::text, true);
    -- One row for a known key, with the ticket's columns null when the token is
    -- unknown (in this community).
    return query
        select key_community, key_event, t.id, t.event_id, t.discord_user_id,
               t.display_name, t.tier_name, t.status, t.checked_in_at, t.ends_at,
               t.event_status, t.discord_guild_id, t.attended_role_id
          from (select 1) as one
          left join lateral door_ticket(token_digest) as t on true;
end;
$$;

-- The door's refusals (`events::refusals`), as many as arrived while the previous
-- batch committed, in one statement and so one commit: row i of the arrays is one
-- scan. Each community's rows are inserted under that community's scope.
create function door_record_refusals(communities uuid[], events uuid[], tickets uuid[],
                                     results text[], devices text[], ip_digests bytea[],
                                     scanned timestamptz[])
returns integer
language plpgsql volatile
as $$
declare
    community uuid;
    inserted integer;
    total integer := 0;
begin
    perform set_config('app.cross_community', '', true);
    for community in select distinct c from unnest(communities) as c loop
        perform set_config('app.community_id', community::text, true);
        insert into event_scans (community_id, event_id, ticket_id, result, device_id,
                                 ip_hash, scanned_at)
        select s.community_id, s.event_id, s.ticket_id, s.result, s.device_id, s.ip_hash,
               s.scanned_at
          from unnest(communities, events, tickets, results, devices, ip_digests, scanned)
               as s(community_id, event_id, ticket_id, result, device_id, ip_hash,
                    scanned_at)
         where s.community_id = community;
        get diagnostics inserted = row_count;
        total := total + inserted;
    end loop;
    return total;
end;
$$;

-- Every door of an event inserts its scans at once. Through these foreign keys each
-- insert took a KEY SHARE lock on the event's and the community's one row, which
-- concurrent doors can only share as a multixact, a cost paid on every scan. Neither
-- row is ever deleted (events are cancelled, communities are kept), so the references
-- cannot dangle; the ticket's own key stays (a ticket's row is rarely contended).
alter table event_scans drop constraint event_scans_community_id_fkey;
alter table event_scans drop constraint event_scans_event_id_fkey;
