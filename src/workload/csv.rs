//! Workload files in the two CSV formats Vidur reads.
//!
//! * **Lengths** (Vidur's `trace` length generator): columns `num_prefill_tokens` and
//!   `num_decode_tokens`. Read with [`read_lengths_csv`] into raw rows for
//!   [`LengthSpec::Trace`](super::length::LengthSpec::Trace).
//! * **Trace replay** (Vidur's `trace_replay` request generator): columns `arrived_at`,
//!   `num_prefill_tokens`, `num_decode_tokens`. Read with [`read_trace_replay_csv`] into a
//!   [`Workload`], applying Vidur's [`TraceReplayOptions`]; written with [`write_workload_csv`].
//!
//! Columns may come in any order and extra columns are ignored, as with pandas. Values may be
//! integers or floats (`12`, `12.0`, `1.2e1`; surrounding spaces are ignored); a missing,
//! non-numeric, non-finite or negative value is an error that names the line (1-based, the
//! header is line 1) and the column. [`read_workload_csv`] tells the two formats apart by the
//! header.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{RequestSpec, Workload};
use crate::{Error, Result};

const ARRIVED_AT: &str = "arrived_at";
const PREFILL: &str = "num_prefill_tokens";
const DECODE: &str = "num_decode_tokens";

/// Vidur's trace-replay transformations (`trace_request_generator_config_*`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TraceReplayOptions {
    /// Factor applied to prompt lengths before truncation (Vidur default 1).
    pub prefill_scale: f64,
    /// Factor applied to output lengths before truncation (Vidur default 1).
    pub decode_scale: f64,
    /// Factor applied to arrival times (Vidur default 1; 0.5 doubles the rate).
    pub time_scale: f64,
    /// Largest `prefill + decode`; the prompt is shortened by the excess (Vidur default 4096).
    pub max_tokens: u32,
}

impl Default for TraceReplayOptions {
    /// Vidur's defaults: scales 1, `max_tokens` 4096.
    fn default() -> Self {
        TraceReplayOptions {
            prefill_scale: 1.0,
            decode_scale: 1.0,
            time_scale: 1.0,
            max_tokens: 4096,
        }
    }
}

impl TraceReplayOptions {
    /// Options that change nothing (scales 1, no token limit): reads back exactly what
    /// [`write_workload_csv`] wrote.
    pub fn exact() -> Self {
        TraceReplayOptions {
            max_tokens: u32::MAX,
            ..Self::default()
        }
    }

    fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("prefill_scale", self.prefill_scale),
            ("decode_scale", self.decode_scale),
            ("time_scale", self.time_scale),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::Workload(format!(
                    "trace replay: {name} must be finite and >= 0 (got {v})"
                )));
            }
        }
        if self.max_tokens < 2 {
            return Err(Error::Workload(format!(
                "trace replay: max_tokens must be at least 2 (got {})",
                self.max_tokens
            )));
        }
        Ok(())
    }
}

/// What [`read_workload_csv`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum CsvWorkload {
    /// A lengths-only file: raw `(num_prefill_tokens, num_decode_tokens)` rows in file order.
    Lengths(Vec<(f64, f64)>),
    /// A trace-replay file, transformed into a workload.
    TraceReplay(Workload),
}

/// Reads a lengths CSV (`num_prefill_tokens,num_decode_tokens`) into raw rows, in file order.
pub fn read_lengths_csv(path: impl AsRef<Path>) -> Result<Vec<(f64, f64)>> {
    let path = path.as_ref();
    read_lengths(open(path)?, path)
}

/// [`read_lengths_csv`] from any reader; `name` is used in error messages.
pub fn read_lengths(reader: impl Read, name: impl AsRef<Path>) -> Result<Vec<(f64, f64)>> {
    let mut table = Table::open(reader, name.as_ref())?;
    let cols = table.require(&[PREFILL, DECODE])?;
    table.rows(|t, rec| Ok((t.number(rec, cols[0])?, t.number(rec, cols[1])?)))
}

