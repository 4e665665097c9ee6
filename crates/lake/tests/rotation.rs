//! MTA correlation across rotated files and runs, message-level rows, and
//! content-filter hops, checked against the same log read whole.

use std::path::{Path, PathBuf};

use mcpf_lake::{IngestOptions, Lake, SourceAction};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rows(lake: &Lake, sql: &str) -> Vec<String> {
    lake.block_on(async {
        let ctx = lake.session().await.unwrap();
        let b = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&b).unwrap().to_string();
        text.lines().map(str::to_string).collect()
    })
}

const DELIVERIES: &str = "SELECT queue_id, recipient, status, sender, message_id, client, delivery_kind FROM mail_deliveries ORDER BY queue_id, recipient, status, ts";
/// The latest row of every message (a message open at the end of one run is
/// written again when a later run closes it).
const MESSAGES: &str = "SELECT queue_id, message_id, sender, client, final_state, recipients, delivered FROM (
    SELECT *, row_number() OVER (PARTITION BY message_key ORDER BY last_seen DESC, final_state) AS rn FROM mail_messages) x
  WHERE rn = 1 ORDER BY queue_id, message_id";

fn opts() -> IngestOptions {
    IngestOptions { year: Some(2026), ..Default::default() }
}

/// The bundled Postfix log, cut after a `qmgr … from=` line whose message
/// still has deliveries to come.
fn split_sample() -> (String, String, String) {
    let text = std::fs::read_to_string(repo().join("sample-logs/postfix/mail.log")).unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let cut = lines
        .iter()
        .enumerate()
        .find(|(i, l)| {
            l.contains("postfix/qmgr") && l.contains(": from=<") && {
                let qid = l.split(": ").nth(1).unwrap_or("");
                lines[i + 1..].iter().any(|m| m.contains(&format!("{qid}: to=<")))
            }
        })
        .map(|(i, _)| i + 1)
        .expect("a message with deliveries after its qmgr line");
    (text.clone(), lines[..cut].concat(), lines[cut..].concat())
}

fn ingest(lake: &Lake, paths: &[&Path]) -> mcpf_lake::IngestSummary {
    let paths: Vec<PathBuf> = paths.iter().map(|p| p.to_path_buf()).collect();
    lake.ingest(&paths, &opts()).unwrap()
}

#[test]
fn a_rotated_pair_split_inside_messages_gives_the_rows_of_the_whole_log() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, older, newer) = split_sample();
    let whole_dir = dir.path().join("whole");
    std::fs::create_dir_all(&whole_dir).unwrap();
    std::fs::write(whole_dir.join("mail.log"), &whole).unwrap();
    let reference = Lake::open(dir.path().join("reference")).unwrap();
    ingest(&reference, &[&whole_dir]);
    let want = (rows(&reference, DELIVERIES), rows(&reference, MESSAGES));
    assert!(want.0.len() > 10 && want.1.len() > 5);

    // One run, both files of the rotated set (given newest first).
    let logs = dir.path().join("one-run");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join("mail.log.1"), &older).unwrap();
    std::fs::write(logs.join("mail.log"), &newer).unwrap();
    let one = Lake::open(dir.path().join("one")).unwrap();
    ingest(&one, &[&logs.join("mail.log"), &logs.join("mail.log.1")]);
    assert_eq!(rows(&one, DELIVERIES), want.0, "one run: rows differ from the whole log");
    assert_eq!(rows(&one, MESSAGES), want.1, "one run: messages differ from the whole log");

    // Two runs: the live file, then (after logrotate) the set.
    let live = dir.path().join("live");
    std::fs::create_dir_all(&live).unwrap();
    std::fs::write(live.join("mail.log"), &older).unwrap();
    let two = Lake::open(dir.path().join("two")).unwrap();
    ingest(&two, &[&live]);
    std::fs::rename(live.join("mail.log"), live.join("mail.log.1")).unwrap();
    std::fs::write(live.join("mail.log"), &newer).unwrap();
    let s = ingest(&two, &[&live]);
    assert_eq!(s.sources.iter().filter(|r| r.action == SourceAction::AlreadyIngested).count(), 1, "the rotated file is the one ingested before");
    assert_eq!(rows(&two, DELIVERIES), want.0, "two runs: rows differ from the whole log");
    assert_eq!(rows(&two, MESSAGES), want.1, "two runs: messages differ from the whole log");
}

