//! The REST executor that applies outbox jobs to Discord. It sends requests itself
//! (with serenity's token and base) because serenity's error type drops a 429's
//! `retry_after`, and with serenity's limiter off that number is what keeps us from
//! hammering Discord. Outcomes are sorted into: done, temporary (retry later with
//! backoff) and permanent (the job fails with a reason an admin can act on).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::ratelimit::RateLimits;
use crate::outbox::{Button, Job};
use serenity::all::MessageId;

/// How many 429s one job may absorb before it is retried later as a whole.
const MAX_RATE_LIMITED: u32 = 20;

/// Why a job can never succeed as things stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    MissingPermissions,
    MissingAccess,
    UnknownMember,
    UnknownRole,
    UnknownChannel,
    UnknownMessage,
    UnknownBan,
    DmsClosed,
    Rejected,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::MissingPermissions => "missing_permissions",
            FailureKind::MissingAccess => "missing_access",
            FailureKind::UnknownMember => "unknown_member",
            FailureKind::UnknownRole => "unknown_role",
            FailureKind::UnknownChannel => "unknown_channel",
            FailureKind::UnknownMessage => "unknown_message",
            FailureKind::UnknownBan => "unknown_ban",
            FailureKind::DmsClosed => "dms_closed",
            FailureKind::Rejected => "rejected",
        }
    }

    /// Discord's JSON error code (and status) → why.
    pub fn classify(status: u16, code: i64) -> FailureKind {
        match code {
            50013 => FailureKind::MissingPermissions,
            50001 => FailureKind::MissingAccess,
            10007 | 10013 => FailureKind::UnknownMember,
            10011 => FailureKind::UnknownRole,
            10003 => FailureKind::UnknownChannel,
            10008 => FailureKind::UnknownMessage,
            10026 => FailureKind::UnknownBan,
            50007 => FailureKind::DmsClosed,
            _ if status == 403 => FailureKind::MissingPermissions,
            _ => FailureKind::Rejected,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EffectError {
    #[error("temporary: {0}")]
    Temporary(String),
    #[error("{message}")]
    Permanent { kind: FailureKind, message: String },
}

pub struct Executor {
    client: reqwest::Client,
    api: String,
    authorization: String,
    limits: RateLimits,
    rate_limited: AtomicU64,
}

impl Executor {
    /// `base` is `https://discord.com` or a compatible base (`discord.api_base`).
    pub fn new(base: &str, token: &str, global_per_sec: u32) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .unwrap_or_default(),
            api: format!("{}/api/v10", base.trim_end_matches('/')),
            authorization: format!("Bot {token}"),
            limits: RateLimits::new(global_per_sec),
            rate_limited: AtomicU64::new(0),
        }
    }

    /// 429s received so far (a metric and a test aid).
    pub fn rate_limited_count(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }

    /// Applies `job`; a posted embed answers its new message's id.
    pub async fn apply(&self, job: &Job) -> Result<Option<MessageId>, EffectError> {
        if let Job::ModLog {
            channel_id,
            title,
            description,
            buttons,
            ..
        } = job
        {
            let body = embed_body(title, description, buttons);
            return self.post_message(channel_id.get(), body).await.map(Some);
        }
        self.apply_other(job).await.map(|()| None)
    }

    async fn apply_other(&self, job: &Job) -> Result<(), EffectError> {
        match job {
            Job::AddRole {
                guild_id,
                user_id,
                role_id,
                reason,
            }
            | Job::RemoveRole {
                guild_id,
                user_id,
                role_id,
                reason,
            } => {
                let method = if matches!(job, Job::AddRole { .. }) {
                    Method::PUT
                } else {
                    Method::DELETE
                };
                let path = format!("/guilds/{guild_id}/members/{user_id}/roles/{role_id}");
                let bucket = format!("member_roles:{guild_id}");
                self.send(method, &path, &bucket, None, Some(reason))
                    .await
                    .map(drop)
            }
            Job::SendMessage {
                channel_id,
                content,
            }
            | Job::AdminAlert {
                channel_id,
                content,
            } => self
                .post_message(channel_id.get(), json!({"content": content}))
                .await
                .map(drop),
            Job::ModLog {
                channel_id,
                title,
                description,
                buttons,
                ..
            } => {
                let body = embed_body(title, description, buttons);
                self.post_message(channel_id.get(), body).await.map(drop)
            }
            Job::EditMessage {
                channel_id,
                message_id,
                title,
                description,
                buttons,
            } => {
                let mut body = embed_body(title, description, buttons);
                // An empty list removes buttons the message had.
                body["components"] = if buttons.is_empty() {
                    json!([])
                } else {
                    action_row(buttons)
                };
                let path = format!("/channels/{channel_id}/messages/{message_id}");
                let bucket = format!("messages:{channel_id}");
                let sent = self
                    .send(Method::PATCH, &path, &bucket, Some(body), None)
                    .await;
                already_gone(sent, FailureKind::UnknownMessage)
            }
            Job::DeleteMessage {
                channel_id,
                message_id,
                reason,
            } => {
                let path = format!("/channels/{channel_id}/messages/{message_id}");
                let bucket = format!("message_delete:{channel_id}");
                let sent = self
                    .send(Method::DELETE, &path, &bucket, None, Some(reason))
                    .await;
                already_gone(sent, FailureKind::UnknownMessage)
            }
            Job::TimeoutMember {
                guild_id,
                user_id,
                until,
                reason,
            } => {
                let path = format!("/guilds/{guild_id}/members/{user_id}");
                let bucket = format!("member:{guild_id}");
                let body = json!({"communication_disabled_until": until.to_rfc3339()});
                self.send(Method::PATCH, &path, &bucket, Some(body), Some(reason))
                    .await
                    .map(drop)
            }
            Job::SendDm {
                user_id, content, ..
            } => self.send_dm(user_id.get(), content).await,
            Job::SendDmFile {
                user_id,
                content,
                attachment,
            } => self.send_dm_file(user_id.get(), content, attachment).await,
            Job::KickMember {
                guild_id,
                user_id,
                reason,
            } => {
                let path = format!("/guilds/{guild_id}/members/{user_id}");
                let bucket = format!("member:{guild_id}");
                self.send(Method::DELETE, &path, &bucket, None, Some(reason))
                    .await
                    .map(drop)
            }
            Job::BanMember {
                guild_id,
                user_id,
                delete_message_secs,
                reason,
            } => {
                let path = format!("/guilds/{guild_id}/bans/{user_id}");
                let bucket = format!("bans:{guild_id}");
                let body = json!({"delete_message_seconds": delete_message_secs.min(&604_800)});
                self.send(Method::PUT, &path, &bucket, Some(body), Some(reason))
                    .await
                    .map(drop)
            }
            Job::UnbanMember {
                guild_id,
                user_id,
                reason,
            } => {
                let path = format!("/guilds/{guild_id}/bans/{user_id}");
                let bucket = format!("bans:{guild_id}");
                let sent = self
                    .send(Method::DELETE, &path, &bucket, None, Some(reason))
                    .await;
                already_gone(sent, FailureKind::UnknownBan)
            }
            Job::ClearTimeout {
                guild_id,
                user_id,
                reason,
            } => {
                let path = format!("/guilds/{guild_id}/members/{user_id}");
                let bucket = format!("member:{guild_id}");
                let body = json!({"communication_disabled_until": null});
                self.send(Method::PATCH, &path, &bucket, Some(body), Some(reason))
                    .await
                    .map(drop)
            }
            // `crate::jobs` runs these through their handlers; one that reaches the
            // Discord executor was routed wrongly and must not pass as done.
            Job::Scheduled { name, .. } => Err(EffectError::Permanent {
                kind: FailureKind::Rejected,
                message: format!("scheduled job {name:?} is not a Discord effect"),
            }),
        }
    }

    /// Posts a message; its id.
    async fn post_message(&self, channel: u64, body: Value) -> Result<MessageId, EffectError> {
        // Mentions in posted text must not ping everyone by accident.
        let mut body = body;
        body["allowed_mentions"] = json!({"parse": ["users"]});
        let path = format!("/channels/{channel}/messages");
        let sent = self
            .send(
                Method::POST,
                &path,
                &format!("messages:{channel}"),
                Some(body),
                None,
            )
            .await?;
        sent["id"]
            .as_str()
            .and_then(|id| id.parse::<u64>().ok())
            .filter(|id| *id != 0)
            .map(MessageId::new)
            .ok_or_else(|| EffectError::Temporary("a posted message without an id".into()))
    }

    async fn send_dm(&self, user: u64, content: &str) -> Result<(), EffectError> {
        let channel = self.open_dm(user).await?;
        self.post_message(channel, json!({"content": content}))
            .await
            .map(drop)
    }

    async fn open_dm(&self, user: u64) -> Result<u64, EffectError> {
        let body = json!({"recipient_id": user.to_string()});
        let channel = self
            .send(
                Method::POST,
                "/users/@me/channels",
                "dm_open",
                Some(body),
                None,
            )
            .await?;
        channel["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| EffectError::Temporary("DM channel without an id".into()))
    }

    /// A DM with one file: multipart `payload_json` + `files[0]`, as Discord wants.
    async fn send_dm_file(
        &self,
        user: u64,
        content: &str,
        file: &crate::outbox::Attachment,
    ) -> Result<(), EffectError> {
        use base64::Engine as _;
        let data = base64::engine::general_purpose::STANDARD
            .decode(&file.data_base64)
            .map_err(|e| EffectError::Permanent {
                kind: FailureKind::Rejected,
                message: format!("the attachment is not base64: {e}"),
            })?;
        let channel = self.open_dm(user).await?;
        let payload = json!({
            "content": content,
            "attachments": [{"id": 0, "filename": file.filename}],
            "allowed_mentions": {"parse": ["users"]},
        });
        let (boundary, body) = multipart(&payload, &file.filename, &file.content_type, &data);
        let path = format!("/channels/{channel}/messages");
        self.send_raw(
            Method::POST,
            &path,
            &format!("messages:{channel}"),
            Some((format!("multipart/form-data; boundary={boundary}"), body)),
            None,
        )
        .await
        .map(drop)
    }

    /// One request, waiting out rate limits; returns the JSON body (or null).
    async fn send(
        &self,
        method: Method,
        path: &str,
        bucket: &str,
        body: Option<Value>,
        reason: Option<&str>,
    ) -> Result<Value, EffectError> {
        let body = body.map(|b| ("application/json".to_owned(), b.to_string().into_bytes()));
        self.send_raw(method, path, bucket, body, reason).await
    }

    /// [`Executor::send`] with a body already encoded, with its content type.
    async fn send_raw(
        &self,
        method: Method,
        path: &str,
        bucket: &str,
        body: Option<(String, Vec<u8>)>,
        reason: Option<&str>,
    ) -> Result<Value, EffectError> {
        for _ in 0..=MAX_RATE_LIMITED {
            self.limits.acquire(bucket).await;
            let mut request = self
                .client
                .request(method.clone(), format!("{}{path}", self.api))
                .header("authorization", &self.authorization);
            if let Some((content_type, body)) = &body {
                request = request
                    .header("content-type", content_type)
                    .body(body.clone());
            }
            if let Some(reason) = reason {
                request = request.header("x-audit-log-reason", encode_reason(reason));
            }
            let response = request
                .send()
                .await
                .map_err(|e| EffectError::Temporary(format!("network: {e}")))?;
            match self.outcome(bucket, response).await {
                Outcome::Done(value) => return Ok(value),
                Outcome::RateLimited => continue,
                Outcome::Failed(e) => return Err(e),
            }
        }
        Err(EffectError::Temporary("still rate limited".into()))
    }

    async fn outcome(&self, bucket: &str, response: Response) -> Outcome {
        let status = response.status();
        self.note_bucket_headers(bucket, &response);
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("guildops_discord_rate_limited_total").increment(1);
            let (wait, global) = retry_after(response).await;
            self.limits.block(bucket, global, wait);
            return Outcome::RateLimited;
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Outcome::Done(body);
        }
        let message = body["message"].as_str().unwrap_or("no message").to_owned();
        if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
            return Outcome::Failed(EffectError::Temporary(format!("{status}: {message}")));
        }
        let code = body["code"].as_i64().unwrap_or(0);
        Outcome::Failed(EffectError::Permanent {
            kind: FailureKind::classify(status.as_u16(), code),
            message: format!("{} (Discord {code}): {message}", status.as_u16()),
        })
    }

    /// An exhausted bucket is waited out before the next request, instead of after a 429.
    fn note_bucket_headers(&self, bucket: &str, response: &Response) {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        if header("x-ratelimit-remaining").as_deref() == Some("0")
            && let Some(after) = header("x-ratelimit-reset-after").and_then(|v| v.parse().ok())
        {
            self.limits
                .block(bucket, false, Duration::from_secs_f64(clamp_secs(after)));
        }
    }
}

