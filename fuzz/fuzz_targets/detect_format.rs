//! Format detection as ingest does it: the first 64 KiB of the decompressed
//! stream go to `detect_format`, then the detected parser reads the source.
//! Inputs that start with gzip/zstd magic go through `source::decompressed`
//! first (bounded: at most 64 KiB of output is read).
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use mcpf_formats::{detect_format, source, Format};

/// `HEAD_BYTES` of crates/lake/src/ingest.rs.
const HEAD_BYTES: usize = 64 * 1024;

fn detect_and_parse(bytes: &[u8]) {
    let head = &bytes[..bytes.len().min(HEAD_BYTES)];
    let found = detect_format(head);
    assert_eq!(found, detect_format(head), "detect_format is not deterministic");
    if let Some(f) = found {
        assert!(Format::ALL.contains(&f));
        mcpf_fuzz::check_format(f, bytes);
    }
}

fuzz_target!(|data: &[u8]| {
    detect_and_parse(data);
    if source::Compression::sniff(data) != source::Compression::None {
        // A truncated or corrupt stream is an Err or a short read, never a panic.
        if let Ok((r, _)) = source::decompressed(data) {
            let mut out = Vec::new();
            if r.take(HEAD_BYTES as u64).read_to_end(&mut out).is_ok() {
                detect_and_parse(&out);
            }
        }
    }
});