#[test]
fn a_file_that_grew_and_was_rotated_resumes_under_its_new_name() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, older, newer) = split_sample();
    let reference = Lake::open(dir.path().join("reference")).unwrap();
    let wd = dir.path().join("w");
    std::fs::create_dir_all(&wd).unwrap();
    std::fs::write(wd.join("mail.log"), &whole).unwrap();
    ingest(&reference, &[&wd]);
    // Night 1 reads the first half of the newer part too early...
    let (newer_a, newer_b) = newer.split_at(newer[..newer.len() / 2].rfind('\n').unwrap() + 1);
    let live = dir.path().join("live");
    std::fs::create_dir_all(&live).unwrap();
    std::fs::write(live.join("mail.log"), &older).unwrap();
    let lake = Lake::open(dir.path().join("lake")).unwrap();
    ingest(&lake, &[&live]);
    // ...more lines are appended, then logrotate renames it and starts anew.
    std::fs::write(live.join("mail.log.1"), format!("{older}{newer_a}")).unwrap();
    std::fs::write(live.join("mail.log"), newer_b).unwrap();
    let s = ingest(&lake, &[&live]);
    let rotated = s.sources.iter().find(|r| r.path.ends_with("mail.log.1")).unwrap();
    assert_eq!(rotated.action, SourceAction::Resumed(older.len() as u64), "{rotated:?}");
    assert_eq!(rows(&lake, DELIVERIES), rows(&reference, DELIVERIES));
    assert_eq!(rows(&lake, MESSAGES), rows(&reference, MESSAGES));
}

fn gzip(p: &Path, text: &str) {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(p).unwrap(), flate2::Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap();
}

/// logrotate with `compress` and `delaycompress`: the plain `mail.log.1`
/// read last night is `mail.log.2.gz` tonight. Same content, other bytes:
/// it adds nothing.
#[test]
fn a_rotated_file_compressed_later_is_not_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, older, newer) = split_sample();
    let reference = Lake::open(dir.path().join("reference")).unwrap();
    let wd = dir.path().join("w");
    std::fs::create_dir_all(&wd).unwrap();
    std::fs::write(wd.join("mail.log"), &whole).unwrap();
    ingest(&reference, &[&wd]);
    let live = dir.path().join("live");
    std::fs::create_dir_all(&live).unwrap();
    std::fs::write(live.join("mail.log.1"), &older).unwrap();
    std::fs::write(live.join("mail.log"), &newer).unwrap();
    let lake = Lake::open(dir.path().join("lake")).unwrap();
    ingest(&lake, &[&live]);
    // The next rotation: mail.log.1 compressed to .2.gz, mail.log renamed to .1.
    std::fs::remove_file(live.join("mail.log.1")).unwrap();
    gzip(&live.join("mail.log.2.gz"), &older);
    std::fs::rename(live.join("mail.log"), live.join("mail.log.1")).unwrap();
    std::fs::write(live.join("mail.log"), "").unwrap();
    let s = ingest(&lake, &[&live]);
    let gz = s.sources.iter().find(|r| r.path.ends_with("mail.log.2.gz")).unwrap();
    assert_eq!(gz.action, SourceAction::AlreadyIngested, "{gz:?}");
    assert_eq!(rows(&lake, DELIVERIES), rows(&reference, DELIVERIES));
    assert_eq!(rows(&lake, MESSAGES), rows(&reference, MESSAGES));
    let logged = rows(&lake, "SELECT count(*) FROM _ingest_log WHERE content_sha256 IS NULL OR content_sha256 <> source_sha256 OR content_size <> source_size");
    assert_eq!(logged[3], "| 0        |", "plain files: the content is the file: {logged:#?}");
}