/// Reads a trace-replay CSV (`arrived_at,num_prefill_tokens,num_decode_tokens`) into a
/// workload, as Vidur's `trace_replay` generator does: lengths scaled and truncated toward zero,
/// clipped to at least 1, the prompt shortened by any excess over `max_tokens`; arrival times
/// multiplied by `time_scale`. Request ids follow the row order (0-based); the workload is then
/// stably sorted by arrival.
///
/// Errors where Vidur would produce an invalid request: a decode length that leaves no room for
/// a prompt under `max_tokens`, and a negative arrival time.
pub fn read_trace_replay_csv(
    path: impl AsRef<Path>,
    options: &TraceReplayOptions,
) -> Result<Workload> {
    let path = path.as_ref();
    read_trace_replay(open(path)?, path, options)
}

/// [`read_trace_replay_csv`] from any reader; `name` is used in error messages and as the
/// workload's source.
pub fn read_trace_replay(
    reader: impl Read,
    name: impl AsRef<Path>,
    options: &TraceReplayOptions,
) -> Result<Workload> {
    let mut table = Table::open(reader, name.as_ref())?;
    trace_replay(&mut table, options, false)
}

/// Reads either format, telling them apart by the header: a file with an `arrived_at` column is
/// a trace replay (read with `options`), one with only the token columns a lengths file.
pub fn read_workload_csv(
    path: impl AsRef<Path>,
    options: &TraceReplayOptions,
) -> Result<CsvWorkload> {
    let path = path.as_ref();
    read_workload(open(path)?, path, options)
}

/// [`read_workload_csv`] from any reader; `name` is used in error messages.
pub fn read_workload(
    reader: impl Read,
    name: impl AsRef<Path>,
    options: &TraceReplayOptions,
) -> Result<CsvWorkload> {
    let mut table = Table::open(reader, name.as_ref())?;
    if table.column(ARRIVED_AT).is_some() {
        return trace_replay(&mut table, options, true).map(CsvWorkload::TraceReplay);
    }
    let cols = table.require(&[PREFILL, DECODE]).map_err(|_| {
        Error::csv(
            table.path,
            1,
            format!(
                "unrecognised header: expected `{ARRIVED_AT},{PREFILL},{DECODE}` (trace replay) \
                 or `{PREFILL},{DECODE}` (lengths)"
            ),
        )
    })?;
    table
        .rows(|t, rec| Ok((t.tokens(rec, cols[0])?, t.tokens(rec, cols[1])?)))
        .map(CsvWorkload::Lengths)
}

/// Writes a workload in the trace-replay format, one row per request in workload order, with
/// floats that read back bit-exactly. Ids are not written: reading the file back numbers the
/// requests in row order.
pub fn write_workload_csv(path: impl AsRef<Path>, workload: &Workload) -> Result<()> {
    let path = path.as_ref();
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = BufWriter::new(file);
    write_workload(&mut w, workload)
        .and_then(|()| w.flush())
        .map_err(|e| Error::io(path, e))
}

/// [`write_workload_csv`] to any writer. A non-finite arrival time is an
/// [`InvalidData`](std::io::ErrorKind::InvalidData) error.
pub fn write_workload(mut writer: impl Write, workload: &Workload) -> std::io::Result<()> {
    writeln!(writer, "{ARRIVED_AT},{PREFILL},{DECODE}")?;
    for r in &workload.requests {
        if !r.arrival_s.is_finite() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "request {}: arrival time {} is not finite",
                    r.id, r.arrival_s
                ),
            ));
        }
        // Display of f64 prints the shortest decimal that parses back to the same value.
        writeln!(
            writer,
            "{},{},{}",
            r.arrival_s, r.prefill_tokens, r.decode_tokens
        )?;
    }
    Ok(())
}

fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| Error::io(path, e))
}

