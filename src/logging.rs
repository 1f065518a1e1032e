//! Log set-up: `env_logger` at `info` unless `RUST_LOG` says otherwise, one line per event
//! with a UTC timestamp, on standard error.

use std::io::Write;

use crate::clock::Utc;

/// Installs the logger. `RUST_LOG` (e.g. `debug`, `picam_stream=debug`) overrides the level.
pub fn init() {
    init_with_prefix("");
}

/// Installs the logger with `prefix` before every message (a source's own process
/// says which process speaks).
pub fn init_with_prefix(prefix: &'static str) {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(move |buf, record| {
            writeln!(
                buf,
                "{} {:<5} {prefix}{}",
                Utc::now().rfc3339(),
                record.level(),
                record.args()
            )
        })
        .init();
}
