//! SQL for the audit log: the plain insert of a change's entry, the sealer's batch
//! (lock the chain head, read the unsealed entries, write their seals), the
//! personal-data side table, and the reads that verification, `/audit recent` and
//! export need.

use chrono::{DateTime, Utc};
use futures::Stream;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::chain::GENESIS;
use super::{Entry, Personal};

macro_rules! entry_select {
    () => {
        "select e.id, e.community_id, e.seq, e.occurred_at, e.actor, e.action, e.target,
                e.before, e.after, e.correlation_id, e.personal_digest, e.hash,
                p.salt, p.reason, p.names
           from audit_log e left join audit_personal_data p on p.entry_id = e.id "
    };
}

/// An entry as its change's transaction writes it: not yet sealed (no seq, no hash).
pub struct NewRow<'a> {
    pub id: Uuid,
    pub community_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub before: Option<&'a Value>,
    pub after: Option<&'a Value>,
    pub correlation_id: Option<&'a str>,
    pub personal_digest: Option<&'a [u8]>,
}

/// Inserts an unsealed entry: a plain insert that waits on no lock, so changes of one
/// community never queue behind each other for the audit log's sake.
pub async fn insert(conn: &mut PgConnection, row: &NewRow<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into audit_log (id, community_id, occurred_at, actor, action, target,
                                before, after, correlation_id, personal_digest)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(row.id)
    .bind(row.community_id)
    .bind(row.occurred_at)
    .bind(row.actor)
    .bind(row.action)
    .bind(row.target)
    .bind(row.before.map(Json))
    .bind(row.after.map(Json))
    .bind(row.correlation_id)
    .bind(row.personal_digest)
    .execute(conn)
    .await?;
    Ok(())
}

/// Communities with committed entries awaiting their seal (the sealer's scope).
pub async fn pending_communities(conn: &mut PgConnection) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("select distinct community_id from audit_log where seq is null")
        .fetch_all(conn)
        .await
}

/// Locks the community's chain head until commit (creating it at the genesis if the
/// chain is new), so one sealer at a time extends a chain.
pub async fn lock_head(
    conn: &mut PgConnection,
    community_id: Uuid,
) -> Result<(i64, Vec<u8>), sqlx::Error> {
    sqlx::query(
        "insert into audit_chain_heads (community_id, last_seq, last_hash)
         values ($1, 0, $2) on conflict (community_id) do nothing",
    )
    .bind(community_id)
    .bind(GENESIS.as_slice())
    .execute(&mut *conn)
    .await?;
    let row = sqlx::query(
        "select last_seq, last_hash from audit_chain_heads where community_id = $1 for update",
    )
    .bind(community_id)
    .fetch_one(conn)
    .await?;
    Ok((row.try_get("last_seq")?, row.try_get("last_hash")?))
}

/// The oldest committed entries awaiting their seal, in the order they will take.
pub async fn unsealed(
    conn: &mut PgConnection,
    community_id: Uuid,
    limit: i64,
) -> Result<Vec<Entry>, sqlx::Error> {
    let sql = concat!(
        entry_select!(),
        "where e.community_id = $1 and e.seq is null order by e.id limit $2"
    );
    first_entries(conn, sql, community_id, limit).await
}

/// The first `limit` entries of `community_id` that `sql` (an `entry_select!` query
/// taking the community and the limit) returns.
async fn first_entries(
    conn: &mut PgConnection,
    sql: &'static str,
    community_id: Uuid,
    limit: i64,
) -> Result<Vec<Entry>, sqlx::Error> {
    let rows = sqlx::query(sql)
        .bind(community_id)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(entry_from_row).collect()
}

/// Writes the seals of a batch (`ids[i]` gets `seqs[i]`, `hashes[i]`) and moves the
/// head to the last; the count of entries sealed. `ids` are ascending (the order
/// [`unsealed`] read them in): bounding the ids to the batch's range lets the planner
/// reach exactly the batch's rows, however large the table or the backlog, where a
/// bare join on `unnest` was planned as a scan of every row of the community.
pub async fn seal(
    conn: &mut PgConnection,
    community_id: Uuid,
    ids: &[Uuid],
    seqs: &[i64],
    hashes: &[Vec<u8>],
) -> Result<u64, sqlx::Error> {
    let sealed = sqlx::query(
        "update audit_log e set seq = s.seq, hash = s.hash
           from unnest($2::uuid[], $3::int8[], $4::bytea[]) as s (id, seq, hash)
          where e.community_id = $1 and e.seq is null and e.id = s.id
            and e.id between $5 and $6",
    )
    .bind(community_id)
    .bind(ids)
    .bind(seqs)
    .bind(hashes)
    .bind(ids.first())
    .bind(ids.last())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if let (Some(seq), Some(hash)) = (seqs.last(), hashes.last()) {
        sqlx::query(
            "update audit_chain_heads set last_seq = $2, last_hash = $3, updated_at = now()
              where community_id = $1",
        )
        .bind(community_id)
        .bind(seq)
        .bind(hash)
        .execute(conn)
        .await?;
    }
    Ok(sealed)
}

