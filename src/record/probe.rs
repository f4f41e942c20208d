//! What the server and the machine say about themselves, for a fixture's provenance.

use std::time::Duration;

use crate::error::{Error, Result};

/// Facts gathered from the server before a recording.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerFacts {
    /// Model ids listed by `GET /v1/models`.
    pub models: Vec<String>,
    /// The `server` response header (e.g. `uvicorn`).
    pub server_header: Option<String>,
    /// `version` from `GET /version` (vLLM) when the server has it.
    pub version: Option<String>,
    /// The `/v1/models` answer, abridged.
    pub models_response: Option<serde_json::Value>,
}

/// Asks `GET {base}/models` and `GET {root}/version`. An unreachable server is an error (a
/// recording against it would only collect connection errors); a server without these
/// endpoints is not.
pub async fn server_facts(client: &reqwest::Client, base_url: &str) -> Result<ServerFacts> {
    let base = base_url.trim_end_matches('/');
    let models_url = format!("{base}/models");
    let net = |message: String| Error::Network {
        url: models_url.clone(),
        message,
    };
    let resp = client
        .get(&models_url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| {
            net(format!(
                "server unreachable: {}",
                super::client::error_chain(&e)
            ))
        })?;
    let mut facts = ServerFacts {
        server_header: resp
            .headers()
            .get("server")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        ..ServerFacts::default()
    };
    if resp.status().is_success()
        && let Ok(v) = resp.json::<serde_json::Value>().await
    {
        if let Some(data) = v.get("data").and_then(|d| d.as_array()) {
            facts.models = data
                .iter()
                .filter_map(|m| m.get("id").and_then(|i| i.as_str()).map(str::to_string))
                .collect();
        }
        let text = v.to_string();
        if text.len() <= 4096 {
            facts.models_response = Some(v);
        }
    }
    let root = base.strip_suffix("/v1").unwrap_or(base);
    if let Ok(r) = client
        .get(format!("{root}/version"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        && r.status().is_success()
        && let Ok(v) = r.json::<serde_json::Value>().await
    {
        facts.version = v
            .get("version")
            .and_then(|x| x.as_str())
            .map(str::to_string);
    }
    Ok(facts)
}

/// Whether the server accepts `ignore_eos` in a completion request, found by sending one
/// tiny non-streamed request with it (`max_tokens` 1, `temperature` 0 — some servers fix
/// sampling settings from their first request). Returns the answer and a note for the
/// fixture. A 400/422 answer means "not accepted"; anything else that is not a success is
/// reported as unknown and treated as not accepted.
pub async fn accepts_ignore_eos(
    client: &reqwest::Client,
    base_url: &str,
    model: &str,
    prompt: serde_json::Value,
) -> (bool, String) {
    let url = format!("{}/completions", base_url.trim_end_matches('/'));
    let body = serde_json::json!({
        "model": model,
        "prompt": prompt,
        "max_tokens": 1,
        "temperature": 0,
        "ignore_eos": true,
        "stream": false,
    });
    match client
        .post(&url)
        .json(&body)
        .timeout(Duration::from_secs(120))
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => (true, "probed: accepted".into()),
        Ok(r) => {
            let code = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            let what = if code == 400 || code == 422 {
                "rejected"
            } else {
                "probe failed, not sent"
            };
            (
                false,
                format!(
                    "probed: {what} (HTTP {code}: {})",
                    super::client::excerpt(&text)
                ),
            )
        }
        Err(e) => (
            false,
            format!(
                "probe failed, not sent ({})",
                super::client::error_chain(&e)
            ),
        ),
    }
}

/// The GPU name from `nvidia-smi --query-gpu=name --format=csv,noheader` (first GPU), when
/// the tool exists here.
pub fn local_gpu_name() -> Option<String> {
    let out = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name", "--format=csv,noheader"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8_lossy(&out.stdout);
    s.lines()
        .next()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
}

/// This machine's host name.
pub fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
}

/// The current UTC time as RFC 3339 (`2026-11-28T05:29:02.123Z`).
pub fn utc_now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}