/// `exact_tokens`: a token field below 1 is an error (simfid's own workloads), instead of
/// being clipped to 1 as Vidur's generator does.
fn trace_replay(
    table: &mut Table<impl Read>,
    options: &TraceReplayOptions,
    exact_tokens: bool,
) -> Result<Workload> {
    options.validate()?;
    let cols = table.require(&[ARRIVED_AT, PREFILL, DECODE])?;
    let max = i64::from(options.max_tokens);
    let mut next_id = 0u64;
    let requests = table.rows(|t, rec| {
        let arrived = t.number(rec, cols[0])?;
        let (p_raw, d_raw) = if exact_tokens {
            (t.tokens(rec, cols[1])?, t.tokens(rec, cols[2])?)
        } else {
            (t.number(rec, cols[1])?, t.number(rec, cols[2])?)
        };
        // Truncation like pandas' astype(int), then clip(lower=1).
        let p = ((p_raw * options.prefill_scale).trunc() as i64).max(1);
        let d = ((d_raw * options.decode_scale).trunc() as i64).max(1);
        if d >= max {
            return Err(t.error(
                rec,
                format!(
                    "{DECODE} {d} leaves no room for a prompt under max_tokens {}",
                    options.max_tokens
                ),
            ));
        }
        // Vidur shortens the prompt by the excess over max_tokens.
        let p = p - (p + d - max).max(0);
        let id = next_id;
        next_id += 1;
        // 1 <= p, d and p + d <= max_tokens, so both fit in u32.
        Ok(RequestSpec {
            id,
            arrival_s: arrived * options.time_scale,
            prefill_tokens: p as u32,
            decode_tokens: d as u32,
        })
    })?;
    Ok(Workload::new(
        requests,
        format!("trace replay: {}", table.path.display()),
    ))
}

/// A CSV file being read: its header and the position of each record.
struct Table<'p, R> {
    reader: ::csv::Reader<R>,
    header: Vec<String>,
    path: &'p Path,
}

impl<'p, R: Read> Table<'p, R> {
    fn open(reader: R, path: &'p Path) -> Result<Self> {
        let mut reader = ::csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(reader);
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| csv_error(path, e))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        if header.iter().all(String::is_empty) {
            return Err(Error::csv(
                path,
                1,
                format!("empty file: expected a header naming `{PREFILL}` and `{DECODE}`"),
            ));
        }
        Ok(Table {
            reader,
            header,
            path,
        })
    }

    fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    fn require(&self, names: &[&str]) -> Result<Vec<usize>> {
        names
            .iter()
            .map(|n| {
                self.column(n).ok_or_else(|| {
                    Error::csv(
                        self.path,
                        1,
                        format!("missing column `{n}` (header: {})", self.header.join(",")),
                    )
                })
            })
            .collect()
    }

    /// Applies `f` to every record; errors if there is none.
    fn rows<T>(
        &mut self,
        mut f: impl FnMut(&Self, &::csv::StringRecord) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut rec = ::csv::StringRecord::new();
        loop {
            match self.reader.read_record(&mut rec) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(csv_error(self.path, e)),
            }
            if rec.len() > self.header.len() {
                return Err(self.error(
                    &rec,
                    format!(
                        "expected {} fields as in the header, found {}",
                        self.header.len(),
                        rec.len()
                    ),
                ));
            }
            out.push(f(self, &rec)?);
        }
        if out.is_empty() {
            return Err(Error::csv(self.path, 1, "no rows after the header"));
        }
        Ok(out)
    }

    /// The value of column `col` as a finite, non-negative number.
    fn number(&self, rec: &::csv::StringRecord, col: usize) -> Result<f64> {
        let name = &self.header[col];
        let text = rec.get(col).map(str::trim).unwrap_or("");
        if text.is_empty() {
            return Err(self.error(rec, format!("missing value in column `{name}`")));
        }
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
            Ok(v) if v.is_finite() => {
                Err(self.error(rec, format!("negative value {text} in column `{name}`")))
            }
            _ => Err(self.error(
                rec,
                format!("column `{name}`: `{text}` is not a finite number"),
            )),
        }
    }

    /// [`number`](Self::number) of a token count: at least 1 (a request without a prompt
    /// token or an output token cannot be sent, and silently making it 1 would change the
    /// workload).
    fn tokens(&self, rec: &::csv::StringRecord, col: usize) -> Result<f64> {
        let v = self.number(rec, col)?;
        if v < 1.0 {
            return Err(self.error(
                rec,
                format!(
                    "column `{}` is {v}: every request needs at least 1 token",
                    self.header[col]
                ),
            ));
        }
        Ok(v)
    }

    fn error(&self, rec: &::csv::StringRecord, message: String) -> Error {
        let line = rec.position().map_or(0, |p| p.line());
        Error::csv(self.path, line, message)
    }
}

