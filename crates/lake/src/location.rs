//! Where a lake lives: a local folder, or a prefix in an object store
//! (`s3://bucket/prefix`, any S3-compatible store).
//!
//! A remote lake holds the same things as a local one: one Delta table per
//! lake table, and the bookkeeping of `_lake/` as objects. Credentials and
//! the endpoint come from the standard AWS chain (environment variables such
//! as `AWS_ACCESS_KEY_ID`, `AWS_REGION`, `AWS_ENDPOINT_URL`, the profile
//! files), read by delta-rs's S3 support; none of it is ever written to the
//! lake, a log line or an error message (errors name the bucket and key only).

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use deltalake::logstore::object_store::path::Path as ObjectPath;
use deltalake::logstore::object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use deltalake::ObjectStoreError;
use futures::TryStreamExt;
use url::Url;

/// The URL schemes of object stores a lake may live in.
pub const REMOTE_SCHEMES: &[&str] = &["s3", "s3a"];

/// A lake root.
#[derive(Clone, Debug)]
pub enum Location {
    /// A local folder (a plain path or a `file://` URL).
    Local(PathBuf),
    /// A prefix in an object store.
    Remote(Arc<Remote>),
}

impl Location {
    /// Read `--lake` / `Lake(...)`: `s3://bucket/prefix`, `file:///path`, or
    /// a path. Another scheme (`gs://`, `http://`) is refused with the list
    /// of those supported, never taken for a relative folder named `gs:`.
    /// Errors say what is wrong, not which text (the caller names it).
    pub fn parse(text: &str) -> Result<Location, String> {
        let Some((scheme, _)) = text.split_once("://") else { return Ok(Location::Local(PathBuf::from(text))) };
        let scheme = scheme.to_ascii_lowercase();
        if scheme == "file" {
            let url = Url::parse(text).map_err(|e| format!("not a file URL: {e}"))?;
            return url.to_file_path().map(Location::Local).map_err(|_| "not a local file URL".to_string());
        }
        if !REMOTE_SCHEMES.contains(&scheme.as_str()) {
            return Err(format!("lakes can live in a local folder, file://PATH or s3://BUCKET/PREFIX (any S3-compatible store through AWS_ENDPOINT_URL); {scheme}:// is not supported"));
        }
        Remote::open(text).map(|r| Location::Remote(Arc::new(r)))
    }

    /// The local folder, None for a remote lake.
    pub fn local(&self) -> Option<&Path> {
        match self {
            Location::Local(p) => Some(p),
            Location::Remote(_) => None,
        }
    }

    /// How users name it: the path, or the URL.
    pub fn display(&self) -> PathBuf {
        match self {
            Location::Local(p) => p.clone(),
            Location::Remote(r) => PathBuf::from(r.url.as_str().trim_end_matches('/')),
        }
    }
}

/// A lake root in an object store, and a runtime of its own for the few
/// blocking calls (the bookkeeping of `_lake/`, the lease) made outside the
/// lake's async code.
pub struct Remote {
    /// The root, ending in `/`.
    url: Url,
    /// The store, rooted at the lake's prefix (keys are relative to it).
    store: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Remote({})", self.url)
    }
}

/// One runtime per process for the blocking calls: never dropped, so it is
/// never dropped inside an async context either.
fn io_runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name("mcpf-object-io").enable_all().build().expect("the object store's runtime starts"))
}

/// delta-rs's S3 handlers, registered once before the first S3 URL is used.
pub fn register_object_stores() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| deltalake::aws::register_handlers(None));
}

/// The text of an object-store error: what failed and where, without the
/// request details some errors carry (signed URLs, headers).
fn describe(e: &ObjectStoreError) -> String {
    match e {
        ObjectStoreError::NotFound { path, .. } => format!("{path}: not found"),
        ObjectStoreError::PermissionDenied { path, .. } | ObjectStoreError::Unauthenticated { path, .. } => {
            format!("{path}: access denied; check the AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE) and the bucket's policy")
        }
        // A generic error names the store and the cause; the first line
        // is enough, and never holds a credential.
        other => Some(first_line(&other.to_string())).filter(|l| !l.is_empty()).unwrap_or_else(|| "object store error".into()),
    }
}

fn io_err(e: ObjectStoreError) -> io::Error {
    let kind = match e {
        ObjectStoreError::NotFound { .. } => io::ErrorKind::NotFound,
        ObjectStoreError::AlreadyExists { .. } => io::ErrorKind::AlreadyExists,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, describe(&e))
}

/// How a conditional write ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Put {
    /// Written; the new object's ETag.
    Done(Option<String>),
    /// `Create` found the object there already.
    Exists,
    /// `Update` found another version than the one given.
    Changed,
}

