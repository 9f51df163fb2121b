//! Tests of `guildops_harness::openapi` against the real Discord OpenAPI fixture.
//!
//! They load `../shared/fixtures/discord/openapi.json` (or `$GUILDOPS_SHARED_DIR/...`)
//! and fail loudly, never skip, when it is absent: a conformance checker that silently
//! checks nothing would let every fake-Discord bug through.

use std::sync::OnceLock;
use std::time::Instant;

use guildops_harness::openapi::OpenApi;
use serde_json::{Value, json};

/// One parsed spec for the whole file (loading is the slow part), with its timing
/// printed once so regressions in load cost are visible in test output.
fn spec() -> &'static OpenApi {
    static SPEC: OnceLock<OpenApi> = OnceLock::new();
    SPEC.get_or_init(|| {
        let started = Instant::now();
        let spec = OpenApi::load_default().unwrap_or_else(|e| panic!("{e}"));
        let loaded = started.elapsed();
        // First validations include compiling the message schema graph.
        let first = Instant::now();
        let msg = message();
        let first_checks = [
            spec.check_response("POST", "/api/v10/channels/1/messages", 200, Some(&msg)),
            spec.check_request("PUT", "/api/v10/guilds/1/members/2/roles/3", None),
        ];
        assert_eq!(first_checks, [Vec::<String>::new(), Vec::new()]);
        eprintln!(
            "openapi: loaded {} operations from {} in {loaded:?}; first validations took {:?}",
            spec.operation_count(),
            spec.source().display(),
            first.elapsed()
        );
        spec
    })
}

fn user(id: &str) -> Value {
    json!({
        "id": id,
        "username": "guildops",
        "avatar": null,
        "discriminator": "0",
        "public_flags": 0,
        "flags": 0,
        "global_name": null,
        "primary_guild": null,
        "bot": true
    })
}

/// A well-formed message object as Discord returns it from create_message.
fn message() -> Value {
    json!({
        "type": 0,
        "content": "hello",
        "mentions": [user("80351110224678912")],
        "mention_roles": ["41771983423143936"],
        "attachments": [],
        "embeds": [],
        "timestamp": "2026-11-22T03:00:00.000000+00:00",
        "edited_timestamp": null,
        "flags": 0,
        "components": [],
        "id": "1169784540196061234",
        "channel_id": "1169784540196061000",
        "author": user("1169784540196060000"),
        "pinned": false,
        "mention_everyone": false,
        "tts": false
    })
}

fn assert_mentions(violations: &[String], needles: &[&str]) {
    assert!(
        violations
            .iter()
            .any(|v| needles.iter().all(|n| v.contains(n))),
        "expected a violation mentioning {needles:?}, got {violations:#?}"
    );
}

#[test]
fn missing_fixture_is_reported_clearly() {
    let err = OpenApi::load(std::path::Path::new("/nonexistent/openapi.json"))
        .expect_err("loading a missing file must fail");
    assert!(err.contains("/nonexistent/openapi.json"), "{err}");
    // The default path is what CI uses; it must be there, and say so if it is not.
    assert!(
        OpenApi::default_path().is_file(),
        "../shared/fixtures/discord/openapi.json is missing (looked for {})",
        OpenApi::default_path().display()
    );
}

#[test]
fn valid_member_role_put_passes() {
    let spec = spec();
    let path = "/api/v10/guilds/123/members/456/roles/789";
    assert_eq!(spec.check_request("PUT", path, None), Vec::<String>::new());
    assert_eq!(
        spec.check_response("PUT", path, 204, None),
        Vec::<String>::new()
    );
    assert_eq!(
        spec.operation_id("PUT", path).as_deref(),
        Some("add_guild_member_role")
    );
    assert_eq!(
        spec.template_for("put", path).as_deref(),
        Some("/guilds/{guild_id}/members/{user_id}/roles/{role_id}")
    );
}

#[test]
fn member_role_put_with_bad_ids_or_body_is_reported() {
    let spec = spec();
    let v = spec.check_request("PUT", "/api/v10/guilds/abc/members/456/roles/789", None);
    assert_mentions(
        &v,
        &[
            "PUT /guilds/{guild_id}/members/{user_id}/roles/{role_id}",
            "guild_id",
            "snowflake",
        ],
    );
    let v = spec.check_request(
        "PUT",
        "/api/v10/guilds/1/members/2/roles/3",
        Some(&json!({})),
    );
    assert_mentions(&v, &["no request body"]);
    let v = spec.check_response(
        "PUT",
        "/api/v10/guilds/1/members/2/roles/3",
        204,
        Some(&json!({})),
    );
    assert_mentions(&v, &["response 204", "no body"]);
}

#[test]
fn well_formed_message_response_passes() {
    let spec = spec();
    let v = spec.check_response(
        "POST",
        "/api/v10/channels/42/messages",
        200,
        Some(&message()),
    );
    assert_eq!(v, Vec::<String>::new());
}

