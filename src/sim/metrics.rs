//! What a simulation reports: one [`RequestRecord`] per request (Vidur's per-request metrics
//! plus the raw time of every output token), streamed to a [`RecordSink`] as requests finish,
//! and a [`SimSummary`]. [`VidurCsvWriter`] writes Vidur's `request_metrics.csv`.

use std::collections::BTreeMap;
use std::io::Write;

use super::request::Request;
use crate::error::Result;

/// Everything simfid knows about one simulated request. Times are simulated seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestRecord {
    /// Request id.
    pub id: u64,
    /// Replica it was routed to.
    pub replica: u32,
    /// Arrival time.
    pub arrived_at: f64,
    /// Prompt tokens at arrival.
    pub prefill_tokens: u32,
    /// Output tokens at arrival.
    pub decode_tokens: u32,
    /// Prompt tokens after the last restart (Vidur divides its normalised metrics by this, B8).
    pub final_prefill_tokens: u32,
    /// Output tokens after the last restart.
    pub final_decode_tokens: u32,
    /// Whether the request finished.
    pub completed: bool,
    /// First time it was scheduled.
    pub scheduled_at: f64,
    /// End of its first prefill (time of the first output token).
    pub prefill_completed_at: f64,
    /// Completion time.
    pub completed_at: f64,
    /// Sum of the execution times of the batch stages it was part of.
    pub execution_time: f64,
    /// Same, GPU model time only.
    pub model_execution_time: f64,
    /// Idle time between its stage executions after the first (Vidur's preemption time).
    pub preempted_time: f64,
    /// First schedule − arrival.
    pub scheduling_delay: f64,
    /// Times it was restarted (recompute preemption).
    pub restarts: u32,
    /// Arrival − previous arrival (`None` for the first request).
    pub inter_arrival: Option<f64>,
    /// Time of every output token, in order (`decode_tokens` entries when completed).
    pub token_times: Vec<f64>,
}

impl RequestRecord {
    pub(crate) fn fill_from(&mut self, r: &Request) {
        self.id = r.id;
        self.replica = r.replica;
        self.arrived_at = r.arrived_at;
        self.prefill_tokens = r.orig_prefill;
        self.decode_tokens = r.orig_decode;
        self.final_prefill_tokens = r.prefill;
        self.final_decode_tokens = r.decode;
        self.completed = r.completed;
        self.scheduled_at = r.scheduled_at;
        self.prefill_completed_at = r.prefill_completed_at;
        self.completed_at = r.completed_at;
        self.execution_time = r.execution_time;
        self.model_execution_time = r.model_execution_time;
        self.preempted_time = r.preempted_time;
        self.scheduling_delay = r.scheduling_delay;
        self.restarts = r.restarts;
        self.inter_arrival = r.inter_arrival;
    }

    /// Vidur's `prefill_e2e_time` (TTFT): first prefill end − arrival.
    pub fn ttft(&self) -> f64 {
        self.prefill_completed_at - self.arrived_at
    }

    /// Vidur's `request_e2e_time`: completion − arrival.
    pub fn e2e(&self) -> f64 {
        self.completed_at - self.arrived_at
    }

    /// Vidur's 21 `request_metrics.csv` values for this request, in column order, as
    /// `None` for empty cells (the latency columns of unfinished requests).
    pub fn vidur_row(&self) -> [Option<VidurValue>; 21] {
        use VidurValue::{F, I};
        let d = self.final_decode_tokens as f64;
        let p = self.final_prefill_tokens as f64;
        let c = self.completed;
        let lat = |v: f64| if c { Some(F(v)) } else { None };
        let e2e = self.completed_at - self.arrived_at;
        let exec_pre = self.execution_time + self.preempted_time;
        [
            Some(I(self.id as i64)),
            lat(e2e),
            lat(e2e / d),
            lat(self.execution_time),
            lat(self.execution_time / d),
            lat(self.model_execution_time),
            lat(self.model_execution_time / d),
            lat(self.preempted_time),
            lat(self.scheduling_delay),
            lat(exec_pre),
            lat(exec_pre / d),
            lat(self.prefill_completed_at - self.arrived_at),
            lat(self.prefill_completed_at - self.scheduled_at),
            lat((self.prefill_completed_at - self.scheduled_at) / p),
            lat((self.completed_at - self.prefill_completed_at) / d),
            self.inter_arrival.map(F),
            Some(I((self.prefill_tokens + self.decode_tokens) as i64)),
            Some(I(self.prefill_tokens as i64)),
            Some(I(self.decode_tokens as i64)),
            Some(F(self.prefill_tokens as f64 / self.decode_tokens as f64)),
            if c {
                Some(I(self.restarts as i64))
            } else {
                None
            },
        ]
    }
}

/// One cell of Vidur's `request_metrics.csv`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VidurValue {
    /// An integer column.
    I(i64),
    /// A float column (printed like Python's `repr`).
    F(f64),
}

