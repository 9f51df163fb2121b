//! The gateway: WebSocket connections and sessions, speaking Discord's v10 JSON protocol.
//!
//! A *connection* is one socket; a *session* is what IDENTIFY creates and RESUME
//! re-attaches to a new connection. Every dispatch is sequenced per session (`s`) and
//! kept in the session's log, so events emitted while the client is disconnected are
//! replayed on RESUME exactly as Discord would. Compression requested in IDENTIFY is
//! ignored: plain JSON text frames are always sent (serenity accepts them).
//!
//! All session bookkeeping happens under the state lock, and each connection has an
//! unbounded queue drained by its own task, so frame order on the wire equals the order
//! in which the world changed.

use std::collections::{BTreeMap, VecDeque};

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{FakeDiscord, payloads};

/// Counters describing gateway activity, for assertions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GatewayStats {
    /// IDENTIFY payloads accepted (a new session each).
    pub identifies: u32,
    /// RESUME payloads accepted (session found and replayed).
    pub resumes: u32,
    /// True while at least one session has a live socket.
    pub connected: bool,
    /// Heartbeats (op 1) received and acknowledged.
    pub heartbeats: u32,
    /// READY dispatches sent.
    pub ready_sent: u32,
    /// Sockets currently open (identified or not).
    pub open_connections: u32,
}

/// What a connection task is asked to do.
pub(crate) enum Outgoing {
    Frame(String),
    /// Send a close frame with this code, then end the connection.
    Close(u16, &'static str),
    /// End the connection without a close frame (simulated network drop).
    Drop,
}

struct Session {
    seq: u64,
    /// Dispatch frames in sequence order, for RESUME replay. Bounded to keep memory flat
    /// in long tests; a client that missed more than this would be out of luck on
    /// Discord too (it would get INVALID_SESSION).
    log: VecDeque<(u64, String)>,
    conn: Option<u64>,
}

const SESSION_LOG_LIMIT: usize = 10_000;

#[derive(Default)]
pub(crate) struct GatewayState {
    sessions: BTreeMap<String, Session>,
    conns: BTreeMap<u64, mpsc::UnboundedSender<Outgoing>>,
    next_conn: u64,
    next_session: u64,
    identifies: u32,
    resumes: u32,
    heartbeats: u32,
    ready_sent: u32,
    /// Event names and frames written to live sockets, for `wait_for_dispatch`.
    sent: Vec<(String, Value)>,
    last_identify: Option<Value>,
}

/// Per-server facts a connection needs to answer IDENTIFY.
pub(crate) struct ServerInfo {
    token: String,
    application_id: u64,
    ws_url: String,
}

impl ServerInfo {
    pub(crate) fn of(fake: &FakeDiscord) -> Self {
        ServerInfo {
            token: fake.token().to_string(),
            application_id: fake.application_id(),
            ws_url: fake.gateway_url(),
        }
    }
}

/// op 10 HELLO, the first frame on every connection.
pub(crate) fn hello(fake: &FakeDiscord) -> Value {
    json!({
        "op": 10,
        "s": null,
        "t": null,
        "d": {"heartbeat_interval": fake.heartbeat_interval_ms(), "_trace": ["[\"fake-gateway\"]"]},
    })
}

impl GatewayState {
    pub fn stats(&self) -> GatewayStats {
        GatewayStats {
            identifies: self.identifies,
            resumes: self.resumes,
            connected: self.sessions.values().any(|s| s.conn.is_some()),
            heartbeats: self.heartbeats,
            ready_sent: self.ready_sent,
            open_connections: self.conns.len() as u32,
        }
    }

    pub fn last_identify(&self) -> Option<Value> {
        self.last_identify.clone()
    }

    #[cfg(test)]
    pub(crate) fn session_ids(&self) -> Vec<String> {
        self.sessions.keys().cloned().collect()
    }

    /// Logged dispatch frames of type `event` across sessions.
    fn session_frames(&self, event: &str) -> Vec<Value> {
        self.sessions
            .values()
            .flat_map(|s| s.log.iter())
            .filter_map(|(_, f)| serde_json::from_str::<Value>(f).ok())
            .filter(|f| f["t"] == event)
            .collect()
    }

