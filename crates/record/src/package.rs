//! Which package version a launch really ran.
//!
//! The command line says what was asked (`npx -y postmark-mcp@1.0.16`, or
//! an unpinned `npx -y postmark-mcp`). What ran is on disk: npx installs
//! into `~/.npm/_npx/<hash>/node_modules/<name>/package.json`, uvx into a
//! cache environment's `site-packages/<name>-<version>.dist-info`. The
//! server's processes name those folders on their command lines, so the
//! recorder reads the process tree under the server (Linux `/proc`) and
//! takes the version from the metadata file it finds there.

use std::path::{Path, PathBuf};

use mcpf_formats::package::{package_of, Package};
use serde_json::{json, Value};

/// The package a launch asked for, as recorded in the `start` record.
pub fn requested(argv: &[String]) -> Option<Package> {
    let (cmd, args) = argv.split_first()?;
    package_of(cmd, args)
}

pub fn requested_json(p: &Package) -> Value {
    json!({"manager": p.manager, "name": p.name, "spec": p.spec, "requested_version": p.version, "pinned": p.pinned})
}

/// A version found in a package manager's metadata on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub name: String,
    pub version: String,
    /// The metadata file it was read from.
    pub from: PathBuf,
}

/// Processes under `pid` (itself included), breadth first, at most 64.
#[cfg(target_os = "linux")]
fn process_tree(pid: u32) -> Vec<u32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() && out.len() < 64 {
        let p = out[i];
        i += 1;
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else { continue };
        for t in tasks.flatten() {
            if let Ok(children) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
            }
        }
    }
    out.truncate(64);
    out
}

#[cfg(not(target_os = "linux"))]
fn process_tree(pid: u32) -> Vec<u32> {
    vec![pid]
}

fn command_line(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline")).map(|b| b.split(|c| *c == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect()).unwrap_or_default()
}

/// The version of `package` the processes under `pid` run, if their
/// command lines lead to its metadata.
pub fn resolve(pid: u32, package: &Package) -> Option<Resolved> {
    let python = package.manager.contains("uv") || package.manager.contains("pipx");
    for p in process_tree(pid) {
        for arg in command_line(p) {
            let path = Path::new(&arg);
            if !path.is_absolute() {
                continue;
            }
            let found = if python { python_metadata(path, &package.name) } else { npm_metadata(path, &package.name) };
            if found.is_some() {
                return found;
            }
        }
    }
    None
}

/// Walk up from a path inside `node_modules` to `node_modules/<name>/package.json`.
fn npm_metadata(path: &Path, name: &str) -> Option<Resolved> {
    for dir in path.ancestors().take(12) {
        if dir.file_name().is_some_and(|n| n == "node_modules") {
            let file = dir.join(name).join("package.json");
            let text = std::fs::read_to_string(&file).ok().filter(|t| t.len() < 1 << 20)?;
            let v: Value = serde_json::from_str(&text).ok()?;
            if v.get("name").and_then(Value::as_str) != Some(name) {
                return None;
            }
            return Some(Resolved { name: name.to_string(), version: v.get("version")?.as_str()?.to_string(), from: file });
        }
    }
    None
}

/// From an environment's `bin/…` or `lib/…/site-packages`, find
/// `<name>-<version>.dist-info` (names compared as PEP 503 normalizes them).
fn python_metadata(path: &Path, name: &str) -> Option<Resolved> {
    let norm = |s: &str| s.to_ascii_lowercase().replace(['-', '.'], "_");
    let want = norm(name);
    for env in path.ancestors().take(8) {
        let Ok(lib) = std::fs::read_dir(env.join("lib")) else { continue };
        for py in lib.flatten() {
            let Ok(entries) = std::fs::read_dir(py.path().join("site-packages")) else { continue };
            for e in entries.flatten() {
                let file = e.file_name().to_string_lossy().into_owned();
                let Some(stem) = file.strip_suffix(".dist-info") else { continue };
                let Some((n, v)) = stem.rsplit_once('-') else { continue };
                if norm(n) == want {
                    return Some(Resolved { name: name.to_string(), version: v.to_string(), from: e.path().join("METADATA") });
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npm_and_python_metadata_are_found_from_a_path_inside_them() {
        let d = tempfile::tempdir().unwrap();
        let pkg = d.path().join("_npx/ab12/node_modules/postmark-mcp");
        std::fs::create_dir_all(pkg.join("dist")).unwrap();
        std::fs::write(pkg.join("package.json"), r#"{"name":"postmark-mcp","version":"1.0.16"}"#).unwrap();
        let r = npm_metadata(&pkg.join("dist/index.js"), "postmark-mcp").unwrap();
        assert_eq!(r.version, "1.0.16");
        assert!(npm_metadata(&pkg.join("dist/index.js"), "other").is_none());
        let site = d.path().join("uv/archive-v0/x/lib/python3.12/site-packages");
        std::fs::create_dir_all(site.join("mcp_server_fetch-2025.4.7.dist-info")).unwrap();
        let r = python_metadata(&d.path().join("uv/archive-v0/x/bin/mcp-server-fetch"), "mcp-server-fetch").unwrap();
        assert_eq!(r.version, "2025.4.7");
    }
}
