//! Vidur's exported prediction tables: exact lookups, for bit-level parity with Vidur.
//!
//! Vidur trains one regression model per operator and evaluates it once on a dense grid
//! (`vidur/execution_time_predictor/sklearn_execution_time_predictor.py`); the simulation then only looks values up. Those grids, written by Vidur into its
//! cache as `<op>.csv` (shipped gzipped in `fixtures/vidur/predictions/<config>/`), are read
//! here as they are: the same doubles, the same keys, so a simulation driven by them reproduces
//! Vidur's batch times bit for bit. A key outside the grid is an error, as it is in Vidur.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{LinearOp, OpTimes};
use crate::error::{Error, Result};

/// Vidur's dense prediction tables for one model/device/parallelism configuration.
#[derive(Debug, Clone)]
pub struct PredictionTables {
    dir: PathBuf,
    linear: HashMap<LinearOp, Vec<f64>>,
    kv_cache_save: Vec<f64>,
    all_reduce: Option<Vec<f64>>,
    send_recv: Option<Vec<f64>>,
    decode: HashMap<(u32, u32), f64>,
    prefill: HashMap<(u32, u64), f64>,
}

/// Reads `<dir>/<stem>.csv.gz` or `<dir>/<stem>.csv`; `None` when neither exists.
fn open_table(dir: &Path, stem: &str) -> Result<Option<(PathBuf, String)>> {
    for (name, gz) in [
        (format!("{stem}.csv.gz"), true),
        (format!("{stem}.csv"), false),
    ] {
        let path = dir.join(name);
        if !path.is_file() {
            continue;
        }
        let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
        let mut text = String::new();
        let read = if gz {
            flate2::read::GzDecoder::new(file).read_to_string(&mut text)
        } else {
            std::io::BufReader::new(file).read_to_string(&mut text)
        };
        read.map_err(|e| Error::io(&path, e))?;
        return Ok(Some((path, text)));
    }
    Ok(None)
}

/// Parses a table whose columns are `features..., prediction`; returns (key values, prediction).
fn parse_rows(path: &Path, text: &str, features: &[&str]) -> Result<Vec<(Vec<u64>, f64)>> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| Error::csv(path, 1, "empty file"))?
        .split(',')
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| Error::csv(path, 1, format!("missing column '{name}'")))
    };
    let idx: Vec<usize> = features.iter().map(|f| col(f)).collect::<Result<_>>()?;
    let pred = col("prediction")?;
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        let lineno = i as u64 + 2;
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').collect();
        let cell = |j: usize| {
            cells.get(j).map(|c| c.trim()).ok_or_else(|| {
                Error::csv(path, lineno, format!("expected {} columns", header.len()))
            })
        };
        let mut key = Vec::with_capacity(idx.len());
        for (&j, name) in idx.iter().zip(features) {
            let c = cell(j)?;
            // Features are integers, sometimes printed as floats ("64.0").
            let v: f64 = c
                .parse()
                .map_err(|_| Error::csv(path, lineno, format!("{name}: not a number: '{c}'")))?;
            if v < 0.0 || v.fract() != 0.0 {
                return Err(Error::csv(
                    path,
                    lineno,
                    format!("{name}: not a count: '{c}'"),
                ));
            }
            key.push(v as u64);
        }
        let c = cell(pred)?;
        let p: f64 = c
            .parse()
            .map_err(|_| Error::csv(path, lineno, format!("prediction: not a number: '{c}'")))?;
        rows.push((key, p));
    }
    Ok(rows)
}

fn dense_by_tokens(path: &Path, rows: Vec<(Vec<u64>, f64)>) -> Result<Vec<f64>> {
    let max = rows.iter().map(|(k, _)| k[0]).max().unwrap_or(0) as usize;
    if max > 50_000_000 {
        return Err(Error::csv(
            path,
            0,
            format!("num_tokens {max} is implausibly large"),
        ));
    }
    let mut v = vec![f64::NAN; max + 1];
    for (k, p) in rows {
        v[k[0] as usize] = p;
    }
    Ok(v)
}

