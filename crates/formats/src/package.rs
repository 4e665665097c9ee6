//! Which package a client launched an MCP server from, and which version.
//!
//! `serverInfo.version` is whatever the server's code says; postmark-mcp
//! hard-coded "1.0.0" in every release, so a rug pull can answer `initialize`
//! identically before and after. What moved was the npm package version in
//! the launch command (`npx -y postmark-mcp@1.0.16`), or nothing at all when
//! the launch was unpinned (`npx -y postmark-mcp`, `@latest`). This module
//! reads that from a launch command and its arguments.

/// A package launch: `npx -y postmark-mcp@1.0.16` → manager `npx`, name
/// `postmark-mcp`, spec `postmark-mcp@1.0.16`, version `1.0.16`, pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub manager: String,
    pub name: String,
    pub spec: String,
    /// Exact version requested; None when unpinned.
    pub version: Option<String>,
    pub pinned: bool,
}

fn basename(cmd: &str) -> &str {
    let b = cmd.rsplit(['/', '\\']).next().unwrap_or(cmd);
    b.strip_suffix(".cmd").or_else(|| b.strip_suffix(".exe")).unwrap_or(b)
}

fn is_exact_version(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or(v);
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `@scope/name@1.2.3`, `name@latest`, `name` → (name, requested version text).
fn split_npm(spec: &str) -> (String, Option<String>) {
    let search_from = usize::from(spec.starts_with('@'));
    match spec[search_from..].rfind('@') {
        Some(i) => {
            let at = i + search_from;
            (spec[..at].to_string(), Some(spec[at + 1..].to_string()))
        }
        None => (spec.to_string(), None),
    }
}

/// `name==1.2.3`, `name[extra]==1.2.3`, `name@1.2.3`, `name>=1` → (name, exact version text or other).
fn split_python(spec: &str) -> (String, Option<String>) {
    for op in ["===", "==", "@", ">=", "<=", "~=", "!=", ">", "<"] {
        if let Some((n, v)) = spec.split_once(op) {
            let v = if op == "==" || op == "===" || op == "@" { v.trim().to_string() } else { format!("{op}{v}") };
            return (n.split('[').next().unwrap_or(n).trim().to_string(), Some(v));
        }
    }
    (spec.split('[').next().unwrap_or(spec).to_string(), None)
}

/// npm flags of npx/bunx/dlx that take a value.
const NPM_VALUE_FLAGS: [&str; 4] = ["--package", "-p", "--registry", "--cache"];
const PY_VALUE_FLAGS: [&str; 6] = ["--from", "--with", "--python", "-p", "--index-url", "--spec"];

/// The package a launch ran, if the command is a package runner.
pub fn package_of(command: &str, args: &[String]) -> Option<Package> {
    let cmd = basename(command);
    let (manager, rest, python) = match cmd {
        "npx" | "bunx" | "pnpx" => (cmd.to_string(), args, false),
        "pnpm" | "yarn" | "bun" if args.first().is_some_and(|a| a == "dlx" || a == "x") => (format!("{cmd} {}", args[0]), &args[1..], false),
        "npm" if args.first().is_some_and(|a| a == "exec" || a == "x") => (format!("npm {}", args[0]), &args[1..], false),
        "uvx" => (cmd.to_string(), args, true),
        "uv" if args.len() >= 2 && args[0] == "tool" && args[1] == "run" => ("uv tool run".to_string(), &args[2..], true),
        "pipx" if args.first().is_some_and(|a| a == "run") => ("pipx run".to_string(), &args[1..], true),
        _ => return None,
    };
    let value_flags: &[&str] = if python { &PY_VALUE_FLAGS } else { &NPM_VALUE_FLAGS };
    let explicit = if python { ["--from", "--spec"] } else { ["--package", "-p"] };
    let mut spec = None;
    let mut i = 0;
    while i < rest.len() {
        let a = rest[i].as_str();
        if let Some((flag, value)) = a.split_once('=').filter(|_| a.starts_with('-')) {
            if explicit.contains(&flag) {
                spec = Some(value.to_string());
                break;
            }
            i += 1;
            continue;
        }
        if explicit.contains(&a) {
            spec = rest.get(i + 1).cloned();
            break;
        }
        if value_flags.contains(&a) {
            i += 2;
            continue;
        }
        if a == "--" {
            spec = rest.get(i + 1).cloned();
            break;
        }
        if a.starts_with('-') {
            i += 1;
            continue;
        }
        spec = Some(a.to_string());
        break;
    }
    let spec = spec.filter(|s| !s.is_empty())?;
    let (name, requested) = if python { split_python(&spec) } else { split_npm(&spec) };
    let version = requested.filter(|v| is_exact_version(v));
    Some(Package { manager, name, pinned: version.is_some(), version, spec })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(cmd: &str, args: &[&str]) -> Option<Package> {
        package_of(cmd, &args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn npm_runners() {
        let x = p("/usr/local/bin/npx", &["-y", "postmark-mcp@1.0.16"]).unwrap();
        assert_eq!((x.manager.as_str(), x.name.as_str(), x.version.as_deref(), x.pinned), ("npx", "postmark-mcp", Some("1.0.16"), true));
        let x = p("npx", &["-y", "postmark-mcp"]).unwrap();
        assert_eq!((x.version, x.pinned), (None, false));
        let x = p("/usr/local/bin/npx", &["mcp-remote@latest", "http://localhost:8081/mcp"]).unwrap();
        assert_eq!((x.name.as_str(), x.spec.as_str(), x.pinned), ("mcp-remote", "mcp-remote@latest", false));
        let x = p("npx", &["-y", "@azure/mcp@latest", "server", "start"]).unwrap();
        assert_eq!((x.name.as_str(), x.pinned), ("@azure/mcp", false));
        let x = p("npx", &["-y", "@modelcontextprotocol/server-filesystem@2025.1.14"]).unwrap();
        assert_eq!(x.name, "@modelcontextprotocol/server-filesystem");
        assert_eq!(x.version.as_deref(), Some("2025.1.14"), "calendar versions with three numeric parts are exact");
        let x = p("npx", &["-y", "--package", "ai-task-manager", "task-manager-mcp"]).unwrap();
        assert_eq!((x.name.as_str(), x.pinned), ("ai-task-manager", false));
        let x = p("C:\\Program Files\\nodejs\\npx.cmd", &["@agentdeskai/browser-tools-mcp@1.0.11"]).unwrap();
        assert_eq!(x.version.as_deref(), Some("1.0.11"));
        let x = p("pnpm", &["dlx", "some-mcp@2.0.0-beta.1"]).unwrap();
        assert_eq!((x.manager.as_str(), x.version.as_deref()), ("pnpm dlx", Some("2.0.0-beta.1")));
    }

    #[test]
    fn python_runners_and_others() {
        let x = p("uvx", &["mcp-server-fetch==0.6.2"]).unwrap();
        assert_eq!((x.name.as_str(), x.version.as_deref()), ("mcp-server-fetch", Some("0.6.2")));
        let x = p("uvx", &["--from", "git+https://x/y", "tool"]).unwrap();
        assert!(!x.pinned);
        let x = p("uv", &["tool", "run", "mcp-server-git@1.2.3"]).unwrap();
        assert_eq!(x.version.as_deref(), Some("1.2.3"));
        assert!(p("/Users/x/.local/bin/uv", &["--directory", "/p", "run", "weather.py"]).is_none());
        assert!(p("node", &["/srv/index.js"]).is_none());
        assert!(p("npx", &["-y"]).is_none());
    }
}
