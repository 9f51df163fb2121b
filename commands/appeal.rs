//! `/appeal`: a sanctioned member asks the moderators to lift a case. It works in the
//! server and in a DM with the bot (a banned member can still reach it); in a DM the
//! case number finds the server, or `server:` names it when several match.

use crate::moderation::appeals::{self, NewAppeal};

use super::{CommandError, Context, reply};

/// Appeal a moderation case (works in DMs too)
#[poise::command(slash_command)]
pub async fn appeal(
    ctx: Context<'_>,
    #[description = "The case number from the message you got"]
    #[min = 1]
    case: i32,
    #[description = "Why it should be lifted"]
    #[max_length = 1000]
    reason: String,
    #[description = "In a DM: the server's name, if you have that case number in several"]
    server: Option<String>,
) -> Result<(), CommandError> {
    let (number, name) = appeals::file(
        &ctx.data().pool,
        NewAppeal {
            guild: ctx.guild_id(),
            server,
            appellant: ctx.author().id,
            case_number: case,
            reason,
        },
    )
    .await?;
    reply(
        ctx,
        format!("Your appeal of case #{number} is with the moderators of **{name}**. I'll tell you their decision by DM."),
    )
    .await
}
