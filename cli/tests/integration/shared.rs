//! Helpers the test modules share: Vidur's reference data committed under `fixtures/vidur/`,
//! CSV reading, and scratch folders that are removed when the test ends.

use std::path::{Path, PathBuf};

/// The repository root (the workspace's: this test binary belongs to the member `cli/`).
pub const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Folder name of Vidur's prediction tables for Llama-3-8B TP1 on the A100 (every reference
/// run's execution times), under `fixtures/vidur/predictions/`.
pub const LLAMA3_8B_TABLES: &str = "a100_Meta-Llama-3-8B_tp1_pp1_proxy-attention_rf-n250-d16-s2";

/// `fixtures/vidur/<rel>` (see its README). Panics naming the path when it is missing: the
/// data is part of the repository, so a missing file is a broken checkout, never a skip.
pub fn vidur(rel: &str) -> PathBuf {
    let path = Path::new(ROOT).join("fixtures/vidur").join(rel);
    assert!(
        path.exists(),
        "Vidur reference data not found: {} (it is committed under fixtures/vidur/)",
        path.display()
    );
    path
}

/// The folder of Vidur's reference run `run` (`a`…`e`).
pub fn vidur_run(run: &str) -> PathBuf {
    vidur(&format!("runs/{run}"))
}

/// Vidur's prediction tables of the reference runs.
pub fn vidur_tables() -> PathBuf {
    vidur(&format!("predictions/{LLAMA3_8B_TABLES}"))
}

/// Reads a file, gunzipping it when its name ends in `.gz`; panics naming the path.
pub fn read_bytes(path: &Path) -> Vec<u8> {
    use std::io::Read;
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out
    } else {
        bytes
    }
}

/// Reads a CSV (optionally gzipped) into a header and rows of strings.
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let bytes = read_bytes(path);
    let mut rdr = csv::ReaderBuilder::new().from_reader(&bytes[..]);
    let header = rdr.headers().unwrap().iter().map(String::from).collect();
    let rows = rdr
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

/// Column index by name.
pub fn col(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

/// A fresh folder in the system temp dir, removed (with its contents) when dropped, also when
/// the test panics. Derefs to its [`Path`].
pub struct Scratch(tempfile::TempDir);

/// A [`Scratch`] folder whose name starts with `prefix` (e.g. `simfid-cli-defaults-`).
pub fn scratch(prefix: &str) -> Scratch {
    Scratch(
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .unwrap_or_else(|e| panic!("creating a scratch folder {prefix}*: {e}")),
    )
}

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}

/// The `simfid` binary of this build (this package's, `simfid-cli`).
pub fn simfid_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_simfid"))
}
