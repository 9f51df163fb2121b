//! The door's refusal log: every refused live scan (duplicate, expired, revoked,
//! wrong_event, invalid) is recorded durably before the door is answered, and the
//! refusals that arrive while one batch commits are recorded together, one statement
//! and one commit for all of them (a group commit). A commit of its own for each
//! refusal was half of a refusal's cost (docs/events.md, "Benchmark").
//!
//! One writer task, started by the first refusal, owns the batches (two may commit at
//! once, each on a connection it keeps through a burst); a refusal waits for its
//! batch's commit and fails (the door is told to try again) when that batch
//! fails, so no refusal is ever answered without its record.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::db::{self, RefusedScan};

/// The most refusals one statement records; more wait for the next batch.
pub const MAX_REFUSALS_PER_BATCH: usize = 512;
/// Refusals waiting for the writer before a new one waits to join them.
const QUEUE: usize = 4096;
/// Batches committing at once: while one commits the next gathers, so a refusal waits
/// for at most one commit before its own (measured: one writer 4.2–4.3k refusals/s at
/// 8 clients, two 4.5–4.7k, four 4.1–4.4k).
const WRITERS: usize = 2;
/// How long a writer keeps its connection after the last refusal.
const IDLE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, thiserror::Error)]
pub enum NotRecorded {
    #[error("the batch of refusals could not be recorded: {0}")]
    Batch(Arc<sqlx::Error>),
    #[error("the refusal log's writer has stopped")]
    Stopped,
}

type Done = oneshot::Sender<Result<(), NotRecorded>>;

type Queue = mpsc::Sender<(RefusedScan, Done)>;

pub struct RefusalLog {
    pool: PgPool,
    writer: Mutex<Option<Queue>>,
}

impl RefusalLog {
    pub fn new(pool: PgPool) -> Self {
        RefusalLog {
            pool,
            writer: Mutex::new(None),
        }
    }

    /// Returns once `scan` is committed, with the refusals that arrived beside it.
    pub async fn record(&self, scan: RefusedScan) -> Result<(), NotRecorded> {
        let (done, committed) = oneshot::channel();
        self.writer()
            .send((scan, done))
            .await
            .map_err(|_| NotRecorded::Stopped)?;
        committed.await.map_err(|_| NotRecorded::Stopped)?
    }

    /// The running writer's queue, starting a writer when there is none: the first
    /// refusal starts it, and a writer that ended (its runtime shut down, or it
    /// panicked) is replaced rather than failing every refusal after it.
    fn writer(&self) -> Queue {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        match &*writer {
            Some(queue) if !queue.is_closed() => queue.clone(),
            _ => {
                let (queue, waiting) = mpsc::channel(QUEUE);
                tokio::spawn(write_batches(self.pool.clone(), waiting));
                *writer = Some(queue.clone());
                queue
            }
        }
    }
}

/// Takes whatever has queued up (at least one refusal) and records it in one
/// statement, with up to `WRITERS` batches committing at once, then answers each
/// waiting refusal with its batch's result. Each writer keeps its connection through
/// a burst of refusals (no pool round trip per batch) and gives it back once the door
/// has been quiet for `IDLE`.
async fn write_batches(pool: PgPool, mut queue: mpsc::Receiver<(RefusedScan, Done)>) {
    let mut batch = Vec::with_capacity(MAX_REFUSALS_PER_BATCH);
    let mut idle: Vec<PoolConnection<Postgres>> = Vec::new();
    let mut writing = JoinSet::new();
    loop {
        tokio::select! {
            arrived = queue.recv_many(&mut batch, MAX_REFUSALS_PER_BATCH), if writing.len() < WRITERS => {
                if arrived == 0 {
                    while writing.join_next().await.is_some() {}
                    return;
                }
                let (scans, waiting) = batch.drain(..).unzip();
                writing.spawn(write(pool.clone(), idle.pop(), scans, waiting));
            }
            Some(written) = writing.join_next() => {
                if let Ok(Some(conn)) = written {
                    idle.push(conn);
                }
            }
            () = tokio::time::sleep(IDLE), if writing.is_empty() && !idle.is_empty() => {
                idle.clear();
            }
        }
    }
}

/// One batch, on `conn` or on one from the pool, answered to everyone waiting for it.
/// Gives the connection back for the next batch unless the batch failed on it.
async fn write(
    pool: PgPool,
    conn: Option<PoolConnection<Postgres>>,
    scans: Vec<RefusedScan>,
    waiting: Vec<Done>,
) -> Option<PoolConnection<Postgres>> {
    let (result, kept) = match record(&pool, conn, &scans).await {
        Ok(conn) => (Ok(()), Some(conn)),
        Err(e) => (Err(NotRecorded::Batch(Arc::new(e))), None),
    };
    for done in waiting {
        // A door that stopped waiting (its connection closed) needs no answer.
        let _ = done.send(result.clone());
    }
    kept
}

async fn record(
    pool: &PgPool,
    conn: Option<PoolConnection<Postgres>>,
    scans: &[RefusedScan],
) -> Result<PoolConnection<Postgres>, sqlx::Error> {
    let mut conn = match conn {
        Some(conn) => conn,
        None => pool.acquire().await?,
    };
    db::record_refusals(&mut conn, scans).await?;
    Ok(conn)
}
