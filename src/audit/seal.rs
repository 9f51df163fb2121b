//! The sealer: gives committed audit entries their place in their community's hash
//! chain, in order, in batches. One transaction per batch locks the chain head, reads
//! the oldest unsealed entries, links each to the one before, writes the seals and
//! moves the head; so any number of daemons may seal at once and a chain never forks.
//!
//! An entry's seal follows its commit by at most one poll interval plus a batch's
//! work; until then `verify` counts it as pending, never as broken.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Error, chain, db, fields};
use crate::db::tenant::{self, CrossCommunity};

/// Entries sealed per transaction: large enough that a burst seals at tens of
/// thousands per second, small enough that a head is never locked for long.
pub const BATCH: i64 = 1_000;

/// How often an idle sealer looks for new entries. Also the bound on how long a
/// committed entry stays unsealed while the daemon runs.
pub const POLL: Duration = Duration::from_millis(200);

/// Seals every committed entry of `community` that awaits its seal; how many.
#[tracing::instrument(skip(pool))]
pub async fn seal(pool: &sqlx::PgPool, community_id: Uuid) -> Result<u64, Error> {
    let mut total = 0;
    loop {
        let sealed = seal_batch(pool, community_id).await?;
        total += sealed;
        if sealed < BATCH as u64 {
            return Ok(total);
        }
    }
}

/// Seals the pending entries of every community; how many.
pub async fn seal_pending(pool: &sqlx::PgPool) -> Result<u64, Error> {
    let mut tx = tenant::begin_cross_community(pool, CrossCommunity::AuditSealer).await?;
    let communities = db::pending_communities(&mut tx).await?;
    tx.commit().await?;
    let mut total = 0;
    for community_id in communities {
        total += seal(pool, community_id).await?;
    }
    Ok(total)
}

async fn seal_batch(pool: &sqlx::PgPool, community_id: Uuid) -> Result<u64, Error> {
    let mut tx = tenant::begin(pool, community_id).await?;
    let (mut seq, head_hash) = db::lock_head(&mut tx, community_id).await?;
    // A head always holds 32 bytes (a CHECK); anything else is a tampered head,
    // which verify reports, so sealing onto it would only bury the evidence.
    let Ok(mut prev) = <chain::Hash>::try_from(head_hash.as_slice()) else {
        return Err(Error::CorruptHead(community_id));
    };
    let batch = db::unsealed(&mut tx, community_id, BATCH).await?;
    if batch.is_empty() {
        tx.rollback().await?;
        return Ok(0);
    }
    let mut ids = Vec::with_capacity(batch.len());
    let mut seqs = Vec::with_capacity(batch.len());
    let mut hashes = Vec::with_capacity(batch.len());
    for entry in &batch {
        seq += 1;
        prev = chain::link(&prev, seq, &chain::canonical(&fields(entry)));
        ids.push(entry.id);
        seqs.push(seq);
        hashes.push(prev.to_vec());
    }
    let sealed = db::seal(&mut tx, community_id, &ids, &seqs, &hashes).await?;
    if sealed != batch.len() as u64 {
        // Only a writer that skipped the head lock could have sealed them meanwhile;
        // sealing on would chain around its seals.
        tx.rollback().await?;
        return Err(Error::SealedElsewhere(community_id));
    }
    tx.commit().await?;
    Ok(sealed)
}

/// The daemon's sealer: seals whatever is pending, then waits one poll interval,
/// until `stop`. A database outage is logged once when it starts and once when it
/// ends; the entries wait, committed, and are sealed when it is back.
pub async fn run(pool: sqlx::PgPool, stop: CancellationToken) {
    let mut failing = false;
    loop {
        match seal_pending(&pool).await {
            Ok(_) if failing => {
                tracing::info!("audit sealing resumed");
                failing = false;
            }
            Ok(_) => {}
            Err(e) if !failing => {
                tracing::warn!(error = %e, "audit sealing failed; entries wait until it recovers");
                failing = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = stop.cancelled() => return,
        }
    }
}