#[test]
fn message_missing_required_field_fails_naming_it() {
    let spec = spec();
    for field in ["id", "channel_id"] {
        let mut msg = message();
        msg.as_object_mut().expect("object").remove(field);
        let v = spec.check_response("POST", "/api/v10/channels/42/messages", 200, Some(&msg));
        assert_mentions(
            &v,
            &[
                "POST /channels/{channel_id}/messages response 200",
                &format!("\"{field}\""),
                "required",
            ],
        );
    }
}

#[test]
fn nested_non_snowflake_is_located() {
    let spec = spec();
    let mut msg = message();
    msg["mention_roles"] = json!(["abc"]);
    let v = spec.check_response("POST", "/api/v10/channels/42/messages", 200, Some(&msg));
    assert_mentions(&v, &["/mention_roles/0", "\"abc\"", "snowflake"]);
    // Past u64::MAX is not a snowflake either, though it matches the spec's pattern.
    msg["mention_roles"] = json!(["18446744073709551616"]);
    let v = spec.check_response("POST", "/api/v10/channels/42/messages", 200, Some(&msg));
    assert_mentions(&v, &["/mention_roles/0", "snowflake"]);
}

#[test]
fn undocumented_status_is_reported_and_4xx_is_allowed() {
    let spec = spec();
    let path = "/api/v10/channels/42/messages";
    let v = spec.check_response("POST", path, 201, Some(&message()));
    assert_mentions(&v, &["201", "not documented", "create_message"]);
    let err = json!({"code": 50013, "message": "Missing Permissions"});
    assert_eq!(
        spec.check_response("POST", path, 403, Some(&err)),
        Vec::<String>::new()
    );
    // A 4XX body must still match ErrorResponse.
    let v = spec.check_response("POST", path, 403, Some(&json!({"code": "x"})));
    assert!(!v.is_empty(), "malformed error body accepted");
}

#[test]
fn unknown_route_and_method_are_reported() {
    let spec = spec();
    let v = spec.check_request("GET", "/api/v10/definitely/not/a/route", None);
    assert_mentions(
        &v,
        &["GET /api/v10/definitely/not/a/route", "no such route"],
    );
    let v = spec.check_response("GET", "/api/v10/definitely/not/a/route", 200, None);
    assert_mentions(&v, &["no such route"]);
    assert_eq!(
        spec.operation_id("GET", "/api/v10/definitely/not/a/route"),
        None
    );
    let v = spec.check_request("POST", "/api/v10/guilds/1/members/2/roles/3", None);
    assert_mentions(&v, &["method POST is not documented", "PUT"]);
}

#[test]
fn invalid_create_message_body_is_reported() {
    let spec = spec();
    let path = "/api/v10/channels/42/messages";
    let ok = json!({"content": "hi", "allowed_mentions": {"parse": []}});
    assert_eq!(
        spec.check_request("POST", path, Some(&ok)),
        Vec::<String>::new()
    );
    let v = spec.check_request("POST", path, Some(&json!({"content": 5})));
    assert_mentions(
        &v,
        &[
            "POST /channels/{channel_id}/messages request",
            "/content",
            "5",
        ],
    );
}

#[test]
fn at_me_matches_literal_template() {
    let spec = spec();
    assert_eq!(
        spec.operation_id("GET", "/api/v10/users/@me").as_deref(),
        Some("get_my_user")
    );
    assert_eq!(
        spec.check_request("GET", "/api/v10/users/@me", None),
        Vec::<String>::new()
    );
    assert_eq!(
        spec.operation_id("GET", "/api/v10/users/80351110224678912")
            .as_deref(),
        Some("get_user")
    );
    // Percent-encoded "@" is the same segment.
    assert_eq!(
        spec.operation_id("GET", "/api/v10/users/%40me").as_deref(),
        Some("get_my_user")
    );
    assert_eq!(
        spec.template_for("PATCH", "/api/v10/webhooks/1/tok/messages/@original")
            .as_deref(),
        Some("/webhooks/{webhook_id}/{webhook_token}/messages/@original")
    );
}

#[test]
fn template_matcher_prefers_literal_segments() {
    let spec = spec();
    // Both /guilds/{guild_id}/members/@me and .../{user_id} have PATCH.
    assert_eq!(
        spec.operation_id("PATCH", "/api/v10/guilds/1/members/@me")
            .as_deref(),
        Some("update_my_guild_member")
    );
    assert_eq!(
        spec.operation_id("PATCH", "/api/v10/guilds/1/members/2")
            .as_deref(),
        Some("update_guild_member")
    );
    // "search" is a literal sibling of {user_id}.
    assert_eq!(
        spec.operation_id("GET", "/api/v10/guilds/1/members/search")
            .as_deref(),
        Some("search_guild_members")
    );
    // Prefix, trailing slash and query string do not change the match.
    assert_eq!(
        spec.operation_id("GET", "/guilds/1/members/search/?query=a")
            .as_deref(),
        Some("search_guild_members")
    );
}

#[test]
fn every_operation_schema_compiles_offline() {
    let spec = spec();
    let started = Instant::now();
    let failures = spec.precompile_all();
    eprintln!(
        "openapi: compiled every operation schema in {:?}",
        started.elapsed()
    );
    assert_eq!(failures, Vec::<String>::new());
}