impl PredictionTables {
    /// Loads every table of a prediction folder. The linear ops, `attn_kv_cache_save`,
    /// `attn_decode` and `attn_prefill` are required; `all_reduce` and `send_recv` are optional
    /// (needed only for TP > 1 and PP > 1).
    pub fn load(dir: &Path) -> Result<PredictionTables> {
        let required = |stem: &str| -> Result<(PathBuf, String)> {
            open_table(dir, stem)?.ok_or_else(|| {
                Error::Exec(format!(
                    "prediction table '{stem}.csv.gz' (or .csv) not found in {}",
                    dir.display()
                ))
            })
        };
        let mut linear = HashMap::new();
        for op in LinearOp::ALL {
            let (path, text) = required(op.name())?;
            let rows = parse_rows(&path, &text, &["num_tokens"])?;
            linear.insert(op, dense_by_tokens(&path, rows)?);
        }
        let (path, text) = required("attn_kv_cache_save")?;
        let kv_cache_save = dense_by_tokens(&path, parse_rows(&path, &text, &["num_tokens"])?)?;
        let optional = |stem: &str| -> Result<Option<Vec<f64>>> {
            match open_table(dir, stem)? {
                None => Ok(None),
                Some((path, text)) => Ok(Some(dense_by_tokens(
                    &path,
                    parse_rows(&path, &text, &["num_tokens"])?,
                )?)),
            }
        };
        let all_reduce = optional("all_reduce")?;
        let send_recv = optional("send_recv")?;
        let (path, text) = required("attn_decode")?;
        let decode = parse_rows(&path, &text, &["batch_size", "kv_cache_size"])?
            .into_iter()
            .map(|(k, p)| ((k[0] as u32, k[1] as u32), p))
            .collect();
        let (path, text) = required("attn_prefill")?;
        let prefill = parse_rows(
            &path,
            &text,
            &["kv_cache_size", "prefill_chunk_size_squared"],
        )?
        .into_iter()
        .map(|(k, p)| ((k[0] as u32, k[1]), p))
        .collect();
        Ok(PredictionTables {
            dir: dir.to_path_buf(),
            linear,
            kv_cache_save,
            all_reduce,
            send_recv,
            decode,
            prefill,
        })
    }

    /// The folder the tables were read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn by_tokens(&self, table: &[f64], what: &str, tokens: u32) -> Result<f64> {
        match table.get(tokens as usize) {
            Some(v) if !v.is_nan() => Ok(*v),
            _ => Err(Error::OutOfRange {
                what: format!(
                    "{what} at num_tokens={tokens} (tables in {})",
                    self.dir.display()
                ),
            }),
        }
    }
}

impl OpTimes for PredictionTables {
    fn linear(&self, op: LinearOp, tokens: u32) -> Result<f64> {
        self.by_tokens(&self.linear[&op], op.name(), tokens)
    }

    fn kv_cache_save(&self, tokens: u32) -> Result<f64> {
        self.by_tokens(&self.kv_cache_save, "attn_kv_cache_save", tokens)
    }

    fn attn_decode(&self, batch_size: u32, kv: u32) -> Result<f64> {
        self.decode
            .get(&(batch_size, kv))
            .copied()
            .ok_or_else(|| Error::OutOfRange {
                what: format!("attn_decode at batch_size={batch_size}, kv_cache_size={kv}"),
            })
    }

    fn attn_prefill(&self, kv: u32, chunk_sq: u64) -> Result<f64> {
        self.prefill
            .get(&(kv, chunk_sq))
            .copied()
            .ok_or_else(|| Error::OutOfRange {
                what: format!("attn_prefill at kv_cache_size={kv}, prefill_chunk_size²={chunk_sq}"),
            })
    }

    fn all_reduce(&self, tokens: u32) -> Result<f64> {
        match &self.all_reduce {
            Some(t) => self.by_tokens(t, "all_reduce", tokens),
            None => Err(Error::Exec(format!(
                "tensor parallelism needs an all_reduce table in {}",
                self.dir.display()
            ))),
        }
    }

    fn send_recv(&self, tokens: u32) -> Result<f64> {
        match &self.send_recv {
            Some(t) => self.by_tokens(t, "send_recv", tokens),
            None => Err(Error::Exec(format!(
                "pipeline parallelism needs a send_recv table in {}",
                self.dir.display()
            ))),
        }
    }
}
