//! A report's categories and its status machine (mirrored by the CHECK and the
//! transition trigger in `migrations/*_create_reports_and_appeals.sql`).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Scam,
    Harassment,
    Coercion,
    Hate,
    Doxxing,
    Unsafe,
    Spam,
    Other,
}

impl Category {
    pub const ALL: [Category; 8] = [
        Category::Scam,
        Category::Harassment,
        Category::Coercion,
        Category::Hate,
        Category::Doxxing,
        Category::Unsafe,
        Category::Spam,
        Category::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Scam => "scam",
            Category::Harassment => "harassment",
            Category::Coercion => "coercion",
            Category::Hate => "hate",
            Category::Doxxing => "doxxing",
            Category::Unsafe => "unsafe",
            Category::Spam => "spam",
            Category::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Open,
    Investigating,
    Resolved,
    Dismissed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Claim,
    Resolve,
    Dismiss,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this report is {}: it can't be {}", .from.as_str(), .event.past())]
pub struct InvalidTransition {
    pub from: Status,
    pub event: Event,
}

impl Event {
    fn past(self) -> &'static str {
        match self {
            Event::Claim => "claimed",
            Event::Resolve => "resolved",
            Event::Dismiss => "dismissed",
        }
    }
}

impl Status {
    /// open → investigating → resolved | dismissed; an open report may also be
    /// resolved or dismissed at once. Nothing leaves resolved or dismissed.
    pub fn transition(self, event: Event) -> Result<Status, InvalidTransition> {
        match (self, event) {
            (Status::Open, Event::Claim) => Ok(Status::Investigating),
            (Status::Open | Status::Investigating, Event::Resolve) => Ok(Status::Resolved),
            (Status::Open | Status::Investigating, Event::Dismiss) => Ok(Status::Dismissed),
            (from, event) => Err(InvalidTransition { from, event }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Investigating => "investigating",
            Status::Resolved => "resolved",
            Status::Dismissed => "dismissed",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        [
            Status::Open,
            Status::Investigating,
            Status::Resolved,
            Status::Dismissed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_machine() {
        use Event::*;
        use Status::*;
        assert_eq!(Open.transition(Claim), Ok(Investigating));
        assert_eq!(Investigating.transition(Resolve), Ok(Resolved));
        assert_eq!(Open.transition(Dismiss), Ok(Dismissed));
        assert!(Investigating.transition(Claim).is_err());
        for done in [Resolved, Dismissed] {
            for e in [Claim, Resolve, Dismiss] {
                assert!(done.transition(e).is_err());
            }
        }
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()), Some(c));
        }
    }
}
