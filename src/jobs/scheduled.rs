//! Scheduled work: `Job::Scheduled { name, data }` rows with a future `run_at` (a ban
//! that ends, a grace period that runs out, a reminder). The daemon registers one
//! handler per name when it wires the domains together; this module only dispatches,
//! so the job runtime never depends on a domain.
//!
//! Handlers run at least once (a crash after the handler but before the job is marked
//! done runs it again), so each must be idempotent: decide from the database's current
//! state and enqueue its effects with idempotency keys.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sqlx::PgPool;
use uuid::Uuid;

/// How a handler's run ended when it did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Try again later, with backoff (the database was unreachable, say).
    #[error("{0}")]
    Temporary(String),
    /// Can never succeed as things stand; the job fails with this reason.
    #[error("{0}")]
    Permanent(String),
}

impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        HandlerError::Temporary(e.to_string())
    }
}

/// What a handler is given: the daemon's pool (tenant role; scope each transaction),
/// the job's community and its data.
pub struct Context {
    pub pool: PgPool,
    pub community_id: Option<Uuid>,
    pub data: serde_json::Value,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send>>;
type Handler = Arc<dyn Fn(Context) -> BoxFuture + Send + Sync>;

/// The handlers by name.
#[derive(Clone, Default)]
pub struct Handlers {
    by_name: HashMap<&'static str, Handler>,
}

impl Handlers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` for jobs enqueued as `Job::Scheduled { name, .. }`.
    pub fn register<F, Fut>(&mut self, name: &'static str, handler: F) -> &mut Self
    where
        F: Fn(Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.by_name.insert(
            name,
            Arc::new(move |ctx| Box::pin(handler(ctx)) as BoxFuture),
        );
        self
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.by_name.keys().copied()
    }

    /// Runs the handler for `name`; a name nobody registered (a job written by a newer
    /// version, or a typo) fails for good instead of silently succeeding.
    pub async fn run(&self, name: &str, ctx: Context) -> Result<(), HandlerError> {
        let Some(handler) = self.by_name.get(name) else {
            return Err(HandlerError::Permanent(format!(
                "no handler for scheduled job {name:?} in this version of guildops"
            )));
        };
        handler(ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn ctx() -> Context {
        Context {
            pool: PgPool::connect_lazy("postgres://unused@127.0.0.1:1/none").expect("lazy pool"),
            community_id: None,
            data: serde_json::json!({"n": 2}),
        }
    }

    #[tokio::test]
    async fn runs_the_named_handler_and_refuses_unknown_names() {
        let seen = Arc::new(AtomicUsize::new(0));
        let mut handlers = Handlers::new();
        let counter = seen.clone();
        handlers.register("count", move |ctx| {
            let counter = counter.clone();
            async move {
                let n = ctx.data["n"].as_u64().unwrap_or(0) as usize;
                counter.fetch_add(n, Ordering::SeqCst);
                Ok(())
            }
        });
        handlers.run("count", ctx()).await.expect("runs");
        assert_eq!(seen.load(Ordering::SeqCst), 2);
        let unknown = handlers.run("nope", ctx()).await;
        assert!(matches!(unknown, Err(HandlerError::Permanent(m)) if m.contains("\"nope\"")));
    }
}
