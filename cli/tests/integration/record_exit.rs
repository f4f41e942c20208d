//! Issue 13: `simfid record` never dies without a summary and exits with a code CI can use —
//! a server that answers 404 while a large prompt is still being written does not kill the
//! run by SIGPIPE, failed requests give exit code 4 unless `--max-failed-fraction` tolerates
//! them — and bad inputs are named once, with their file and line.

use simfid::fixture::read_run;

use super::loopback::{Scratch, misbehaving_server, simfid, write_workload};

/// A raw-TCP server on 127.0.0.1:0 that lists one model and answers every completion with
/// an immediate 404, closing the connection without reading the request's body (as a server
/// that refuses a route early does): a client still writing a large body gets EPIPE.
fn refusing_server() -> String {
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
                tokio::spawn(refuse(sock));
            }
        });
    });
    format!("http://{}/v1", rx.recv().unwrap())
}

async fn refuse(mut sock: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut tmp).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
    let (status, body) = if buf.starts_with(b"GET /v1/models") {
        (
            "200 OK",
            r#"{"object":"list","data":[{"id":"m","object":"model"}]}"#,
        )
    } else {
        (
            "404 Not Found",
            r#"{"error":{"message":"no such route","type":"NotFoundError","code":404}}"#,
        )
    };
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.write_all(answer.as_bytes()).await;
    // As uvicorn does when it answers early: close its side (FIN) while the client is still
    // writing, then the socket, the body unread: the reset that follows the FIN makes the
    // client's next write fail with EPIPE, which raises SIGPIPE.
    let _ = sock.shutdown().await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
}

fn record(
    url: &str,
    w: &std::path::Path,
    out: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    simfid()
        .args(["record", "--url", url, "--workload"])
        .arg(w)
        .arg("-o")
        .arg(out)
        .args(["--no-progress", "--ignore-eos", "off", "--timeout", "20"])
        .args(extra)
        .output()
        .unwrap()
}

/// Before the fix the process died by SIGPIPE (exit 141 in a shell, no summary, the later
/// requests missing from the fixture).
#[test]
fn serial_a_server_closing_mid_upload_fails_the_request_not_the_run() {
    let dir = Scratch::new("sigpipe");
    let url = refusing_server();
    let w = dir.path("w.csv");
    // Prompts of 3M words (~24 MB each) overflow the loopback socket buffers, so the client
    // is still writing when the server's reset arrives; the last request is small.
    write_workload(&w, &[(0.0, 3_000_000, 2), (0.0, 3_000_000, 2), (0.2, 4, 2)]);
    let out = dir.path("run.jsonl");
    let res = record(&url, &w, &out, &[]);
    let stdout = String::from_utf8_lossy(&res.stdout);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(
        res.status.code(),
        Some(4),
        "{:?}\n{stdout}\n{stderr}",
        res.status
    );
    assert!(stdout.contains("3 requests: 0 ok, 3 failed"), "{stdout}");
    assert!(stderr.contains("3 of 3 requests failed"), "{stderr}");
    let (run, info) = read_run(&out).unwrap();
    assert!(!info.truncated_last_line);
    assert_eq!(run.requests.len(), 3);
    for r in &run.requests {
        let e = r.error.as_deref().unwrap();
        assert!(
            e.starts_with("HTTP 404") || e.starts_with("connection error"),
            "{e}"
        );
    }
    assert!(
        run.requests[2]
            .error
            .as_deref()
            .unwrap()
            .starts_with("HTTP 404"),
        "{:?}",
        run.requests[2]
    );
}

/// Before the fix `simfid record` exited 0 whatever failed.
#[test]
fn serial_failed_requests_set_the_exit_code_unless_tolerated() {
    let dir = Scratch::new("failexit");
    let url = misbehaving_server();
    let w = dir.path("w.csv");
    // max_tokens 3: a correct stream; 4: HTTP 500 (see loopback::Behaviour).
    write_workload(&w, &[(0.0, 5, 3), (0.01, 5, 3), (0.02, 5, 4), (0.03, 5, 3)]);
    let out = dir.path("run.jsonl");
    let res = record(&url, &w, &out, &[]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("1 of 4 requests failed (25.0%), more than --max-failed-fraction 0"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&res.stdout).contains("3 ok, 1 failed"));
    assert_eq!(read_run(&out).unwrap().0.requests.len(), 4);
    let res = record(&url, &w, &out, &["--max-failed-fraction", "0.25"]);
    assert_eq!(res.status.code(), Some(0), "{res:?}");
    let res = record(&url, &w, &out, &["--max-failed-fraction", "0.2"]);
    assert_eq!(res.status.code(), Some(4), "{res:?}");
    let res = record(&url, &w, &out, &["--max-failed-fraction", "1.5"]);
    assert_eq!(res.status.code(), Some(2), "{res:?}");
    assert!(String::from_utf8_lossy(&res.stderr).contains("between 0 and 1"));
}

/// The small items of issue 13: a missing file is named once, a missing config.json is not
/// "an unknown model", a 0-token workload field names its file and line.
#[test]
fn bad_inputs_are_named_once_with_file_and_line() {
    let dir = Scratch::new("badinputs");
    let missing = dir.path("missing.csv");
    let res = simfid()
        .args(["record", "--url", "http://127.0.0.1:9/v1", "--workload"])
        .arg(&missing)
        .arg("-o")
        .arg(dir.path("run.jsonl"))
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(2));
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert!(err.contains("missing.csv"), "{err}");

    let res = simfid()
        .args(["serve", "--port", "0", "--model"])
        .arg(dir.path("nope/config.json"))
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(2));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(!err.contains("unknown model"), "{err}");
    assert!(
        err.contains("nope/config.json: no such model config"),
        "{err}"
    );

    let w = dir.path("w.csv");
    std::fs::write(
        &w,
        "arrived_at,num_prefill_tokens,num_decode_tokens\n0,5,3\n0.1,5,0\n",
    )
    .unwrap();
    let res = simfid()
        .args(["record", "--url", "http://127.0.0.1:9/v1", "--workload"])
        .arg(&w)
        .arg("-o")
        .arg(dir.path("run.jsonl"))
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(2));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("w.csv:3: column `num_decode_tokens` is 0"),
        "{err}"
    );
}
