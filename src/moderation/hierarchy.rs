//! Who may sanction whom: never the owner, never the bot, never oneself, and only a
//! member whose highest role is below both the moderator's and the bot's (Discord would
//! refuse the bot anyway; a moderator must not use the bot to reach above themselves).
//! Pure: the command layer gathers the facts from Discord's cache.

/// Role positions are Discord's (higher is more powerful); 0 is @everyone only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub target_is_owner: bool,
    pub target_is_bot_itself: bool,
    pub target_is_moderator_itself: bool,
    /// `None` when the target is not in the server (a ban by id).
    pub target_top: Option<i64>,
    pub moderator_top: i64,
    pub moderator_is_owner: bool,
    pub bot_top: i64,
}

/// Why a sanction is refused, said so the moderator knows what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

pub fn check(f: Facts) -> Result<(), Refusal> {
    let refuse = |why: &str| Err(Refusal(why.to_owned()));
    if f.target_is_owner {
        return refuse("That's the server owner: nobody can sanction them.");
    }
    if f.target_is_bot_itself {
        return refuse("I can't sanction myself.");
    }
    if f.target_is_moderator_itself {
        return refuse("You can't sanction yourself.");
    }
    let Some(target) = f.target_top else {
        return Ok(());
    };
    if !f.moderator_is_owner && target >= f.moderator_top {
        return refuse(
            "Their highest role is not below yours, so you can't sanction them. Ask someone above them.",
        );
    }
    if target >= f.bot_top {
        return refuse(
            "Their highest role is not below mine, so Discord won't let me act on them. In Server Settings → Roles, drag my role above theirs.",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            target_is_owner: false,
            target_is_bot_itself: false,
            target_is_moderator_itself: false,
            target_top: Some(1),
            moderator_top: 5,
            moderator_is_owner: false,
            bot_top: 10,
        }
    }

    #[test]
    fn a_lower_member_can_be_sanctioned() {
        assert_eq!(check(facts()), Ok(()));
        let absent = Facts {
            target_top: None,
            ..facts()
        };
        assert_eq!(check(absent), Ok(()));
    }

    #[test]
    fn the_owner_the_bot_oneself_and_higher_members_cannot() {
        let cases = [
            Facts {
                target_is_owner: true,
                ..facts()
            },
            Facts {
                target_is_bot_itself: true,
                ..facts()
            },
            Facts {
                target_is_moderator_itself: true,
                ..facts()
            },
            Facts {
                target_top: Some(5),
                ..facts()
            },
            Facts {
                target_top: Some(10),
                moderator_is_owner: true,
                ..facts()
            },
        ];
        for f in cases {
            assert!(check(f).is_err(), "{f:?}");
        }
        let owner_over_high_member = Facts {
            target_top: Some(7),
            moderator_is_owner: true,
            ..facts()
        };
        assert_eq!(check(owner_over_high_member), Ok(()));
    }
}
