//! Who may take a free seat. An event is open to everyone, for one tier's members only,
//! or open to everyone with some seats held for the tier's members ("reserved seats").
//! Held seats stay held until `reserved_until` (when set): then the ones still free open
//! to everyone and a scheduled job moves the waitlist up. A members-only event is the
//! same rule with every seat held and nobody else allowed in line. Presale ("members
//! book first until Friday") is every seat held until Friday: others join the waitlist
//! meanwhile and get the seats that are left, in the order they asked, when it opens.
//! [`Seats`] is the rule, without a database; `fill_seats` and RSVPs apply it.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::db::{self, Event, EventStatus};
use super::{Error, RELEASE_JOB, rsvp};
use crate::db::tenant;
use crate::outbox::{self, Job, NewJob};

/// The seats of an event at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seats {
    pub capacity: i64,
    /// Seats held for the tier's members right now (0 once released or with no tier).
    pub held: i64,
    /// Seated tier members and seated others.
    pub members: i64,
    pub others: i64,
}

impl Seats {
    pub fn new(event: &Event, members: i64, others: i64, now: DateTime<Utc>) -> Seats {
        let capacity = i64::from(event.capacity);
        let held = match (&event.tier, event.reserved_seats) {
            (None, _) => 0,
            (Some(_), None) => capacity,
            (Some(_), Some(_)) if event.reserved_until.is_some_and(|t| t <= now) => 0,
            (Some(_), Some(n)) => i64::from(n).min(capacity),
        };
        Seats {
            capacity,
            held,
            members,
            others,
        }
    }

    /// How many more seats a tier member (`member`) or anyone else could take now.
    /// Members fill the held seats first; once those are full they take open seats
    /// like everyone else.
    pub fn free_for(&self, member: bool) -> i64 {
        let free = self.capacity - self.members - self.others;
        if member {
            return free.max(0);
        }
        let open_taken = self.others + (self.members - self.held).max(0);
        free.min(self.capacity - self.held - open_taken).max(0)
    }

    pub fn take(&mut self, member: bool) {
        if member {
            self.members += 1;
        } else {
            self.others += 1;
        }
    }
}

/// Which of the waiting (in line order; `true` for a tier member) get a seat now: each
/// in turn who can take one does, so a member is not kept waiting behind others for a
/// held seat, and nobody overtakes anyone who could have taken the same seat.
pub fn promotions(seats: &mut Seats, waiting: &[bool]) -> Vec<usize> {
    let mut chosen = Vec::new();
    for (i, &member) in waiting.iter().enumerate() {
        if seats.free_for(true) == 0 {
            break;
        }
        if seats.free_for(member) > 0 {
            seats.take(member);
            chosen.push(i);
        }
    }
    chosen
}

/// The event's seats as they are in this transaction.
pub async fn now(conn: &mut PgConnection, event: &Event) -> Result<Seats, sqlx::Error> {
    let (members, others) = db::seated(conn, event.id).await?;
    Ok(Seats::new(event, members, others, Utc::now()))
}

/// What the held seats are, for the post and the replies: "4 seats kept for members of
/// the Gold tier until <t:…:F>".
pub fn held_text(event: &Event) -> Option<String> {
    let (tier, _) = event.tier.as_ref()?;
    let seats = event.reserved_seats?;
    if seats == 0 || event.reserved_until.is_some_and(|t| t <= Utc::now()) {
        return None;
    }
    let until = event
        .reserved_until
        .map(|t| format!(" until <t:{}:F>", t.timestamp()))
        .unwrap_or_default();
    let what = if seats >= event.capacity {
        "Every seat is".to_owned()
    } else if seats == 1 {
        "1 seat is".to_owned()
    } else {
        format!("{seats} seats are")
    };
    Some(format!("{what} kept for members of the {tier} tier{until}"))
}

/// Schedules the release of the held seats at `reserved_until`. The time is in the
/// data and the key, so after an edit moves it the old job does nothing.
pub async fn schedule_release(
    conn: &mut PgConnection,
    community: Uuid,
    event: &Event,
) -> Result<(), sqlx::Error> {
    let Some(at) = event.reserved_until else {
        return Ok(());
    };
    if at <= Utc::now() || event.reserved_seats.is_none() {
        return Ok(());
    }
    let job = Job::Scheduled {
        name: RELEASE_JOB.into(),
        data: json!({"event": event.id, "at": at}),
    };
    let key = format!("event:{}:release:{}", event.id, at.timestamp_micros());
    outbox::enqueue(conn, NewJob::new(Some(community), key, job).at(at)).await?;
    Ok(())
}

/// `events.release`: the held seats open to everyone, so the waitlist moves up.
pub async fn release(
    pool: &PgPool,
    community: Uuid,
    data: &serde_json::Value,
) -> Result<(), Error> {
    let Some(id) = data["event"].as_str().and_then(|s| Uuid::parse_str(s).ok()) else {
        return Ok(());
    };
    let planned: Option<DateTime<Utc>> = serde_json::from_value(data["at"].clone()).ok();
    let mut tx = tenant::begin(pool, community).await?;
    let Some(event) = db::event_for_update(&mut tx, id).await? else {
        return Ok(());
    };
    if event.status == EventStatus::Cancelled
        || planned.is_none()
        || event.reserved_until != planned
    {
        return Ok(());
    }
    rsvp::fill_seats(&mut tx, community, &event).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seats(capacity: i64, held: i64, members: i64, others: i64) -> Seats {
        Seats {
            capacity,
            held,
            members,
            others,
        }
    }

    #[test]
    fn held_seats_are_only_for_members_until_members_outgrow_them() {
        // capacity, held, seated members, seated others → free for a member, for others
        let table = [
            ((10, 0, 0, 0), (10, 10)),
            ((10, 3, 0, 0), (10, 7)),
            ((10, 3, 0, 7), (3, 0)),
            ((10, 3, 2, 7), (1, 0)),
            ((10, 3, 3, 5), (2, 2)),
            // Members beyond the held seats use open ones.
            ((10, 3, 6, 1), (3, 3)),
            ((10, 3, 6, 4), (0, 0)),
            ((10, 10, 4, 0), (6, 0)),
            // Capacity lowered below what is seated: nothing free, never negative.
            ((5, 2, 3, 4), (0, 0)),
        ];
        for ((c, h, m, o), (for_member, for_other)) in table {
            let s = seats(c, h, m, o);
            assert_eq!(
                (s.free_for(true), s.free_for(false)),
                (for_member, for_other),
                "{s:?}"
            );
        }
    }

    #[test]
    fn the_waitlist_moves_up_in_order_with_members_taking_held_seats() {
        // Two free seats, one of them held: the first other and the first member get them.
        let mut s = seats(4, 1, 0, 2);
        assert_eq!(promotions(&mut s, &[false, false, true, true]), [0, 2]);
        // Only held seats free: others wait, members behind them go first.
        let mut s = seats(4, 2, 0, 2);
        assert_eq!(promotions(&mut s, &[false, true, false, true]), [1, 3]);
        // Released (held 0): strictly in line order.
        let mut s = seats(4, 0, 0, 2);
        assert_eq!(promotions(&mut s, &[false, true, false]), [0, 1]);
        let mut s = seats(4, 0, 2, 2);
        assert!(promotions(&mut s, &[true]).is_empty());
    }
}