/// The header of Vidur's `request_metrics.csv`.
pub const VIDUR_REQUEST_METRICS_HEADER: [&str; 21] = [
    "Request Id",
    "request_e2e_time",
    "request_e2e_time_normalized",
    "request_execution_time",
    "request_execution_time_normalized",
    "request_model_execution_time",
    "request_model_execution_time_normalized",
    "request_preemption_time",
    "request_scheduling_delay",
    "request_execution_plus_preemption_time",
    "request_execution_plus_preemption_time_normalized",
    "prefill_e2e_time",
    "prefill_time_execution_plus_preemption",
    "prefill_time_execution_plus_preemption_normalized",
    "decode_time_execution_plus_preemption_normalized",
    "request_inter_arrival_delay",
    "request_num_tokens",
    "request_num_prefill_tokens",
    "request_num_decode_tokens",
    "request_pd_ratio",
    "request_num_restarts",
];

/// Receives request records as the simulation produces them.
pub trait RecordSink {
    /// Called once per request: when it completes, or at the end of the run if it did not.
    fn record(&mut self, rec: &RequestRecord) -> Result<()>;

    /// Called when request `id` produces its output token number `index` (0-based) at
    /// simulated time `t`, before the request's record. Default: nothing.
    fn token(&mut self, id: u64, index: u32, t: f64) {
        let _ = (id, index, t);
    }
}

impl RecordSink for Vec<RequestRecord> {
    fn record(&mut self, rec: &RequestRecord) -> Result<()> {
        self.push(rec.clone());
        Ok(())
    }
}

/// Counts of a finished simulation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimSummary {
    /// Requests that arrived.
    pub arrived: u64,
    /// Requests that completed.
    pub completed: u64,
    /// Requests left unfinished.
    pub unfinished: u64,
    /// Batches (iterations) executed.
    pub batches: u64,
    /// Restarts of completed requests.
    pub restarts: u64,
    /// Time of the last event (Vidur's "Simulation ended at").
    pub end_time_s: f64,
    /// Stopped by `time_limit`.
    pub hit_time_limit: bool,
    /// Ran out of events with requests unfinished (a replica could not make progress).
    pub stalled: bool,
    /// KV blocks per replica.
    pub kv_blocks_per_replica: u64,
    /// KV blocks still allocated at the end that belong to no unfinished request (Vidur's
    /// faster_transformer leaks the blocks of requests that finish before their batch does).
    pub leaked_kv_blocks: u64,
}

/// Appends `x` to `out` as Python's `repr` prints it (shortest round-trip digits; scientific
/// notation below 1e-4 and from 1e16 on), so simfid's CSVs read like Vidur's. No allocation.
pub fn write_py_float(out: &mut String, x: f64) {
    let mut bytes = Vec::with_capacity(32);
    write_py_float_bytes(&mut bytes, x);
    out.push_str(std::str::from_utf8(&bytes).unwrap_or("nan"));
}

/// [`write_py_float`] into a byte buffer (the CSV writers' hot path).
pub fn write_py_float_bytes(out: &mut Vec<u8>, x: f64) {
    if x.is_nan() {
        out.extend_from_slice(b"nan");
        return;
    }
    if x.is_infinite() {
        out.extend_from_slice(if x > 0.0 { b"inf" } else { b"-inf" });
        return;
    }
    if x == 0.0 {
        out.extend_from_slice(if x.is_sign_negative() {
            b"-0.0"
        } else {
            b"0.0"
        });
        return;
    }
    // Shortest round-trip digits from ryu, in either of its forms ("0.00123", "1.23e-7").
    let mut buf = ryu::Buffer::new();
    let text = buf.format_finite(x.abs()).as_bytes();
    let mut digits = [0u8; 24];
    let mut n = 0usize;
    let mut point: Option<i32> = None; // digits before the decimal point, in `text`'s form
    let mut exp: i32 = 0;
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        match c {
            b'0'..=b'9' => {
                digits[n] = c;
                n += 1;
            }
            b'.' => point = Some(n as i32),
            b'e' | b'E' => {
                let (neg, start) = match text.get(i + 1) {
                    Some(b'-') => (true, i + 2),
                    Some(b'+') => (false, i + 2),
                    _ => (false, i + 1),
                };
                let mut e = 0i32;
                for &d in &text[start..] {
                    e = e * 10 + (d - b'0') as i32;
                }
                exp = if neg { -e } else { e };
                break;
            }
            _ => {}
        }
        i += 1;
    }
    let point = point.unwrap_or(n as i32);
    // Normalise to d1 d2 … dn × 10^(dexp), no leading/trailing zeros.
    let lead = digits[..n].iter().take_while(|&&d| d == b'0').count();
    let trail = digits[lead..n]
        .iter()
        .rev()
        .take_while(|&&d| d == b'0')
        .count();
    let sig = &digits[lead..n - trail];
    // Decimal exponent of the first significant digit.
    let e10 = point - lead as i32 - 1 + exp;
    let sig_str = sig;
    let k = sig.len() as i32;
    if x < 0.0 {
        out.push(b'-');
    }
    if (-4..16).contains(&e10) {
        let before = e10 + 1;
        if before <= 0 {
            out.extend_from_slice(b"0.");
            for _ in 0..-before {
                out.push(b'0');
            }
            out.extend_from_slice(sig_str);
        } else if before >= k {
            out.extend_from_slice(sig_str);
            for _ in 0..(before - k) {
                out.push(b'0');
            }
            out.extend_from_slice(b".0");
        } else {
            let (a, b) = sig_str.split_at(before as usize);
            out.extend_from_slice(a);
            out.push(b'.');
            out.extend_from_slice(b);
        }
    } else {
        let (a, b) = sig_str.split_at(1);
        out.extend_from_slice(a);
        if !b.is_empty() {
            out.push(b'.');
            out.extend_from_slice(b);
        }
        out.push(b'e');
        out.push(if e10 < 0 { b'-' } else { b'+' });
        use std::io::Write as _;
        let _ = write!(out, "{:02}", e10.unsigned_abs());
    }
}

