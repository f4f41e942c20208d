//! Access to `../shared` (Vidur's data and reference runs) through `SIMFID_SHARED`.

use std::path::PathBuf;

/// The shared folder, or `None` outside CI when it is missing (the test then returns early).
/// In CI (`CI=true`) a missing folder fails the test: CI must check parity.
pub fn dir() -> Option<PathBuf> {
    match std::env::var_os("SIMFID_SHARED") {
        Some(p) if PathBuf::from(&p).is_dir() => Some(PathBuf::from(p)),
        other => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(
                !ci,
                "SIMFID_SHARED is {:?}: CI must point it at the shared folder (../shared)",
                other
            );
            eprintln!("note: SIMFID_SHARED not set; skipping a test that needs ../shared");
            None
        }
    }
}

/// Reads a CSV (optionally gzipped) into a header and rows of strings.
pub fn read_csv(path: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    use std::io::Read;
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = if path.extension().is_some_and(|e| e == "gz") {
        let mut s = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut s)
            .unwrap();
        s
    } else {
        String::from_utf8(bytes).unwrap()
    };
    let mut rdr = csv::ReaderBuilder::new().from_reader(text.as_bytes());
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
