//! Reading run ids from Delta commit infos, and the one-time recovery of a
//! lake written before `_lake/` existed (its runs were marked by their
//! `_ingest_log` rows alone).

use std::collections::HashSet;

use deltalake::datafusion::prelude::{col, lit};
use futures::StreamExt;
use mcpf_schema::Table;

use crate::store::{run_properties, RUN_ID_KEY};
use crate::{Lake, Result};

/// Run ids of the commits of `t` after version `after`.
pub async fn runs_after(lake: &Lake, t: Table, after: u64) -> Result<Vec<String>> {
    let Some(table) = lake.store().load(t, None).await.map_err(|e| lake.lake_err(e))? else { return Ok(vec![]) };
    let latest = table.version().unwrap_or(0);
    let store = table.log_store();
    let mut ids = Vec::new();
    for v in after + 1..=latest {
        let Some(bytes) = store.read_commit_entry(v).await.map_err(|e| lake.lake_err(e))? else { continue };
        for line in bytes.split(|b| *b == b'\n') {
            let Ok(action) = serde_json::from_slice::<serde_json::Value>(line) else { continue };
            if let Some(id) = action.pointer(&format!("/commitInfo/{RUN_ID_KEY}")).and_then(|v| v.as_str()) {
                if !ids.iter().any(|x| x == id) {
                    ids.push(id.to_string());
                }
            }
        }
    }
    if ids.is_empty() {
        ids.push("(unnamed)".into());
    }
    Ok(ids)
}

/// A lake from before published snapshots: delete rows of runs that
/// committed data but never their `_ingest_log` rows. Runs once, with the
/// writers' lock held, before the lake's first snapshot is published.
pub async fn recover(lake: &Lake) -> Result<Vec<String>> {
    let mut committed = HashSet::new();
    for b in lake.query_ingest_records("SELECT DISTINCT ingest_id FROM l").await? {
        let a = crate::utf8_column(&b, 0).map_err(|e| lake.lake_err(e))?;
        committed.extend(a.iter().flatten().map(str::to_string));
    }
    let mut recovered = Vec::new();
    for t in Table::ALL {
        if t == Table::IngestLog {
            continue;
        }
        let Some(mut table) = lake.store().load(t, None).await.map_err(|e| lake.lake_err(e))? else { continue };
        let mut orphans = HashSet::new();
        {
            let mut history = table.history(None);
            while let Some(ci) = history.next().await {
                let ci = ci.map_err(|e| lake.lake_err(e))?;
                if let Some(id) = ci.info.get(RUN_ID_KEY).and_then(|v| v.as_str()) {
                    if !committed.contains(id) && id != "recover" {
                        orphans.insert(id.to_string());
                    }
                }
            }
        }
        for id in orphans {
            let (t2, _) = table
                .delete()
                .with_predicate(col("ingest_id").eq(lit(id.clone())))
                .with_commit_properties(run_properties("recover"))
                .await
                .map_err(|e| lake.lake_err(format!("recovering {}: {e}", t.name())))?;
            table = t2;
            recovered.push(format!("{}: removed rows of interrupted ingest {id}", t.name()));
        }
    }
    Ok(recovered)
}
