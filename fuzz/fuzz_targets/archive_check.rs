//! `archive::check` (the plugin upload checker) on arbitrary input. The first byte picks how the
//! rest is used: even, as an uncompressed tarball that the harness gzips (so libFuzzer mutates
//! tar headers, not deflate streams); odd, as the uploaded bytes themselves.
//!
//! What must hold: no panic, bounded memory, and every archive it accepts reads, through the tar
//! crate's own (non-raw) reader, as at most 10,000 regular files and directories under `k/`, no
//! `..`, `\` or absolute name, no setuid or setgid bit, at most 100 MiB in all: the checker and
//! an extractor never see two different archives.
//!
//! The checker is compiled from the server's source file (it needs only `tar`, `flate2` and
//! `thiserror`), so this target builds without the server crate.
#![no_main]

#[path = "../../server/src/domain/archive.rs"]
#[allow(dead_code)]
mod archive;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = if mode % 2 == 0 {
        let mut gz = GzEncoder::new(Vec::new(), Compression::none());
        gz.write_all(rest).unwrap();
        gz.finish().unwrap()
    } else {
        rest.to_vec()
    };
    if archive::check("k", &bytes).is_err() {
        return;
    }
    let mut tar = tar::Archive::new(GzDecoder::new(bytes.as_slice()));
    let mut count = 0usize;
    let mut total = 0u64;
    for entry in tar.entries().expect("accepted, so readable") {
        let entry = entry.expect("accepted, so every entry reads");
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            // metadata for the whole archive (`git archive` writes one); the reader hands it
            // over as an entry
            continue;
        }
        let path = entry.path_bytes().into_owned();
        let name = std::str::from_utf8(&path).expect("UTF-8 name");
        assert!(
            kind.is_file() || kind.is_dir(),
            "{kind:?} accepted: {name:?}"
        );
        assert!(!name.contains('\\') && !name.starts_with('/'), "{name:?}");
        assert!(!name.split('/').any(|p| p == ".."), "{name:?}");
        let clean = name.trim_start_matches("./");
        assert!(clean == "k" || clean.starts_with("k/"), "{name:?}");
        assert_eq!(entry.header().mode().unwrap() & 0o6000, 0, "{name:?}");
        count += 1;
        total += entry.size();
    }
    assert!(count <= archive::MAX_ENTRIES);
    assert!(total <= archive::MAX_UNPACKED_BYTES);
});
