//! Group commit for the queue's bookkeeping. Workers that want a job, or have finished
//! one, at about the same moment share one statement: a claimer task takes every claim
//! request waiting in its channel and claims that many jobs in one `UPDATE … LIMIT n …
//! FOR UPDATE SKIP LOCKED`; a finisher task writes every waiting outcome in one
//! `UPDATE … FROM unnest(..)`. Round trips per job fall from two to a fraction while
//! nothing else changes: a process never holds more jobs than it has idle workers (so
//! several daemons still share the queue, and a job is never held by a busy worker),
//! each job keeps its own lease, and a worker waits until its outcome is written before
//! it asks for the next job, so a crash repeats at most one job per worker.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::Runtime;
use super::db::{self, Claimed, Finish};

/// A worker's request for a job: answered with one, or `None` when nothing is due.
/// Dropped unanswered when the claim failed (the database may be restarting).
pub type ClaimReply = oneshot::Sender<Option<Claimed>>;

/// A finished job's outcome: answered with whether the worker still held it.
pub struct Outcome {
    pub id: i64,
    pub token: String,
    pub finish: Finish,
    pub reply: oneshot::Sender<Result<bool, String>>,
}

/// The workers' ends of both channels.
#[derive(Clone)]
pub struct Books {
    pub claims: mpsc::UnboundedSender<ClaimReply>,
    pub outcomes: mpsc::UnboundedSender<Outcome>,
}

impl Books {
    /// The oldest due job, `Ok(None)` when none is due, `Err` when the claim failed.
    pub async fn claim(&self) -> Result<Option<Claimed>, ()> {
        let (reply, answer) = oneshot::channel();
        self.claims.send(reply).map_err(drop)?;
        answer.await.map_err(drop)
    }

    /// Writes a held job's outcome; `Ok(false)` when the lease had been lost.
    pub async fn finish(&self, claimed: &Claimed, finish: Finish) -> Result<bool, String> {
        let (reply, answer) = oneshot::channel();
        let outcome = Outcome {
            id: claimed.id,
            token: claimed.token.clone(),
            finish,
            reply,
        };
        self.outcomes
            .send(outcome)
            .map_err(|_| "the finisher has stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the finisher has stopped".to_owned())?
    }
}

/// Starts the claimer and the finisher. Both end once every `Books` clone is dropped,
/// that is after the last worker stopped (its release on shutdown is still written).
pub fn start(rt: &Arc<Runtime>, tasks: &mut tokio::task::JoinSet<()>) -> Books {
    let (claims, claim_rx) = mpsc::unbounded_channel();
    let (outcomes, outcome_rx) = mpsc::unbounded_channel();
    tasks.spawn(claimer(rt.clone(), claim_rx));
    tasks.spawn(finisher(rt.clone(), outcome_rx));
    Books { claims, outcomes }
}

async fn claimer(rt: Arc<Runtime>, mut requests: mpsc::UnboundedReceiver<ClaimReply>) {
    let lease = rt.config.lease_secs as i64;
    let mut round: u64 = 0;
    while let Some(first) = requests.recv().await {
        let mut waiting = vec![first];
        while let Ok(more) = requests.try_recv() {
            waiting.push(more);
        }
        // A worker that stopped waiting (shutdown) must not be handed a job.
        waiting.retain(|w| !w.is_closed());
        if waiting.is_empty() {
            continue;
        }
        round += 1;
        // One token per statement: unique, so a lease is renewed and finished only by
        // the claim that holds it.
        let token = format!("{}-{round}", rt.node);
        let jobs = match db::claim(&rt.pool, &token, lease, waiting.len()).await {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::warn!(error = %e, "claiming jobs failed; the database may be restarting");
                continue; // Dropping the replies tells the workers.
            }
        };
        let mut jobs = jobs.into_iter();
        for worker in waiting {
            let job = jobs.next();
            if let Err(Some(orphan)) = worker.send(job) {
                release(&rt, orphan).await;
            }
        }
        for orphan in jobs {
            release(&rt, orphan).await;
        }
    }
}

/// A job claimed for a worker that stopped waiting goes straight back to the queue.
async fn release(rt: &Runtime, claimed: Claimed) {
    let finish = super::released();
    let result = async {
        let mut conn = rt.pool.acquire().await?;
        db::finish(&mut conn, claimed.id, &claimed.token, &finish).await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(job.id = claimed.id, error = %e, "could not release a job; its lease will expire");
    }
}

async fn finisher(rt: Arc<Runtime>, mut outcomes: mpsc::UnboundedReceiver<Outcome>) {
    while let Some(first) = outcomes.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = outcomes.try_recv() {
            batch.push(more);
        }
        let rows: Vec<(i64, &str, &Finish)> = batch
            .iter()
            .map(|o| (o.id, o.token.as_str(), &o.finish))
            .collect();
        let written = async {
            let mut conn = rt.pool.acquire().await?;
            db::finish_many(&mut conn, &rows).await
        }
        .await
        .map_err(|e| e.to_string());
        for outcome in batch {
            let held = written.as_ref().map(|ids| ids.contains(&outcome.id));
            let _ = outcome.reply.send(held.map_err(Clone::clone));
        }
    }
}
