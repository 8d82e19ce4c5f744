//! Logging: human-readable lines by default, JSON with `--log-format json`. Every line logged while
//! serving a request carries that request's span, and with it the `request_id`.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{ConfigError, LogArgs, LogFormat};

/// Sets up logging to standard output (the server), or to standard error for commands whose
/// standard output is their product (`triage probes export`, `triage bench`).
pub fn init(args: &LogArgs, to_stderr: bool) -> Result<(), ConfigError> {
    let filter = EnvFilter::try_new(&args.log_level)
        .map_err(|e| ConfigError(format!("invalid --log-level '{}': {e}", args.log_level)))?;
    let registry = tracing_subscriber::registry().with(filter);
    let writer = tracing_subscriber::fmt::writer::BoxMakeWriter::new(move || -> Box<dyn std::io::Write> {
        if to_stderr { Box::new(std::io::stderr()) } else { Box::new(std::io::stdout()) }
    });
    let result = match args.log_format {
        LogFormat::Text => {
            registry.with(tracing_subscriber::fmt::layer().with_target(false).with_writer(writer)).try_init()
        }
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init(),
    };
    result.map_err(|e| ConfigError(format!("cannot set up logging: {e}")))
}
