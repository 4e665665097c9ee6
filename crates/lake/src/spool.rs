//! Input read from a stream (`ingest -`: a pipe, `zcat maillog-*.gz |`),
//! kept in the lake as the evidence its rows point back to.
//!
//! The stream is written to `_lake/spool/` while it is hashed, then renamed
//! to `stdin-SHA256PREFIX` (compressed input is kept as it came and read
//! through the same decompression as a file), so every row's
//! `source_file`, offset and line name bytes that can be re-read and
//! verified, and the same stream piped twice is one source, ingested once.
//! Memory stays bounded: the stream is copied in fixed-size blocks.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Copy `input` into `ROOT/_lake/spool/` and return the file's path.
pub fn spool(root: &Path, input: &mut dyn Read) -> io::Result<PathBuf> {
    let dir = root.join(crate::layout::LAKE_DIR).join("spool");
    fs::create_dir_all(&dir)?;
    let tmp = dir.join(format!(".incoming-{}-{}", std::process::id(), chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)));
    let mut out = File::create(&tmp)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
    }
    out.sync_all()?;
    drop(out);
    let digest = hasher.finalize();
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let path = dir.join(format!("stdin-{hex}"));
    if path.exists() {
        // The same bytes were piped before: that copy is the source.
        fs::remove_file(&tmp)?;
    } else {
        fs::rename(&tmp, &path)?;
    }
    Ok(path)
}
