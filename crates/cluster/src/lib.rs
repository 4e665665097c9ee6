//! Detection on a Ballista cluster (`--engine ballista://HOST:PORT`).
//!
//! Three roles, one binary (`mcp-forensics cluster scheduler|executor`, and
//! the client inside every reading command):
//! - the **client** lists the published files of every lake table
//!   ([`table::LakeTable`]) and sends the plans of the rules, unchanged SQL,
//!   to the scheduler ([`BallistaEngine`]);
//! - the **scheduler** decodes them with the same codec ([`codec`]), plans
//!   them into stages, and hands the stages to the executors;
//! - the **executors** run standard DataFusion Parquet scans, joins and
//!   aggregates, reading the files from the object store (or the shared
//!   folder) with the credentials of their own environment ([`stores`]).
//!
//! The lake's rules, parameters and lists are the same as on the local
//! engine; the tests compare the findings row by row.

pub mod codec;
pub mod process;
pub mod stores;
pub mod table;

use std::sync::Arc;

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use mcpf_lake::{Lake, LakeError, QueryEngine, RemoteExecution};

/// The schemes `--engine` takes.
pub const ENGINE_SCHEMES: &[&str] = &["ballista", "df"];

/// A Ballista scheduler to run a lake's queries on.
#[derive(Debug, Clone)]
pub struct BallistaEngine {
    host: String,
    port: u16,
}

impl BallistaEngine {
    /// Read `ballista://HOST:PORT` (or Ballista's own `df://HOST:PORT`).
    pub fn parse(text: &str) -> Result<BallistaEngine, String> {
        let hint = "give the scheduler as ballista://HOST:PORT (the port `mcp-forensics cluster scheduler` listens on, 50050 by default)";
        let (scheme, rest) = text.split_once("://").ok_or_else(|| format!("{text}: not an engine URL; {hint}"))?;
        if !ENGINE_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
            return Err(format!("{text}: unknown engine {scheme}://; {hint}"));
        }
        let rest = rest.trim_end_matches('/');
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| format!("{text}: no port; {hint}"))?;
        let port: u16 = port.parse().map_err(|_| format!("{text}: the port is not a number; {hint}"))?;
        if host.is_empty() || host.contains('/') {
            return Err(format!("{text}: no host; {hint}"));
        }
        Ok(BallistaEngine { host: host.to_string(), port })
    }

    /// The scheduler's host and port.
    pub fn address(&self) -> (String, u16) {
        (self.host.clone(), self.port)
    }

    fn url(&self) -> String {
        format!("df://{}:{}", self.host, self.port)
    }

    /// A client session whose queries run on the cluster. Fails at once,
    /// with what to do, when no scheduler answers at the address (Ballista
    /// itself would only fail at the first query, deep in its error text).
    pub async fn context(&self) -> Result<SessionContext, String> {
        let reachable = tokio::time::timeout(std::time::Duration::from_secs(10), tokio::net::TcpStream::connect((self.host.as_str(), self.port))).await;
        if !matches!(reachable, Ok(Ok(_))) {
            let why = match reachable {
                Ok(Err(e)) => e.to_string(),
                _ => "no answer within 10 s".into(),
            };
            return Err(format!("cannot reach the Ballista scheduler at {} ({why}); start one with: mcp-forensics cluster scheduler --bind {}:{}", self.name(), self.host, self.port));
        }
        let mut config = SessionConfig::new_with_ballista().with_ballista_logical_extension_codec(Arc::new(codec::LakeCodec::default())).set_bool("datafusion.execution.parquet.enable_page_index", false)
            // Dynamic filters are shared state between operators of one
            // process; a stage boundary splits them (a TopK below a shuffle
            // sees no emitter), so plans for the cluster go without them.
            .set_bool("datafusion.optimizer.enable_dynamic_filter_pushdown", false)
            // Ballista 55's adaptive planner re-plans stages while their tasks
            // run; a re-planned stage reports another operator count than it
            // was created with, the scheduler rejects the task's status and
            // the job never ends (seen on the catalogue's joins). The static
            // distributed planner runs every rule.
            .with_ballista_adaptive_query_planner(false);
        if let Some(n) = mcpf_lake::threads() {
            config = config.with_target_partitions(n);
        }
        let config = config.with_extension(Arc::new(RemoteExecution));
        let state = SessionStateBuilder::new().with_config(config).with_default_features().build();
        SessionContext::remote_with_state(&self.url(), state).await.map_err(|e| format!("cannot reach the Ballista scheduler at {}: {e}; start one with: mcp-forensics cluster scheduler --bind {}:{}", self.name(), self.host, self.port))
    }
}

impl QueryEngine for BallistaEngine {
    fn session<'a>(&'a self, lake: &'a Lake) -> futures::future::BoxFuture<'a, mcpf_lake::Result<SessionContext>> {
        Box::pin(async move {
            let lake_err = |message: String| LakeError::Lake { path: lake.root().to_path_buf(), message };
            let ctx = self.context().await.map_err(lake_err)?;
            for (t, table) in lake.published_tables().await? {
                let provider = table::LakeTable::from_delta(t.name(), &table).await.map_err(|e| lake_err(format!("listing the files of {}: {e}", t.name())))?;
                ctx.register_table(t.name(), Arc::new(provider)).map_err(|e| lake_err(e.to_string()))?;
            }
            Ok(ctx)
        })
    }

    fn name(&self) -> String {
        format!("ballista://{}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_urls() {
        let e = BallistaEngine::parse("ballista://127.0.0.1:50050").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.url()), ("127.0.0.1", 50050, "df://127.0.0.1:50050".to_string()));
        assert_eq!(BallistaEngine::parse("df://sched.internal:1/").unwrap().name(), "ballista://sched.internal:1");
        for bad in ["127.0.0.1:50050", "spark://h:1", "ballista://h", "ballista://h:port", "ballista://:1"] {
            let e = BallistaEngine::parse(bad).unwrap_err();
            assert!(e.contains("ballista://HOST:PORT"), "{bad}: {e}");
        }
    }
}
