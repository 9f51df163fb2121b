-- Tier priority for events (issue 7). With a tier, `reserved_seats` null keeps the
-- event for the tier's members only (as before); a number opens it to everyone but
-- holds that many seats for the tier's members (0: none held any more), until
-- `reserved_until` when set, when the held seats still free open to everyone and the
-- waitlist moves up (a scheduled job). Every seat held until a time is a presale.
-- A ticket is a tier member's when it carries the tier's name (`tier_name`, copied
-- only for holders of the tier), so no new ticket column is needed.
alter table events
    add column reserved_seats integer check (reserved_seats >= 0),
    add column reserved_until timestamptz,
    add constraint events_reserved_need_tier
        check (reserved_seats is null or tier_id is not null),
    add constraint events_reserved_within_capacity
        check (reserved_seats is null or reserved_seats <= capacity),
    add constraint events_release_needs_reserved
        check (reserved_until is null or reserved_seats is not null);
