-- Issue 4: what a tier does when a member's paid access lapses (payment failed past
-- grace, canceled, deleted, refunded or disputed per policy): remove the role, or
-- remove it and kick the member. A kick happens only when the lapse leaves the member
-- with no paid role at all, and never for drift repair or an owner's revoke.
alter table tiers add column lapse_action text not null default 'remove_role'
    check (lapse_action in ('remove_role', 'remove_role_and_kick'));