/// logrotate with `compress` and no `delaycompress`: the live file read
/// part-way is `mail.log.1.gz` after the rotation, with the lines appended
/// meanwhile. Only those are read, in decompressed coordinates, with the
/// correlation state the first read had.
#[test]
fn a_live_file_compressed_at_rotation_resumes_where_it_was_read_to() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, older, newer) = split_sample();
    let reference = Lake::open(dir.path().join("reference")).unwrap();
    let wd = dir.path().join("w");
    std::fs::create_dir_all(&wd).unwrap();
    std::fs::write(wd.join("mail.log"), &whole).unwrap();
    ingest(&reference, &[&wd]);
    let (newer_a, newer_b) = newer.split_at(newer[..newer.len() / 2].rfind('\n').unwrap() + 1);
    let live = dir.path().join("live");
    std::fs::create_dir_all(&live).unwrap();
    std::fs::write(live.join("mail.log"), &older).unwrap();
    let lake = Lake::open(dir.path().join("lake")).unwrap();
    ingest(&lake, &[&live]);
    gzip(&live.join("mail.log.1.gz"), &format!("{older}{newer_a}"));
    std::fs::write(live.join("mail.log"), newer_b).unwrap();
    let s = ingest(&lake, &[&live]);
    let gz = s.sources.iter().find(|r| r.path.ends_with("mail.log.1.gz")).unwrap();
    assert_eq!(gz.action, SourceAction::Resumed(older.len() as u64), "{gz:?}");
    assert_eq!(gz.bytes, newer_a.len() as u64);
    let raw = std::fs::metadata(live.join("mail.log.1.gz")).unwrap().len();
    let logged = rows(&lake, "SELECT source_size, content_size, resumed_from FROM _ingest_log WHERE source_file LIKE '%.gz'");
    assert_eq!(logged[3], format!("| {raw:<11} | {:<12} | {:<12} |", older.len() + newer_a.len(), older.len()), "{logged:#?}");
    assert_eq!(rows(&lake, DELIVERIES), rows(&reference, DELIVERIES));
    assert_eq!(rows(&lake, MESSAGES), rows(&reference, MESSAGES));
    // Reading it once more (or the same content under another name) adds nothing.
    std::fs::copy(live.join("mail.log.1.gz"), dir.path().join("copy.gz")).unwrap();
    let again = ingest(&lake, &[&live, &dir.path().join("copy.gz")]);
    assert!(again.sources.iter().all(|r| r.action == SourceAction::AlreadyIngested), "{:?}", again.sources);
    assert_eq!(rows(&lake, DELIVERIES), rows(&reference, DELIVERIES));
}

#[test]
fn an_expiry_whose_deferrals_are_in_the_previous_file_names_its_recipients() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(
        logs.join("mail.log.1"),
        "\
2026-03-01T10:00:00+00:00 mx postfix/smtpd[1]: 3C3C3C3C3C: client=agent[10.0.0.5]
2026-03-01T10:00:00+00:00 mx postfix/cleanup[2]: 3C3C3C3C3C: message-id=<late@corp.example>
2026-03-01T10:00:00+00:00 mx postfix/qmgr[3]: 3C3C3C3C3C: from=<agent@corp.example>, size=900, nrcpt=1 (queue active)
2026-03-01T10:00:05+00:00 mx postfix/smtp[4]: 3C3C3C3C3C: to=<slow@far.example>, relay=none, delay=5, delays=0/0/5/0, dsn=4.4.1, status=deferred (connect to far.example[192.0.2.7]:25: Connection timed out)
",
    )
    .unwrap();
    std::fs::write(logs.join("mail.log"), "2026-03-06T10:00:00+00:00 mx postfix/qmgr[3]: 3C3C3C3C3C: from=<agent@corp.example>, status=expired, returned to sender\n2026-03-06T10:00:00+00:00 mx postfix/qmgr[3]: 3C3C3C3C3C: removed\n").unwrap();
    let lake = Lake::open(dir.path().join("lake")).unwrap();
    ingest(&lake, &[&logs]);
    let r = rows(&lake, "SELECT recipient, status, message_id, source_file LIKE '%mail.log' AS in_new FROM mail_deliveries WHERE status = 'expired'");
    assert_eq!(r[3], "| slow@far.example | expired | late@corp.example | true   |", "{r:#?}");
    let m = rows(&lake, "SELECT final_state, message_id FROM mail_messages");
    assert_eq!(m[3], "| expired     | late@corp.example |", "{m:#?}");
}

#[test]
fn a_message_still_queued_at_the_end_of_the_log_is_visible() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    std::fs::write(
        &log,
        "\
2026-03-01T10:00:00+00:00 mx postfix/smtpd[1]: 4D4D4D4D4D: client=agent[10.0.0.5]
2026-03-01T10:00:00+00:00 mx postfix/cleanup[2]: 4D4D4D4D4D: message-id=<pending@corp.example>
2026-03-01T10:00:00+00:00 mx postfix/qmgr[3]: 4D4D4D4D4D: from=<agent@corp.example>, size=900, nrcpt=1 (queue active)
",
    )
    .unwrap();
    let lake = Lake::open(dir.path().join("lake")).unwrap();
    ingest(&lake, &[&log]);
    let m = rows(&lake, "SELECT queue_id, message_id, sender, client, final_state, recipients FROM mail_messages");
    assert_eq!(m[3], "| 4D4D4D4D4D | pending@corp.example | agent@corp.example | agent[10.0.0.5] | still_queued | 0          |", "{m:#?}");
}