/// Formats a float as Python's `repr` does; see [`write_py_float`].
pub fn py_float_repr(x: f64) -> String {
    let mut s = String::new();
    write_py_float(&mut s, x);
    s
}

/// Writes Vidur's `request_metrics.csv`, rows sorted by request id like Vidur's, while the
/// simulation streams: a row is held back only until every lower id has been written, so
/// memory follows the requests in flight, not the length of the trace.
pub struct VidurCsvWriter<W: Write> {
    out: W,
    next_id: u64,
    pending: BTreeMap<u64, Vec<u8>>,
    line: Vec<u8>,
    /// Buffers of written rows, reused for rows held back (no allocation per row).
    spare: Vec<Vec<u8>>,
}

impl<W: Write> VidurCsvWriter<W> {
    /// Writes the header and returns the writer. Ids are expected to be `0..n` (as Vidur
    /// assigns them); other ids are written in id order at [`finish`](Self::finish).
    pub fn new(mut out: W) -> std::io::Result<Self> {
        writeln!(out, "{}", VIDUR_REQUEST_METRICS_HEADER.join(","))?;
        Ok(VidurCsvWriter {
            out,
            next_id: 0,
            pending: BTreeMap::new(),
            line: Vec::new(),
            spare: Vec::new(),
        })
    }

    fn format(&mut self, rec: &RequestRecord) {
        use std::io::Write as _;
        self.line.clear();
        for (i, v) in rec.vidur_row().iter().enumerate() {
            if i > 0 {
                self.line.push(b',');
            }
            match v {
                None => {}
                Some(VidurValue::I(n)) => {
                    let _ = write!(self.line, "{n}");
                }
                Some(VidurValue::F(x)) => write_py_float_bytes(&mut self.line, *x),
            }
        }
        self.line.push(b'\n');
    }

    fn flush_ready(&mut self) -> std::io::Result<()> {
        while let Some(row) = self.pending.remove(&self.next_id) {
            self.out.write_all(&row)?;
            self.next_id += 1;
            self.spare.push(row);
        }
        Ok(())
    }

    /// Writes every held row and returns the output.
    pub fn finish(mut self) -> std::io::Result<W> {
        for row in std::mem::take(&mut self.pending).into_values() {
            self.out.write_all(&row)?;
        }
        self.out.flush()?;
        Ok(self.out)
    }

    /// Rows held back waiting for a lower id.
    pub fn held_rows(&self) -> usize {
        self.pending.len()
    }
}

impl<W: Write> RecordSink for VidurCsvWriter<W> {
    fn record(&mut self, rec: &RequestRecord) -> Result<()> {
        self.format(rec);
        let io = |e| crate::Error::io("request_metrics.csv", e);
        if rec.id == self.next_id {
            self.out.write_all(&self.line).map_err(io)?;
            self.next_id += 1;
            self.flush_ready().map_err(io)?;
        } else {
            let mut row = self.spare.pop().unwrap_or_default();
            row.clear();
            row.extend_from_slice(&self.line);
            self.pending.insert(rec.id, row);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::py_float_repr;

    #[test]
    fn float_repr_matches_python() {
        for (x, s) in [
            (0.0, "0.0"),
            (1.0, "1.0"),
            (0.15613913599999973, "0.15613913599999973"),
            (9.070392760181002e-05, "9.070392760181002e-05"),
            (0.0001, "0.0001"),
            (15.785714285714286, "15.785714285714286"),
            (1e16, "1e+16"),
            (123456789012345.6, "123456789012345.6"),
            (-2.5e-7, "-2.5e-07"),
            (1.2345e-5, "1.2345e-05"),
            (1e-4, "0.0001"),
            (9.999e-5, "9.999e-05"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (1e15, "1000000000000000.0"),
            (123.0, "123.0"),
            (958.889413, "958.889413"),
        ] {
            assert_eq!(py_float_repr(x), s);
        }
    }
}
