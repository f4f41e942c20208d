//! [`Table`]: one profile CSV read whole, exact duplicate rows dropped, with typed cells and
//! errors that name the file and line.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub(super) struct Table {
    path: PathBuf,
    header: Vec<String>,
    /// `(1-based line, fields)`.
    pub(super) rows: Vec<(u64, Vec<String>)>,
}

impl Table {
    pub(super) fn read(path: &Path) -> Result<Table> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(std::io::BufReader::new(file));
        let header = reader
            .headers()
            .map_err(|e| csv_error(path, &e))?
            .iter()
            .map(str::to_string)
            .collect();
        let mut seen = HashSet::new();
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| csv_error(path, &e))?;
            let line = record.position().map_or(0, |p| p.line());
            let fields: Vec<String> = record.iter().map(str::to_string).collect();
            if seen.insert(fields.clone()) {
                rows.push((line, fields));
            }
        }
        Ok(Table {
            path: path.to_path_buf(),
            header,
            rows,
        })
    }

    /// The index of a column that must exist.
    pub(super) fn column(&self, name: &str) -> Result<usize> {
        self.optional_column(name).ok_or_else(|| {
            Error::csv(
                &self.path,
                1,
                format!("missing column '{name}' in the header"),
            )
        })
    }

    pub(super) fn optional_column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    pub(super) fn field<'a>(&self, line: u64, fields: &'a [String], col: usize) -> Result<&'a str> {
        fields.get(col).map(|s| s.trim()).ok_or_else(|| {
            Error::csv(
                &self.path,
                line,
                format!("missing field '{}'", self.header[col]),
            )
        })
    }

    /// A finite number.
    pub(super) fn number(&self, line: u64, fields: &[String], col: usize) -> Result<f64> {
        let text = self.field(line, fields, col)?;
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(Error::csv(
                &self.path,
                line,
                format!("'{}' is not a finite number: '{text}'", self.header[col]),
            )),
        }
    }

    /// A finite number, or 0 for an empty cell or a missing column (`col == None`).
    pub(super) fn number_or_zero(
        &self,
        line: u64,
        fields: &[String],
        col: Option<usize>,
    ) -> Result<f64> {
        match col {
            None => Ok(0.0),
            Some(c) if self.field(line, fields, c)?.is_empty() => Ok(0.0),
            Some(c) => self.number(line, fields, c),
        }
    }

    pub(super) fn boolean(&self, line: u64, fields: &[String], col: usize) -> Result<bool> {
        match self.field(line, fields, col)? {
            "True" | "true" | "1" => Ok(true),
            "False" | "false" | "0" => Ok(false),
            text => Err(Error::csv(
                &self.path,
                line,
                format!("'{}' is not a boolean: '{text}'", self.header[col]),
            )),
        }
    }

    /// Whether a row matches every numeric filter `(column, value)`.
    pub(super) fn matches(
        &self,
        line: u64,
        fields: &[String],
        filters: &[(usize, f64)],
    ) -> Result<bool> {
        for &(col, want) in filters {
            if self.number(line, fields, col)? != want {
                return Ok(false);
            }
        }
        Ok(true)
    }

    pub(super) fn no_rows(&self, filters: &str) -> Error {
        Error::Exec(format!(
            "{}: no profile rows with {filters}",
            self.path.display()
        ))
    }
}

fn csv_error(path: &Path, e: &csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line());
    Error::csv(path, line, e.to_string())
}

/// Numeric filters `(column name, value)` resolved to column indices.
pub(super) fn resolve_filters(table: &Table, filters: &[(&str, f64)]) -> Result<Vec<(usize, f64)>> {
    filters
        .iter()
        .map(|&(name, v)| Ok((table.column(name)?, v)))
        .collect()
}

pub(super) fn describe(filters: &[(&str, f64)]) -> String {
    filters
        .iter()
        .map(|(n, v)| format!("{n} == {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn median_column(op: &str) -> String {
    format!("time_stats.{op}.median")
}