/// A server with amavis on 127.0.0.1:10024: every message passes the filter
/// once (a hop that says "queued as NEXT") and leaves once.
#[test]
fn content_filter_hops_are_labelled_and_not_counted_as_mail_that_left() {
    let set = repo().join("../shared/real-logs/postfix/lightmeter/logs_sample");
    if !set.join("mail.log").is_file() {
        eprintln!("skipped: {} is absent (the shared real-log corpus)", set.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake")).unwrap();
    ingest(&lake, &[&set.join("mail.log.1"), &set.join("mail.log")]);
    // Every delivery to the local filter is a hop with the id it came back as.
    let hops = rows(&lake, "SELECT count(*) AS n, count(next_queue_id) AS linked FROM mail_deliveries WHERE relay LIKE '127.0.0.1[127.0.0.1]:10024'");
    let hop_counts: Vec<&str> = hops[3].split('|').map(str::trim).filter(|s| !s.is_empty()).collect();
    assert!(hop_counts[0].parse::<i64>().unwrap() > 20, "{hops:#?}");
    assert_eq!(hop_counts[0], hop_counts[1], "every hop names the queue id it was re-injected as: {hops:#?}");
    let kinds = rows(&lake, "SELECT count(*) FROM mail_deliveries WHERE relay LIKE '127.0.0.1[127.0.0.1]:10024' AND delivery_kind <> 'filter_hop'");
    assert_eq!(kinds[3], "| 0        |", "{kinds:#?}");
    // Per recipient: the final deliveries are exactly the messages that left,
    // counted from the raw lines (a `status=sent` line to a host other than
    // the local filter), and no message counts twice.
    let mut left: std::collections::BTreeMap<String, i64> = Default::default();
    for f in ["mail.log.1", "mail.log"] {
        for l in std::fs::read_to_string(set.join(f)).unwrap().lines() {
            let (Some(to), Some(relay)) = (l.split("to=<").nth(1), l.split("relay=").nth(1)) else { continue };
            if l.contains("status=sent") && !relay.starts_with("127.0.0.1") {
                *left.entry(to.split('>').next().unwrap().to_lowercase()).or_default() += 1;
            }
        }
    }
    let got = rows(
        &lake,
        "SELECT recipient, count(*) AS n, count(DISTINCT coalesce(message_id, queue_id)) AS m FROM mail_deliveries
         WHERE status = 'sent' AND delivery_kind <> 'filter_hop' GROUP BY recipient ORDER BY recipient",
    );
    let got: std::collections::BTreeMap<String, i64> = got[3..got.len() - 1]
        .iter()
        .map(|l| {
            let c: Vec<&str> = l.split('|').map(str::trim).collect();
            assert_eq!(c[2], c[3], "a message counted twice for {}", c[1]);
            (c[1].to_string(), c[2].parse().unwrap())
        })
        .collect();
    assert_eq!(got, left);
    // The hop chain is followable: the re-injected message names where it came from.
    let chain = rows(
        &lake,
        "SELECT count(*) FROM mail_deliveries h JOIN mail_messages m ON m.queue_id = h.next_queue_id
         WHERE h.delivery_kind = 'filter_hop' AND m.filtered_from = h.queue_id",
    );
    assert_ne!(chain[3], "| 0        |", "{chain:#?}");
}

/// `compresscmd bzip2`: a set of `mail.log.2.bz2`, `mail.log.1.gz` and the
/// live file reads as the whole log, whatever each file's compression.
#[test]
fn a_set_of_bzip2_gzip_and_plain_files_reads_as_the_whole_log() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let (whole, older, newer) = split_sample();
    let reference = Lake::open(dir.path().join("reference")).unwrap();
    let wd = dir.path().join("w");
    std::fs::create_dir_all(&wd).unwrap();
    std::fs::write(wd.join("mail.log"), &whole).unwrap();
    ingest(&reference, &[&wd]);
    let live = dir.path().join("live");
    std::fs::create_dir_all(&live).unwrap();
    let (oldest, middle) = older.split_at(older[..older.len() / 2].rfind('\n').unwrap() + 1);
    let mut bz = bzip2::write::BzEncoder::new(std::fs::File::create(live.join("mail.log.2.bz2")).unwrap(), bzip2::Compression::default());
    bz.write_all(oldest.as_bytes()).unwrap();
    bz.finish().unwrap();
    gzip(&live.join("mail.log.1.gz"), middle);
    std::fs::write(live.join("mail.log"), &newer).unwrap();
    let lake = Lake::open(dir.path().join("lake")).unwrap();
    let s = ingest(&lake, &[&live]);
    assert_eq!(s.sources.iter().map(|r| r.stats.rejected).sum::<u64>(), 0);
    assert_eq!(rows(&lake, DELIVERIES), rows(&reference, DELIVERIES));
    assert_eq!(rows(&lake, MESSAGES), rows(&reference, MESSAGES));
}