fn csv_error(path: &Path, e: ::csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line());
    let message = e.to_string();
    match e.into_kind() {
        ::csv::ErrorKind::Io(io) => Error::io(path, io),
        _ => Error::csv(path, line, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{ArrivalSpec, LengthSpec, RngKind, SyntheticSpec};

    fn lengths(text: &str) -> Result<Vec<(f64, f64)>> {
        read_lengths(text.as_bytes(), "t.csv")
    }

    fn replay(text: &str, options: &TraceReplayOptions) -> Result<Workload> {
        read_trace_replay(text.as_bytes(), "t.csv", options)
    }

    fn line_of(e: Error) -> (u64, String) {
        match e {
            Error::Csv { line, message, .. } => (line, message),
            other => panic!("expected a CSV error, got {other:?}"),
        }
    }

    #[test]
    fn lengths_accept_floats_extra_columns_any_order() {
        let rows =
            lengths("x,num_decode_tokens,num_prefill_tokens\na,5,100\nb, 6.5 ,1e3\n").unwrap();
        assert_eq!(rows, [(100.0, 5.0), (1000.0, 6.5)]);
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let (line, msg) =
            line_of(lengths("num_prefill_tokens,num_decode_tokens\n1,2\n3,abc\n").unwrap_err());
        assert_eq!(line, 3);
        assert!(
            msg.contains("num_decode_tokens") && msg.contains("abc"),
            "{msg}"
        );

        let (line, msg) = line_of(
            lengths("num_prefill_tokens,num_decode_tokens\n1,2\n\n4,5\n-3,1\n").unwrap_err(),
        );
        assert_eq!(line, 5, "blank lines count: {msg}");
        assert!(msg.contains("negative"), "{msg}");

        let (line, msg) =
            line_of(lengths("num_prefill_tokens,num_decode_tokens\n1,2\n7\n").unwrap_err());
        assert_eq!(line, 3);
        assert!(
            msg.contains("missing value in column `num_decode_tokens`"),
            "{msg}"
        );

        let (line, msg) =
            line_of(lengths("num_prefill_tokens,num_decode_tokens\n1,\n").unwrap_err());
        assert_eq!(line, 2);
        assert!(msg.contains("missing value"), "{msg}");

        let (line, msg) =
            line_of(lengths("num_prefill_tokens,num_decode_tokens\n1,2,3\n").unwrap_err());
        assert_eq!(line, 2);
        assert!(msg.contains("expected 2 fields"), "{msg}");

        let (line, msg) =
            line_of(lengths("num_prefill_tokens,num_decode_tokens\n1,nan\n").unwrap_err());
        assert_eq!(line, 2);
        assert!(msg.contains("not a finite number"), "{msg}");

        let (line, msg) = line_of(lengths("num_prefill_tokens,decode\n1,2\n").unwrap_err());
        assert_eq!(line, 1);
        assert!(msg.contains("missing column `num_decode_tokens`"), "{msg}");

        let (line, msg) = line_of(
            replay(
                "arrived_at,num_prefill_tokens,num_decode_tokens\n0.5,10,2\n0.25,x,1\n",
                &TraceReplayOptions::default(),
            )
            .unwrap_err(),
        );
        assert_eq!(line, 3);
        assert!(msg.contains("num_prefill_tokens"), "{msg}");
    }

    #[test]
    fn empty_and_header_only_files_are_clear_errors() {
        let (line, msg) = line_of(lengths("").unwrap_err());
        assert_eq!(line, 1);
        assert!(msg.contains("empty file"), "{msg}");
        let (line, msg) = line_of(lengths("num_prefill_tokens,num_decode_tokens\n").unwrap_err());
        assert_eq!(line, 1);
        assert!(msg.contains("no rows after the header"), "{msg}");
        let e = read_workload("".as_bytes(), "t.csv", &TraceReplayOptions::default()).unwrap_err();
        assert!(e.to_string().starts_with("t.csv:1: empty file"), "{e}");
        let e = read_lengths_csv("/nonexistent/simfid/x.csv").unwrap_err();
        assert!(matches!(e, Error::Io { .. }));
    }

    /// Issue 13: a 0-token field in simfid's own workload files is an error naming the
    /// file and line (it used to become 1 silently); Vidur's reader keeps clipping it.
    #[test]
    fn zero_token_fields_are_errors_naming_the_line() {
        let o = TraceReplayOptions::exact();
        for text in [
            "arrived_at,num_prefill_tokens,num_decode_tokens\n0,5,3\n0.1,5,0\n",
            "num_prefill_tokens,num_decode_tokens\n5,3\n0,2\n",
        ] {
            let e = read_workload(text.as_bytes(), "w.csv", &o).unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with("w.csv:3: column `num_"), "{msg}");
            assert!(
                msg.contains("is 0: every request needs at least 1 token"),
                "{msg}"
            );
        }
        let w = replay(
            "arrived_at,num_prefill_tokens,num_decode_tokens\n0,5,0\n",
            &TraceReplayOptions::default(),
        )
        .unwrap();
        assert_eq!(w.requests[0].decode_tokens, 1);
    }

    #[test]
    fn trace_replay_applies_vidur_transformations() {
        let text = "arrived_at,num_prefill_tokens,num_decode_tokens\n\
                    2.0,100.9,10.2\n\
                    1.0,0.4,0\n\
                    1.0,4000,200\n";
        let options = TraceReplayOptions {
            prefill_scale: 2.0,
            decode_scale: 1.0,
            time_scale: 0.5,
            max_tokens: 4096,
        };
        let w = replay(text, &options).unwrap();
        let got: Vec<(u64, f64, u32, u32)> = w
            .requests
            .iter()
            .map(|r| (r.id, r.arrival_s, r.prefill_tokens, r.decode_tokens))
            .collect();
        // Row 0: 201.8 -> 201, 10. Row 1: 0.8 -> 0 -> clip 1, 0 -> 1. Row 2: 8000 + 200 ->
        // prompt shortened by 4104 to 3896. Stable sort by arrival keeps row 1 before row 2.
        assert_eq!(
            got,
            [(1, 0.5, 1, 1), (2, 0.5, 3896, 200), (0, 1.0, 201, 10)]
        );

        let (line, msg) = line_of(
            replay(
                "arrived_at,num_prefill_tokens,num_decode_tokens\n0,1,1\n0,5,4096\n",
                &TraceReplayOptions::default(),
            )
            .unwrap_err(),
        );
        assert_eq!(line, 3);
        assert!(msg.contains("no room"), "{msg}");
    }

    #[test]
    fn read_workload_detects_the_format() {
        let o = TraceReplayOptions::default();
        let l = read_workload(
            "num_decode_tokens,num_prefill_tokens\n3,4\n".as_bytes(),
            "a",
            &o,
        )
        .unwrap();
        assert_eq!(l, CsvWorkload::Lengths(vec![(4.0, 3.0)]));
        let t = read_workload(
            "num_decode_tokens,arrived_at,num_prefill_tokens\n3,0.5,4\n".as_bytes(),
            "a",
            &o,
        )
        .unwrap();
        match t {
            CsvWorkload::TraceReplay(w) => assert_eq!(
                w.requests,
                [RequestSpec {
                    id: 0,
                    arrival_s: 0.5,
                    prefill_tokens: 4,
                    decode_tokens: 3
                }]
            ),
            other => panic!("{other:?}"),
        }
        let (line, msg) = line_of(read_workload("a,b\n1,2\n".as_bytes(), "a", &o).unwrap_err());
        assert_eq!(line, 1);
        assert!(msg.contains("unrecognised header"), "{msg}");
    }

    #[test]
    fn write_then_read_is_exact() {
        for rng in [RngKind::Vidur, RngKind::Pcg] {
            let spec = SyntheticSpec {
                length: LengthSpec::Uniform {
                    min_tokens: 136,
                    max_tokens: 4096,
                    prefill_to_decode_ratio: 16.0,
                },
                arrival: ArrivalSpec::Gamma {
                    qps: 7.0,
                    burstiness: 0.3,
                },
                num_requests: Some(3000),
                duration_s: None,
                seed: 5,
                rng,
            };
            let w = spec.generate().unwrap();
            let mut buf = Vec::new();
            write_workload(&mut buf, &w).unwrap();
            let back =
                read_trace_replay(buf.as_slice(), "mem", &TraceReplayOptions::exact()).unwrap();
            assert_eq!(back.requests, w.requests);
            assert!(
                back.requests
                    .iter()
                    .zip(&w.requests)
                    .all(|(a, b)| a.arrival_s.to_bits() == b.arrival_s.to_bits())
            );
        }
        // Awkward floats, through a real file.
        // (Sorted, so that ids equal row positions: reading numbers requests by row.)
        let times = [
            0.0,
            5e-324,
            1e-300,
            2.5e-7,
            0.1 + 0.2,
            123_456_789.123_456_79,
            1e21,
        ];
        let w = Workload::new(
            times
                .iter()
                .enumerate()
                .map(|(i, &t)| RequestSpec {
                    id: i as u64,
                    arrival_s: t,
                    prefill_tokens: 1 + i as u32,
                    decode_tokens: 1,
                })
                .collect(),
            "test",
        );
        let dir = std::env::temp_dir().join(format!("simfid-workload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.csv");
        write_workload_csv(&path, &w).unwrap();
        let back = read_trace_replay_csv(&path, &TraceReplayOptions::exact()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(back.requests, w.requests);
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]

            /// Any workload with finite, non-negative arrival times reads back exactly.
            #[test]
            fn any_workload_round_trips(
                rows in proptest::collection::vec(
                    (0.0f64..1e12, 1u32..=u32::MAX / 2, 1u32..=u32::MAX / 2),
                    1..200,
                )
            ) {
                let w = Workload::new(
                    rows.iter()
                        .enumerate()
                        .map(|(i, &(t, p, d))| RequestSpec {
                            id: i as u64,
                            arrival_s: t,
                            prefill_tokens: p,
                            decode_tokens: d,
                        })
                        .collect(),
                    "prop",
                );
                // Reading numbers requests by row, so renumber the sorted workload first.
                let mut w = w;
                for (i, r) in w.requests.iter_mut().enumerate() {
                    r.id = i as u64;
                }
                let mut buf = Vec::new();
                write_workload(&mut buf, &w).unwrap();
                let back = read_trace_replay(buf.as_slice(), "mem", &TraceReplayOptions::exact())
                    .unwrap();
                prop_assert_eq!(back.requests, w.requests);
            }

            /// Arbitrary bytes give a workload or an error, never a panic.
            #[test]
            fn arbitrary_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
                let _ = read_workload(bytes.as_slice(), "fuzz", &TraceReplayOptions::default());
            }

            /// Arbitrary text in the right shape: errors always carry a line number.
            #[test]
            fn field_errors_carry_a_line(
                cells in proptest::collection::vec("[0-9a-z. -]{0,6}", 1..40)
            ) {
                let mut text = String::from("num_prefill_tokens,num_decode_tokens\n");
                for pair in cells.chunks(2) {
                    text.push_str(&pair.join(","));
                    text.push('\n');
                }
                if let Err(Error::Csv { line, .. }) = read_lengths(text.as_bytes(), "p.csv") {
                    prop_assert!(line >= 1);
                }
            }
        }
    }
}