    pub fn find_sent(&self, event: &str) -> Option<Value> {
        self.sent
            .iter()
            .find(|(t, _)| t == event)
            .map(|(_, v)| v.clone())
    }

    /// Emit a dispatch to every session (live ones get it now, detached ones on RESUME).
    /// Before the first IDENTIFY there is no session, and nothing is lost: READY and
    /// GUILD_CREATE describe the world as it is then.
    pub fn emit(&mut self, event: &str, data: Value) {
        let ids: Vec<String> = self.sessions.keys().cloned().collect();
        for id in ids {
            self.dispatch_to(&id, event, data.clone());
        }
    }

    fn dispatch_to(&mut self, session_id: &str, event: &str, data: Value) {
        let Some(s) = self.sessions.get_mut(session_id) else {
            return;
        };
        s.seq += 1;
        let frame = json!({"op": 0, "s": s.seq, "t": event, "d": data});
        let text = frame.to_string();
        s.log.push_back((s.seq, text.clone()));
        if s.log.len() > SESSION_LOG_LIMIT {
            s.log.pop_front();
        }
        if let Some(tx) = s.conn.and_then(|c| self.conns.get(&c))
            && tx.send(Outgoing::Frame(text)).is_ok()
        {
            self.sent.push((event.to_string(), frame));
        }
    }

    fn send(&self, conn: u64, frame: Value) {
        if let Some(tx) = self.conns.get(&conn) {
            let _ = tx.send(Outgoing::Frame(frame.to_string()));
        }
    }

    fn close(&self, conn: u64, code: u16, reason: &'static str) {
        if let Some(tx) = self.conns.get(&conn) {
            let _ = tx.send(Outgoing::Close(code, reason));
        }
    }

    /// Non-dispatch opcode to every open socket (op 7 RECONNECT).
    pub fn send_op_all(&mut self, frame: Value) {
        for conn in self.conns.keys().copied().collect::<Vec<_>>() {
            self.send(conn, frame.clone());
        }
    }

    pub fn invalidate(&mut self, resumable: bool) {
        let frame = json!({"op": 9, "d": resumable, "s": null, "t": null});
        self.send_op_all(frame);
        if !resumable {
            // Forget sessions so a RESUME attempt is refused and the client IDENTIFYs.
            self.sessions.clear();
        }
    }

    pub fn drop_all(&mut self) {
        for tx in self.conns.values() {
            let _ = tx.send(Outgoing::Drop);
        }
        for s in self.sessions.values_mut() {
            s.conn = None;
        }
    }

    pub(crate) fn open(&mut self, tx: mpsc::UnboundedSender<Outgoing>) -> u64 {
        self.next_conn += 1;
        self.conns.insert(self.next_conn, tx);
        self.next_conn
    }

    /// The socket ended: detach its session (which keeps buffering for a RESUME).
    fn closed(&mut self, conn: u64) {
        self.conns.remove(&conn);
        for s in self.sessions.values_mut() {
            if s.conn == Some(conn) {
                s.conn = None;
            }
        }
    }

    fn session_of(&self, conn: u64) -> Option<String> {
        self.sessions
            .iter()
            .find(|(_, s)| s.conn == Some(conn))
            .map(|(id, _)| id.clone())
    }
}

pub(crate) async fn ws_handler(State(fake): State<FakeDiscord>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| connection(fake, socket))
}

async fn connection(fake: FakeDiscord, socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let conn = fake.mutate(|st| st.gateway.open(tx));
    let info = ServerInfo::of(&fake);
    let (mut sink, mut stream) = socket.split();
    if sink
        .send(Message::Text(hello(&fake).to_string().into()))
        .await
        .is_ok()
    {
        loop {
            tokio::select! {
                incoming = stream.next() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        match serde_json::from_str::<Value>(text.as_str()) {
                            Ok(frame) => fake.mutate(|st| on_frame(st, &info, conn, frame)),
                            Err(_) => fake.mutate(|st| st.gateway.close(conn, 4002, "Error while decoding payload.")),
                        }
                    }
                    // Ping/pong are answered by the WebSocket layer; binary (ETF) is not
                    // something serenity sends.
                    Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                },
                out = rx.recv() => match out {
                    Some(Outgoing::Frame(text)) => {
                        if sink.send(Message::Text(text.into())).await.is_err() {
                            break;
                        }
                    }
                    Some(Outgoing::Close(code, reason)) => {
                        let frame = CloseFrame { code, reason: reason.into() };
                        let _ = sink.send(Message::Close(Some(frame))).await;
                        break;
                    }
                    // Dropping both halves closes the TCP stream with no close frame.
                    Some(Outgoing::Drop) | None => break,
                },
            }
        }
    }
    fake.mutate(|st| st.gateway.closed(conn));
}

