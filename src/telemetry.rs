//! Logging and metrics set-up. Logs go to stderr through `tracing`; metrics are kept
//! by one process-wide Prometheus recorder and rendered by `GET /metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets in seconds: from a cache hit to a slow Discord round trip.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the global tracing subscriber. `RUST_LOG` wins over the configured filter.
pub fn init_logging(config: &LogConfig) {
    let mut filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.filter));
    // async-stripe logs every event its typed parser rejects (any older API version) as
    // an error, although guildops reads those itself and logs the outcome once.
    if let Ok(quiet) = "stripe_webhook=off".parse() {
        filter = filter.add_directive(quiet);
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// The process-wide metrics recorder, installed on first use (tests run several
/// daemons in one process; they share it).
pub fn metrics() -> &'static PrometheusHandle {
    RECORDER.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .map(|b| b.build_recorder());
        match recorder {
            Ok(recorder) => {
                let handle = recorder.handle();
                if metrics::set_global_recorder(recorder).is_err() {
                    tracing::warn!(
                        "a metrics recorder was already installed; /metrics will be empty"
                    );
                }
                handle
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics disabled");
                PrometheusBuilder::new().build_recorder().handle()
            }
        }
    })
}