/// Nanoseconds since 1970-01-01 of a `YYYY-MM-DD[ HH:MM:SS[.fffffffff]]` timestamp (the
/// forms pandas' `to_datetime` reads in Vidur's traces; `T` may separate date and time).
fn parse_datetime_ns(s: &str) -> Option<i128> {
    let s = s.trim();
    let (date, time) = match s.split_once([' ', 'T']) {
        Some((d, t)) => (d, t),
        None => (s, "00:00:00"),
    };
    let mut d = date.split('-');
    let y: i64 = d.next()?.parse().ok()?;
    let m: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next()?.parse().ok()?;
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let mut t = time.split(':');
    let hh: i64 = t.next()?.parse().ok()?;
    let mm: i64 = t.next().unwrap_or("0").parse().ok()?;
    let sec = t.next().unwrap_or("0");
    let (ss, frac) = sec.split_once('.').unwrap_or((sec, ""));
    let ss: i64 = ss.parse().ok()?;
    if !frac.chars().all(|c| c.is_ascii_digit()) || frac.len() > 9 {
        return None;
    }
    let frac_ns: i64 = format!("{frac:0<9}").parse().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(secs as i128 * 1_000_000_000 + frac_ns as i128)
}

/// Reads a Vidur interval trace (`--interval_generator_config_type trace`): the
/// `arrival_time` column (datetimes), restricted to `start < t < end`, turned into whole
/// seconds since the earliest kept row (floored, as Vidur's `// pd.Timedelta("1s")`), scaled
/// by `time_scale`. Rows keep file order, as in Vidur; the result feeds
/// [`ArrivalSpec::Trace`](super::ArrivalSpec::Trace).
pub fn read_vidur_interval_trace(
    path: impl AsRef<Path>,
    start: &str,
    end: &str,
    time_scale: f64,
) -> Result<Vec<f64>> {
    let path = path.as_ref();
    let bad_bound = |what: &str, v: &str| {
        Error::Workload(format!(
            "interval trace {what} time '{v}' is not a date-time"
        ))
    };
    let start_ns = parse_datetime_ns(start).ok_or_else(|| bad_bound("start", start))?;
    let end_ns = parse_datetime_ns(end).ok_or_else(|| bad_bound("end", end))?;
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(open(path)?);
    let headers = rdr
        .headers()
        .map_err(|e| Error::csv(path, 1, e.to_string()))?
        .clone();
    let col = headers
        .iter()
        .position(|h| h.trim() == "arrival_time")
        .ok_or_else(|| Error::csv(path, 1, "missing column 'arrival_time'"))?;
    let mut kept = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = rec
            .as_ref()
            .ok()
            .and_then(|r| r.position())
            .map_or(i as u64 + 2, |p| p.line());
        let rec = rec.map_err(|e| Error::csv(path, line, e.to_string()))?;
        let cell = rec.get(col).unwrap_or("");
        let t = parse_datetime_ns(cell).ok_or_else(|| {
            Error::csv(
                path,
                line,
                format!("arrival_time: not a date-time: '{cell}'"),
            )
        })?;
        if t > start_ns && t < end_ns {
            kept.push(t);
        }
    }
    let Some(&min) = kept.iter().min() else {
        return Err(Error::Workload(format!(
            "{}: no arrival_time between {start} and {end}",
            path.display()
        )));
    };
    Ok(kept
        .iter()
        .map(|&t| ((t - min) / 1_000_000_000) as f64 * time_scale)
        .collect())
}