fn token_ok(info: &ServerInfo, d: &Value) -> bool {
    let t = d["token"].as_str().unwrap_or("");
    t.strip_prefix("Bot ").unwrap_or(t) == info.token
}

/// Handle one client frame. Runs under the state lock.
pub(crate) fn on_frame(st: &mut crate::State, info: &ServerInfo, conn: u64, frame: Value) {
    let gw = &mut st.gateway;
    match frame["op"].as_u64() {
        Some(1) => {
            gw.heartbeats += 1;
            gw.send(conn, json!({"op": 11, "d": null, "s": null, "t": null}));
        }
        Some(2) => {
            let d = &frame["d"];
            if !token_ok(info, d) {
                gw.close(conn, 4004, "Authentication failed.");
                return;
            }
            if gw.session_of(conn).is_some() {
                gw.close(conn, 4005, "Already authenticated.");
                return;
            }
            gw.last_identify = Some(d.clone());
            gw.identifies += 1;
            gw.next_session += 1;
            let session_id = format!("{:032x}", 0xfa4e_0000_u64 + gw.next_session);
            gw.sessions.insert(
                session_id.clone(),
                Session {
                    seq: 0,
                    log: VecDeque::new(),
                    conn: Some(conn),
                },
            );
            let ready = payloads::ready(&st.world, &session_id, &info.ws_url, info.application_id);
            gw.dispatch_to(&session_id, "READY", ready);
            gw.ready_sent += 1;
            // Guilds arrive after READY, each as a full GUILD_CREATE, as on Discord.
            let creates: Vec<Value> = st
                .world
                .guilds
                .values()
                .filter(|g| g.bot_present && !g.outage)
                .map(|g| payloads::guild_create(&st.world, g))
                .collect();
            for g in creates {
                gw.dispatch_to(&session_id, "GUILD_CREATE", g);
            }
        }
        Some(6) => {
            let d = &frame["d"];
            if !token_ok(info, d) {
                gw.close(conn, 4004, "Authentication failed.");
                return;
            }
            let id = d["session_id"].as_str().unwrap_or("").to_string();
            let from = d["seq"].as_u64().unwrap_or(0);
            let Some(session) = gw.sessions.get_mut(&id) else {
                gw.send(conn, json!({"op": 9, "d": false, "s": null, "t": null}));
                return;
            };
            session.conn = Some(conn);
            let missed: Vec<String> = session
                .log
                .iter()
                .filter(|(s, _)| *s > from)
                .map(|(_, f)| f.clone())
                .collect();
            if let Some(tx) = gw.conns.get(&conn) {
                for f in missed {
                    let _ = tx.send(Outgoing::Frame(f));
                }
            }
            gw.resumes += 1;
            gw.dispatch_to(&id, "RESUMED", json!({"_trace": ["[\"fake-gateway\"]"]}));
        }
        // Presence (3), voice state (4), request guild members (8) and soundboard
        // requests are accepted and ignored: the bot does not depend on their answers.
        Some(3 | 4 | 8 | 31) => {}
        _ => gw.close(conn, 4001, "Unknown opcode."),
    }
}

impl FakeDiscord {
    /// Every dispatch frame of type `event` (e.g. "GUILD_MEMBER_UPDATE") emitted to any
    /// current session, whether or not it has been delivered yet, oldest first.
    pub fn dispatched(&self, event: &str) -> Vec<Value> {
        self.lock().gateway.session_frames(event)
    }

    /// The `d` of the last accepted IDENTIFY (intents, properties, shard, ...).
    pub fn last_identify(&self) -> Option<Value> {
        self.lock().gateway.last_identify()
    }
}
