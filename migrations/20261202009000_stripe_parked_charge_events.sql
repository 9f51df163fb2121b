-- A refund or dispute delivered before the invoice that records its payment finds no
-- community and is kept as `unknown_community`. When the payment is recorded, the
-- webhook adopts those events (sets their community) and applies them then.
create policy stripe_webhook_adopt on stripe_events for update
    using (guildops_cross_community() = 'stripe_webhook'
           and community_id is null and outcome = 'unknown_community')
    with check (guildops_cross_community() = 'stripe_webhook');

-- What the adoption looks for on every invoice: usually nothing, found at no cost.
create index stripe_events_parked on stripe_events (event_created_at)
    where outcome = 'unknown_community' and community_id is null
      and event_type in ('charge.refunded', 'charge.dispute.created', 'charge.dispute.closed');