#[cfg(test)]
mod interval_trace_tests {
    use super::*;

    #[test]
    fn datetimes_parse_like_pandas() {
        assert_eq!(parse_datetime_ns("1970-01-01 00:00:00"), Some(0));
        assert_eq!(
            parse_datetime_ns("1970-01-04 12:00:01.5"),
            Some(((3 * 86_400 + 12 * 3600 + 1) as i128) * 1_000_000_000 + 500_000_000)
        );
        assert_eq!(
            parse_datetime_ns("2024-02-29"),
            Some(1_709_164_800 * 1_000_000_000)
        );
        assert_eq!(parse_datetime_ns("yesterday"), None);
    }

    #[test]
    fn interval_trace_filters_floors_and_scales() {
        let dir = std::env::temp_dir().join(format!("simfid-itrace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t.csv");
        std::fs::write(
            &p,
            "arrival_time,x\n1970-01-04 11:59:59,1\n1970-01-04 12:00:00.5,1\n\
             1970-01-04 12:00:02.4,1\n1970-01-04 12:00:01.9,1\n1970-01-04 15:00:00,1\n",
        )
        .unwrap();
        let t = read_vidur_interval_trace(&p, "1970-01-04 12:00:00", "1970-01-04 15:00:00", 2.0)
            .unwrap();
        assert_eq!(t, vec![0.0, 2.0, 2.0]);
        std::fs::write(&p, "arrival_time\nnot-a-date\n").unwrap();
        let e = read_vidur_interval_trace(&p, "1970-01-01", "2000-01-01", 1.0).unwrap_err();
        assert!(e.to_string().contains(":2:"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
