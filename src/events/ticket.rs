//! A ticket's life and its secret. [`TicketStatus::transition`] is the one place that
//! decides which status follows (the migration's CHECK lists the same five). Tokens
//! are 256 random bits shown once (in the QR code); only their SHA-256 is stored, so a
//! database leak admits nobody.

use sha2::{Digest, Sha256};

/// Where a member stands for an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketStatus {
    /// Holds a seat and a token.
    Confirmed,
    /// Waiting for a seat, in request order.
    Waitlisted,
    /// Gave up the seat or place (may RSVP again).
    Cancelled,
    /// Admitted at the door; final.
    CheckedIn,
    /// Taken away by an organiser; final (the token no longer admits).
    Revoked,
}

/// What happens to a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketEvent {
    /// An RSVP with a free seat (or a cancelled ticket asking again).
    Seat,
    /// An RSVP with no free seat.
    Queue,
    /// A seat freed and this ticket is next in line.
    Promote,
    Cancel,
    CheckIn,
    Revoke,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {from} ticket cannot {event:?}")]
pub struct InvalidTransition {
    pub from: TicketStatus,
    pub event: TicketEvent,
}

impl TicketStatus {
    pub fn transition(self, event: TicketEvent) -> Result<TicketStatus, InvalidTransition> {
        use {TicketEvent as E, TicketStatus as S};
        match (self, event) {
            (S::Cancelled, E::Seat) => Ok(S::Confirmed),
            (S::Cancelled, E::Queue) => Ok(S::Waitlisted),
            (S::Waitlisted, E::Promote) => Ok(S::Confirmed),
            (S::Confirmed | S::Waitlisted, E::Cancel) => Ok(S::Cancelled),
            (S::Confirmed, E::CheckIn) => Ok(S::CheckedIn),
            (S::Confirmed | S::Waitlisted | S::CheckedIn, E::Revoke) => Ok(S::Revoked),
            (from, event) => Err(InvalidTransition { from, event }),
        }
    }

    /// Whether the ticket occupies one of the event's seats.
    pub fn holds_seat(self) -> bool {
        matches!(self, TicketStatus::Confirmed | TicketStatus::CheckedIn)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Confirmed => "confirmed",
            TicketStatus::Waitlisted => "waitlisted",
            TicketStatus::Cancelled => "cancelled",
            TicketStatus::CheckedIn => "checked_in",
            TicketStatus::Revoked => "revoked",
        }
    }

    pub fn parse(text: &str) -> Option<TicketStatus> {
        use TicketStatus as S;
        [
            S::Confirmed,
            S::Waitlisted,
            S::Cancelled,
            S::CheckedIn,
            S::Revoked,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for TicketStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fresh secret (a ticket token or a staff key): 256 bits from the OS, as lowercase
/// hex behind a prefix that says what it is.
pub fn new_secret(prefix: &str) -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

/// What is stored and looked up instead of a secret.
pub fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.trim().as_bytes()).to_vec()
}

/// Ticket tokens start with this (so a staff key typed into the code field is obvious).
pub const TOKEN_PREFIX: &str = "gt_";
/// Staff keys start with this.
pub const STAFF_KEY_PREFIX: &str = "gsk_";

#[cfg(test)]
mod tests {
    use super::*;
    use {TicketEvent as E, TicketStatus as S};

    #[test]
    fn transitions_follow_the_life_of_a_ticket() {
        let table = [
            (S::Cancelled, E::Seat, Some(S::Confirmed)),
            (S::Cancelled, E::Queue, Some(S::Waitlisted)),
            (S::Waitlisted, E::Promote, Some(S::Confirmed)),
            (S::Confirmed, E::Cancel, Some(S::Cancelled)),
            (S::Waitlisted, E::Cancel, Some(S::Cancelled)),
            (S::Confirmed, E::CheckIn, Some(S::CheckedIn)),
            (S::CheckedIn, E::Revoke, Some(S::Revoked)),
            (S::CheckedIn, E::CheckIn, None),
            (S::CheckedIn, E::Cancel, None),
            (S::Revoked, E::Seat, None),
            (S::Revoked, E::CheckIn, None),
            (S::Waitlisted, E::CheckIn, None),
            (S::Confirmed, E::Promote, None),
        ];
        for (from, event, to) in table {
            assert_eq!(from.transition(event).ok(), to, "{from} + {event:?}");
        }
    }

    #[test]
    fn status_text_round_trips() {
        for s in [
            "confirmed",
            "waitlisted",
            "cancelled",
            "checked_in",
            "revoked",
        ] {
            assert_eq!(TicketStatus::parse(s).map(TicketStatus::as_str), Some(s));
        }
        assert_eq!(TicketStatus::parse("lost"), None);
    }

    #[test]
    fn secrets_are_256_bit_and_distinct() {
        let a = new_secret(TOKEN_PREFIX).expect("random");
        let b = new_secret(TOKEN_PREFIX).expect("random");
        assert_ne!(a, b);
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 64);
        assert_eq!(digest(&a).len(), 32);
        assert_eq!(digest(&a), digest(&format!(" {a}\n")));
    }
}