/// Entries committed but not sealed yet.
pub async fn pending_count(
    conn: &mut PgConnection,
    community_id: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select count(*) from audit_log where community_id = $1 and seq is null")
        .bind(community_id)
        .fetch_one(conn)
        .await
}

pub async fn insert_personal(
    conn: &mut PgConnection,
    entry_id: Uuid,
    community_id: Uuid,
    p: &Personal,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into audit_personal_data (entry_id, community_id, salt, reason, names)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(entry_id)
    .bind(community_id)
    .bind(p.salt.as_slice())
    .bind(p.reason.as_deref())
    .bind(&p.names)
    .execute(conn)
    .await?;
    Ok(())
}

/// The erasure path: the one delete the audit tables allow.
pub async fn erase_personal(
    conn: &mut PgConnection,
    community_id: Uuid,
    entry_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "delete from audit_personal_data p using audit_log e
          where p.entry_id = $2 and e.id = p.entry_id and e.community_id = $1",
    )
    .bind(community_id)
    .bind(entry_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Starts a read-only snapshot so the head and the entries are read at one instant,
/// however many appends happen meanwhile.
pub async fn begin_snapshot(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("set transaction isolation level repeatable read, read only")
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn head(
    conn: &mut PgConnection,
    community_id: Uuid,
) -> Result<Option<(i64, Vec<u8>)>, sqlx::Error> {
    let row =
        sqlx::query("select last_seq, last_hash from audit_chain_heads where community_id = $1")
            .bind(community_id)
            .fetch_optional(conn)
            .await?;
    row.map(|r| Ok((r.try_get("last_seq")?, r.try_get("last_hash")?)))
        .transpose()
}

/// Every community, oldest first (needs the directory's cross-community scope).
pub async fn community_ids(conn: &mut PgConnection) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("select id from communities order by created_at, id")
        .fetch_all(conn)
        .await
}

/// One community's sealed entries in chain order, streamed (a chain may be millions
/// long).
pub fn entries<'c>(
    conn: &'c mut PgConnection,
    community_id: Uuid,
) -> impl Stream<Item = Result<Entry, sqlx::Error>> + 'c {
    use futures::StreamExt as _;
    let sql = concat!(
        entry_select!(),
        "where e.community_id = $1 and e.seq is not null order by e.seq"
    );
    sqlx::query(sql)
        .bind(community_id)
        .fetch(conn)
        .map(|row| entry_from_row(&row?))
}

pub async fn recent(
    conn: &mut PgConnection,
    community_id: Uuid,
    limit: i64,
) -> Result<Vec<Entry>, sqlx::Error> {
    let sql = concat!(
        entry_select!(),
        "where e.community_id = $1 order by e.seq desc nulls first, e.id desc limit $2"
    );
    first_entries(conn, sql, community_id, limit).await
}

fn entry_from_row(row: &PgRow) -> Result<Entry, sqlx::Error> {
    let salt: Option<Vec<u8>> = row.try_get("salt")?;
    let personal = salt.map(|salt| -> Result<Personal, sqlx::Error> {
        Ok(Personal {
            salt,
            reason: row.try_get("reason")?,
            names: row.try_get("names")?,
        })
    });
    Ok(Entry {
        id: row.try_get("id")?,
        community_id: row.try_get("community_id")?,
        seq: row.try_get("seq")?,
        occurred_at: row.try_get("occurred_at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        before: row
            .try_get::<Option<Json<Value>>, _>("before")?
            .map(|j| j.0),
        after: row.try_get::<Option<Json<Value>>, _>("after")?.map(|j| j.0),
        correlation_id: row.try_get("correlation_id")?,
        personal_digest: row.try_get("personal_digest")?,
        hash: row.try_get("hash")?,
        personal: personal.transpose()?,
    })
}
