//! Helpers for tests that run the `simfid` binary and loopback servers: scratch folders,
//! `simfid serve` as a child process, and a small purpose-built HTTP server whose answers
//! misbehave on demand.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The simfid binary built for these tests.
pub fn simfid() -> Command {
    Command::new(super::shared::simfid_bin())
}

/// Runs `cmd`, fails the test with its stderr unless it exits 0, and returns its output.
pub fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("run simfid");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// [`run_ok`], its standard output parsed as JSON.
pub fn json_ok(cmd: &mut Command) -> serde_json::Value {
    serde_json::from_slice(&run_ok(cmd).stdout).expect("JSON on stdout")
}

/// A fresh scratch folder under the system temp dir, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("simfid-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `simfid serve` on 127.0.0.1:0 as a child process, killed when dropped.
pub struct ServeChild {
    child: Child,
    /// `http://127.0.0.1:PORT/v1`.
    pub url: String,
}

impl ServeChild {
    pub fn start(extra: &[&str]) -> ServeChild {
        let mut child = simfid()
            .args(["serve", "--host", "127.0.0.1", "--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn simfid serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("simfid serve: listening on ")
            .unwrap_or_else(|| panic!("unexpected ready line: {line:?}"))
            .to_string();
        ServeChild { child, url }
    }
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a trace-replay workload CSV.
pub fn write_workload(path: &Path, rows: &[(f64, u32, u32)]) {
    let mut s = String::from("arrived_at,num_prefill_tokens,num_decode_tokens\n");
    for (t, p, d) in rows {
        s.push_str(&format!("{t},{p},{d}\n"));
    }
    std::fs::write(path, s).unwrap();
}

/// How the misbehaving server answers a completion request, chosen by its `max_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// A correct stream of `max_tokens` chunks, usage, `[DONE]`.
    Ok,
    /// HTTP 500 with a JSON error body.
    Status500,
    /// Two chunks, then the connection is dropped mid-body.
    CloseMidStream,
    /// One chunk, then nothing for 30 s.
    Stall,
    /// One chunk, then an event that is not JSON.
    MalformedSse,
    /// A full stream whose usage disagrees with the prompt sent and the chunks streamed.
    WrongUsage,
}

impl Behaviour {
    /// The behaviour for a `max_tokens` value: 3 ok, 4 500, 5 close, 6 stall, 7 malformed,
    /// 8 wrong usage.
    pub fn of(max_tokens: u64) -> Behaviour {
        match max_tokens {
            4 => Behaviour::Status500,
            5 => Behaviour::CloseMidStream,
            6 => Behaviour::Stall,
            7 => Behaviour::MalformedSse,
            8 => Behaviour::WrongUsage,
            _ => Behaviour::Ok,
        }
    }
}

/// A raw-TCP HTTP/1.1 server on 127.0.0.1:0 answering `/v1/models` and streamed
/// `/v1/completions` by [`Behaviour`]; `ignore_eos` gets a 422 as `transformers serve` gives
/// it. Runs on its own thread until the process ends.
pub fn misbehaving_server() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let (sock, _) = listener.accept().await.unwrap();
                tokio::spawn(answer(sock));
            }
        });
    });
    let addr = rx.recv().unwrap();
    format!("http://{addr}/v1")
}

async fn answer(mut sock: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = sock.set_nodelay(true);
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        let Ok(n) = sock.read(&mut tmp).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let Ok(n) = sock.read(&mut tmp).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    let body: serde_json::Value =
        serde_json::from_slice(&buf[head_end..head_end + len]).unwrap_or_default();
    let plain = |status: &str, body: String| {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    if head.starts_with("GET /v1/models") {
        let b = r#"{"object":"list","data":[{"id":"flaky","object":"model"}]}"#.to_string();
        let _ = sock.write_all(plain("200 OK", b).as_bytes()).await;
        return;
    }
    if !head.starts_with("POST /v1/completions") {
        let _ = sock
            .write_all(plain("404 Not Found", "{}".into()).as_bytes())
            .await;
        return;
    }
    if body.get("ignore_eos").is_some() {
        let b = r#"{"detail":"Unexpected keys in the request: {'ignore_eos'}"}"#.to_string();
        let _ = sock
            .write_all(plain("422 Unprocessable Entity", b).as_bytes())
            .await;
        return;
    }
    let max = body["max_tokens"].as_u64().unwrap_or(16);
    let prompt = body["prompt"]
        .as_str()
        .map_or(0, |p| p.split_whitespace().count());
    let behaviour = Behaviour::of(max);
    if behaviour == Behaviour::Status500 {
        let b = r#"{"error":{"message":"CB worker is dead","type":"server_error"}}"#.to_string();
        let _ = sock
            .write_all(plain("500 Internal Server Error", b).as_bytes())
            .await;
        return;
    }
    let _ = sock
        .write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        )
        .await;
    // One HTTP chunk per SSE event.
    let event = |data: &str| {
        let e = format!("data: {data}\n\n");
        format!("{:x}\r\n{e}\r\n", e.len())
    };
    let token = |i: u64, last: bool| {
        event(&format!(
            r#"{{"choices":[{{"index":0,"text":" w{i}","finish_reason":{}}}]}}"#,
            if last { "\"length\"" } else { "null" }
        ))
    };
    let pause = || tokio::time::sleep(Duration::from_millis(2));
    match behaviour {
        Behaviour::CloseMidStream => {
            for i in 0..2 {
                let _ = sock.write_all(token(i, false).as_bytes()).await;
                pause().await;
            }
            // Half a chunk, then the connection goes.
            let _ = sock.write_all(b"40\r\ndata: {\"choi").await;
            return;
        }
        Behaviour::Stall => {
            let _ = sock.write_all(token(0, false).as_bytes()).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
        Behaviour::MalformedSse => {
            let _ = sock.write_all(token(0, false).as_bytes()).await;
            let _ = sock.write_all(event("{not json").as_bytes()).await;
            let _ = sock.write_all(b"0\r\n\r\n").await;
            return;
        }
        _ => {}
    }
    for i in 0..max {
        let _ = sock.write_all(token(i, i + 1 == max).as_bytes()).await;
        pause().await;
    }
    let (p, c) = if behaviour == Behaviour::WrongUsage {
        (prompt as u64 + 1, max + 2)
    } else {
        (prompt as u64, max)
    };
    let usage = format!(
        r#"{{"choices":[],"usage":{{"prompt_tokens":{p},"completion_tokens":{c},"total_tokens":{}}}}}"#,
        p + c
    );
    let _ = sock.write_all(event(&usage).as_bytes()).await;
    // No [DONE], as transformers serve.
    let _ = sock.write_all(b"0\r\n\r\n").await;
}

/// Waits until `f` holds, polling every 20 ms, for at most `secs`.
pub fn wait_for(secs: f64, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + Duration::from_secs_f64(secs);
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}
