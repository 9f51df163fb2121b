//! The Discord permissions guildops asks for when invited, each for a feature, and the
//! OAuth2 invite URL that requests exactly those.

use serenity::all::Permissions;

/// Exactly what the features need; nothing broader (no ADMINISTRATOR).
pub fn required() -> Permissions {
    Permissions::VIEW_CHANNEL          // see the channels it moderates and posts to
        | Permissions::SEND_MESSAGES   // admin alerts, mod-log, welcome messages
        | Permissions::SEND_MESSAGES_IN_THREADS
        | Permissions::EMBED_LINKS     // mod-log entries and tier cards are embeds
        | Permissions::ATTACH_FILES    // case and audit exports
        | Permissions::READ_MESSAGE_HISTORY // jump links and replies
        | Permissions::MANAGE_MESSAGES // automod deletes
        | Permissions::MANAGE_ROLES    // paid-tier roles, auto-roles, quarantine
        | Permissions::KICK_MEMBERS    // kick sanctions, lapse kicks
        | Permissions::BAN_MEMBERS     // ban, softban, unban
        | Permissions::MODERATE_MEMBERS // timeouts
        | Permissions::CREATE_PRIVATE_THREADS // appeal and report threads
        | Permissions::MANAGE_THREADS
}

/// The invite link an owner opens to add the bot with its slash commands.
pub fn invite_url(application_id: u64) -> String {
    format!(
        "https://discord.com/oauth2/authorize?client_id={application_id}&scope=bot+applications.commands&permissions={}",
        required().bits()
    )
}

/// A bot token's first segment is the base64 of the bot's user id, which is the
/// application id for every application created since 2020.
pub fn application_id_from_token(token: &str) -> Option<u64> {
    use base64::Engine as _;
    let first = token.split('.').next()?;
    let engine = base64::engine::general_purpose::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::general_purpose::NO_PAD
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let bytes = engine.decode(first).ok()?;
    std::str::from_utf8(&bytes).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_asks_for_moderation_bits_but_never_administrator() {
        let p = required();
        assert!(!p.administrator());
        assert!(p.manage_roles() && p.moderate_members() && p.ban_members() && p.manage_messages());
        let url = invite_url(42);
        assert!(url.contains("client_id=42") && url.contains(&format!("permissions={}", p.bits())));
    }

    #[test]
    fn application_id_comes_from_the_token() {
        // "123456789012345678" base64-encoded without padding, then two dummy segments.
        assert_eq!(
            application_id_from_token("MTIzNDU2Nzg5MDEyMzQ1Njc4.Gx.y"),
            Some(123456789012345678)
        );
        assert_eq!(application_id_from_token("not-a-token"), None);
    }
}
