//! What a case is: its kind, its status machine, and the rules about which kinds last.
//! Pure; mirrored by the CHECK constraints of `migrations/*_create_cases.sql`.

use std::fmt;

/// The kinds of case. Stored as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Note,
    Warn,
    Timeout,
    Kick,
    Ban,
    /// A ban that deletes recent messages and is lifted at once.
    Softban,
    Unban,
    Untimeout,
    /// A role that hides the server (`/setup quarantine`).
    Quarantine,
    Unquarantine,
    /// A role that takes away speaking (`/setup mute`).
    Mute,
    Unmute,
}

impl Kind {
    pub const ALL: [Kind; 12] = [
        Kind::Note,
        Kind::Warn,
        Kind::Timeout,
        Kind::Kick,
        Kind::Ban,
        Kind::Softban,
        Kind::Unban,
        Kind::Untimeout,
        Kind::Quarantine,
        Kind::Unquarantine,
        Kind::Mute,
        Kind::Unmute,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Note => "note",
            Kind::Warn => "warn",
            Kind::Timeout => "timeout",
            Kind::Kick => "kick",
            Kind::Ban => "ban",
            Kind::Softban => "softban",
            Kind::Unban => "unban",
            Kind::Untimeout => "untimeout",
            Kind::Quarantine => "quarantine",
            Kind::Unquarantine => "unquarantine",
            Kind::Mute => "mute",
            Kind::Unmute => "unmute",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Sanctions that stay in force until lifted (and may have a duration).
    pub fn lasts(self) -> bool {
        matches!(
            self,
            Kind::Timeout | Kind::Ban | Kind::Quarantine | Kind::Mute
        )
    }

    /// The lasting sanction a reversal lifts.
    pub fn reverses(self) -> Option<Kind> {
        match self {
            Kind::Unban => Some(Kind::Ban),
            Kind::Untimeout => Some(Kind::Timeout),
            Kind::Unquarantine => Some(Kind::Quarantine),
            Kind::Unmute => Some(Kind::Mute),
            _ => None,
        }
    }

    /// Whether the member is sanctioned (and told by DM); notes are for moderators.
    pub fn tells_member(self) -> bool {
        !matches!(self, Kind::Note)
    }

    /// The past tense the member and the mod-log read.
    pub fn verb(self) -> &'static str {
        match self {
            Kind::Note => "noted",
            Kind::Warn => "warned",
            Kind::Timeout => "timed out",
            Kind::Kick => "kicked",
            Kind::Ban => "banned",
            Kind::Softban => "softbanned",
            Kind::Unban => "unbanned",
            Kind::Untimeout => "released from timeout",
            Kind::Quarantine => "quarantined",
            Kind::Unquarantine => "released from quarantine",
            Kind::Mute => "muted",
            Kind::Unmute => "unmuted",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A case's life. `Recorded` cases (notes, warnings, kicks, reversals) never change;
/// a lasting sanction is `Active` until it expires or a reversal revokes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Recorded,
    Active,
    Expired,
    Revoked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Expire,
    Revoke,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {from} case cannot be {event:?}d")]
pub struct InvalidTransition {
    pub from: Status,
    pub event: Event,
}

impl Status {
    /// The status a new case of `kind` starts in.
    pub fn initial(kind: Kind) -> Status {
        if kind.lasts() {
            Status::Active
        } else {
            Status::Recorded
        }
    }

    /// The one place that decides what follows.
    pub fn transition(self, event: Event) -> Result<Status, InvalidTransition> {
        match (self, event) {
            (Status::Active, Event::Expire) => Ok(Status::Expired),
            (Status::Active, Event::Revoke) => Ok(Status::Revoked),
            (from, event) => Err(InvalidTransition { from, event }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Recorded => "recorded",
            Status::Active => "active",
            Status::Expired => "expired",
            Status::Revoked => "revoked",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        [
            Status::Recorded,
            Status::Active,
            Status::Expired,
            Status::Revoked,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_active_sanction_moves_and_only_once() {
        assert_eq!(
            Status::Active.transition(Event::Expire),
            Ok(Status::Expired)
        );
        assert_eq!(
            Status::Active.transition(Event::Revoke),
            Ok(Status::Revoked)
        );
        for from in [Status::Recorded, Status::Expired, Status::Revoked] {
            for event in [Event::Expire, Event::Revoke] {
                assert!(from.transition(event).is_err(), "{from} {event:?}");
            }
        }
    }

    #[test]
    fn lasting_kinds_start_active_and_reversals_name_what_they_lift() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
            let active = Status::initial(kind) == Status::Active;
            assert_eq!(active, kind.lasts(), "{kind}");
        }
        assert_eq!(Kind::Unban.reverses(), Some(Kind::Ban));
        assert_eq!(Kind::Warn.reverses(), None);
    }
}