enum Outcome {
    Done(Value),
    RateLimited,
    Failed(EffectError),
}

/// A multipart/form-data body with the JSON payload and one file; the boundary is
/// random so no payload can contain it by accident.
fn multipart(
    payload: &Value,
    filename: &str,
    content_type: &str,
    data: &[u8],
) -> (String, Vec<u8>) {
    let boundary = format!("guildops-{}", uuid::Uuid::new_v4().simple());
    let mut body = Vec::with_capacity(data.len() + 512);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"payload_json\"\r\nContent-Type: application/json\r\n\r\n{payload}\r\n"
        )
        .as_bytes(),
    );
    let filename = filename.replace(['"', '\r', '\n'], "_");
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (boundary, body)
}

/// A removal whose target is already gone has done its work.
fn already_gone(sent: Result<Value, EffectError>, gone: FailureKind) -> Result<(), EffectError> {
    match sent {
        Err(EffectError::Permanent { kind, .. }) if kind == gone => Ok(()),
        other => other.map(drop),
    }
}

/// One row of secondary buttons.
/// A message with one embed and, if any, a row of buttons.
fn embed_body(title: &str, description: &str, buttons: &[Button]) -> Value {
    let embed = json!({"title": title, "description": description});
    let mut body = json!({"embeds": [embed]});
    if !buttons.is_empty() {
        body["components"] = action_row(buttons);
    }
    body
}

