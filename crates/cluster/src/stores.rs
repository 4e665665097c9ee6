//! The object stores of a cluster process: `file://` as in any DataFusion
//! session, and every `s3://BUCKET` a plan names, made on first use from
//! the process's own AWS environment (delta-rs's S3 support: the variables,
//! the profile files, `AWS_ENDPOINT_URL` for S3-compatible stores). Plans
//! carry no credential; each executor reads with its own.

use std::sync::Arc;

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use deltalake::logstore::object_store::ObjectStore;
use url::Url;

/// [`DefaultObjectStoreRegistry`], plus S3 buckets on demand.
#[derive(Debug, Default)]
pub struct LakeStores {
    known: DefaultObjectStoreRegistry,
}

impl ObjectStoreRegistry for LakeStores {
    fn register_store(&self, url: &Url, store: Arc<dyn ObjectStore>) -> Option<Arc<dyn ObjectStore>> {
        self.known.register_store(url, store)
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        if let Ok(store) = self.known.get_store(url) {
            return Ok(store);
        }
        if !mcpf_lake::location::REMOTE_SCHEMES.contains(&url.scheme()) {
            return Err(DataFusionError::Configuration(format!("no object store for {}://: a cluster reads lakes in local folders and s3:// buckets", url.scheme())));
        }
        let bucket = url.host_str().ok_or_else(|| DataFusionError::Configuration(format!("{url}: no bucket")))?;
        mcpf_lake::location::register_object_stores();
        let root = Url::parse(&format!("{}://{bucket}/", url.scheme())).map_err(|e| DataFusionError::Configuration(e.to_string()))?;
        let no_options: [(String, String); 0] = [];
        let store: Arc<dyn ObjectStore> = deltalake::logstore::store_for(&root, no_options).map_err(|e| DataFusionError::External(Box::new(e)))?;
        self.known.register_store(&root, store.clone());
        Ok(store)
    }
}

/// A runtime whose object stores are [`LakeStores`].
pub fn runtime_env() -> Result<Arc<RuntimeEnv>> {
    Ok(Arc::new(RuntimeEnvBuilder::new().with_object_store_registry(Arc::new(LakeStores::default())).build()?))
}
