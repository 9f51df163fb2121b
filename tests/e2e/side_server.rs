//! The HTTP side server: health, readiness and metrics, plus its limits.

use crate::support::{WAIT, World};
use guildops_harness::Command;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let world = World::new().await;
    let daemon = world.start_daemon().await;
    world.wait_for_commands().await;
    let base = format!("http://{}", daemon.http_addr);
    let client = reqwest::Client::new();

    let health = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let ready = client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body, serde_json::json!({"database": true, "gateway": true}));

    let g = &world.guild;
    world
        .discord
        .run_command(g.id, g.general_channel, g.owner_id, Command::new("about"))
        .reply(WAIT)
        .await;
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for expected in [
        "guildops_gateway_events_total{type=\"guild_create\"}",
        "guildops_commands_total{command=\"about\",outcome=\"ok\"}",
        "guildops_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"}",
        "guildops_command_duration_seconds_bucket",
        "guildops_http_request_duration_seconds_bucket",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in:\n{metrics}"
        );
    }
    let unknown = client
        .get(format!("{base}/nope"))
        .send()
        .await
        .expect("404");
    assert_eq!(unknown.status(), 404);
    daemon.stop().await.expect("clean stop");
}

#[tokio::test]
async fn readiness_fails_when_the_gateway_is_down() {
    let world = World::new().await;
    let daemon = world.start_daemon().await;
    let base = format!("http://{}", daemon.http_addr);
    daemon.app.status.set_gateway_connected(false);
    let ready = reqwest::get(format!("{base}/readyz"))
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 503);
    daemon.stop().await.expect("clean stop");
}