fn action_row(buttons: &[Button]) -> Value {
    let buttons: Vec<Value> = buttons
        .iter()
        .map(|b| json!({"type": 2, "style": 2, "label": b.label, "custom_id": b.custom_id}))
        .collect();
    json!([{"type": 1, "components": buttons}])
}

/// The body's float `retry_after` (more precise than the header's whole seconds).
async fn retry_after(response: Response) -> (Duration, bool) {
    let global_header = response
        .headers()
        .get("x-ratelimit-global")
        .is_some_and(|v| v.as_bytes() == b"true");
    let header_secs = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<f64>().ok());
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let secs = body["retry_after"].as_f64().or(header_secs).unwrap_or(1.0);
    let global = global_header || body["global"].as_bool() == Some(true);
    (Duration::from_secs_f64(clamp_secs(secs)), global)
}

/// A hostile or broken server cannot park a worker for hours.
fn clamp_secs(secs: f64) -> f64 {
    if secs.is_finite() {
        secs.clamp(0.0, 300.0)
    } else {
        1.0
    }
}

/// Discord wants the audit-log reason percent-encoded.
fn encode_reason(reason: &str) -> String {
    let mut out = String::new();
    for b in reason.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~ ".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.replace(' ', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discord_codes_map_to_reasons() {
        assert_eq!(
            FailureKind::classify(403, 50013),
            FailureKind::MissingPermissions
        );
        assert_eq!(FailureKind::classify(404, 10011), FailureKind::UnknownRole);
        assert_eq!(
            FailureKind::classify(404, 10007),
            FailureKind::UnknownMember
        );
        assert_eq!(
            FailureKind::classify(404, 10003),
            FailureKind::UnknownChannel
        );
        assert_eq!(FailureKind::classify(403, 50007), FailureKind::DmsClosed);
        assert_eq!(FailureKind::classify(400, 50035), FailureKind::Rejected);
    }

    #[test]
    fn reasons_are_percent_encoded() {
        assert_eq!(encode_reason("auto-role: é"), "auto-role%3A%20%C3%A9");
    }
}