impl Remote {
    fn open(text: &str) -> Result<Remote, String> {
        register_object_stores();
        let mut url = Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err("no bucket; give s3://BUCKET/PREFIX".to_string());
        }
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        let no_options: [(String, String); 0] = [];
        let store = deltalake::logstore::store_for(&url, no_options).map_err(|e| first_line(&e.to_string()))?;
        Ok(Remote { url, store })
    }

    /// The URL of a key under the root.
    pub fn url_of(&self, key: &str) -> Url {
        self.url.join(key).expect("a key joins the root URL")
    }

    /// Run an object-store future to its end from synchronous code, also
    /// when called inside another runtime (the lake's).
    pub fn run<F>(&self, f: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        io_runtime().spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv().expect("the object store's runtime runs every call to its end")
    }

    /// The object's bytes and ETag; None when absent.
    pub fn get(&self, key: &str) -> io::Result<Option<(Vec<u8>, Option<String>)>> {
        let (store, path) = (self.store.clone(), ObjectPath::from(key));
        self.run(async move {
            match store.get(&path).await {
                Ok(r) => {
                    let etag = r.meta.e_tag.clone();
                    let bytes = r.bytes().await.map_err(io_err)?;
                    Ok(Some((bytes.to_vec(), etag)))
                }
                Err(ObjectStoreError::NotFound { .. }) => Ok(None),
                Err(e) => Err(io_err(e)),
            }
        })
    }

    /// Whether the object exists.
    pub fn exists(&self, key: &str) -> io::Result<bool> {
        let (store, path) = (self.store.clone(), ObjectPath::from(key));
        self.run(async move {
            match store.head(&path).await {
                Ok(_) => Ok(true),
                Err(ObjectStoreError::NotFound { .. }) => Ok(false),
                Err(e) => Err(io_err(e)),
            }
        })
    }

    /// Write the object: `Overwrite`, `Create` (only if absent) or `Update`
    /// (only if it still has the ETag given). Atomic in every mode.
    pub fn put(&self, key: &str, bytes: Vec<u8>, mode: PutMode) -> io::Result<Put> {
        let (store, path) = (self.store.clone(), ObjectPath::from(key));
        self.run(async move {
            let opts = PutOptions { mode, ..Default::default() };
            match store.put_opts(&path, PutPayload::from(bytes), opts).await {
                Ok(r) => Ok(Put::Done(r.e_tag)),
                Err(ObjectStoreError::AlreadyExists { .. }) => Ok(Put::Exists),
                Err(ObjectStoreError::Precondition { .. }) => Ok(Put::Changed),
                Err(e) => Err(io_err(e)),
            }
        })
    }

    /// [`Remote::put`] only if the object still has `etag`.
    pub fn put_if(&self, key: &str, bytes: Vec<u8>, etag: Option<String>) -> io::Result<Put> {
        self.put(key, bytes, PutMode::Update(UpdateVersion { e_tag: etag, version: None }))
    }

    /// Remove the object (absent is fine).
    pub fn delete(&self, key: &str) -> io::Result<()> {
        let (store, path) = (self.store.clone(), ObjectPath::from(key));
        self.run(async move {
            match store.delete(&path).await {
                Ok(()) | Err(ObjectStoreError::NotFound { .. }) => Ok(()),
                Err(e) => Err(io_err(e)),
            }
        })
    }

    /// Every key under `prefix` (recursively), relative to the root, with
    /// its size.
    pub fn list(&self, prefix: &str) -> io::Result<Vec<(String, u64)>> {
        let (store, path) = (self.store.clone(), ObjectPath::from(prefix));
        self.run(async move {
            let metas: Vec<_> = store.list(Some(&path)).try_collect().await.map_err(io_err)?;
            Ok(metas.into_iter().map(|m| (m.location.to_string(), m.size)).collect())
        })
    }

}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_file_urls_and_unsupported_schemes() {
        assert_eq!(Location::parse("lake").unwrap().local(), Some(Path::new("lake")));
        assert_eq!(Location::parse("/tmp/x").unwrap().local(), Some(Path::new("/tmp/x")));
        assert_eq!(Location::parse("file:///tmp/x%20y").unwrap().local(), Some(Path::new("/tmp/x y")));
        let e = Location::parse("gs://b/p").unwrap_err();
        assert!(e.contains("gs:// is not supported") && e.contains("s3://BUCKET/PREFIX"), "{e}");
        assert!(Location::parse("s3:///nobucket").unwrap_err().contains("no bucket"));
    }
}
