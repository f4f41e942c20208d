//! The recorder against servers that fail: 500s, a connection closed mid-stream, a stall past
//! the timeout, malformed SSE, wrong usage counts, an unreachable server, ctrl-C mid-run.
//! Every failure is recorded per request and the run completes.

use std::time::Instant;

use simfid::fixture::{RequestRun, read_run};

use super::loopback::{Scratch, ServeChild, misbehaving_server, simfid, wait_for, write_workload};

fn by_max_tokens(runs: &[RequestRun], max: u32) -> Vec<&RequestRun> {
    runs.iter().filter(|r| r.output_tokens == max).collect()
}

#[test]
fn serial_failures_are_recorded_per_request_and_the_run_completes() {
    let dir = Scratch::new("robust");
    let url = misbehaving_server();
    // max_tokens 3..=8 picks the behaviour (see loopback::Behaviour), twice over.
    let rows: Vec<(f64, u32, u32)> = (0..12)
        .map(|i| (0.01 * i as f64, 5 + i as u32, 3 + (i % 6) as u32))
        .collect();
    let w = dir.path("w.csv");
    write_workload(&w, &rows);
    let out = dir.path("run.jsonl");
    let start = Instant::now();
    let res = simfid()
        .args(["record", "--url", &url, "--workload"])
        .arg(&w)
        .arg("-o")
        .arg(&out)
        .args(["--timeout", "1", "--no-progress"])
        .output()
        .unwrap();
    let took = start.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&res.stdout);
    let stderr = String::from_utf8_lossy(&res.stderr);
    // 8 of 12 requests failed: exit code 4 (issue 13), with a line saying so.
    assert_eq!(res.status.code(), Some(4), "{stdout}\n{stderr}");
    assert!(stderr.contains("8 of 12 requests failed"), "{stderr}");
    // The stalled requests end at their 1 s timeout, not at the server's 30 s.
    assert!(took < 10.0, "took {took} s");
    let (run, info) = read_run(&out).unwrap();
    assert!(!info.truncated_last_line);
    assert_eq!(run.requests.len(), 12);
    let note = run.meta.extra["ignore_eos"].as_str().unwrap();
    assert!(note.contains("rejected (HTTP 422"), "{note}");
    assert_eq!(run.meta.model, "flaky");

    for r in by_max_tokens(&run.requests, 3) {
        assert!(r.ok(), "{r:?}");
        assert_eq!(r.chunks.len(), 3);
        assert_eq!(r.finish_reason.as_deref(), Some("length"));
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert_eq!(r.usage_prompt_tokens, Some(r.prompt_tokens));
    }
    for r in by_max_tokens(&run.requests, 4) {
        let e = r.error.as_deref().unwrap();
        assert!(
            e.starts_with("HTTP 500: ") && e.contains("CB worker is dead"),
            "{e}"
        );
        assert!(r.sent.is_some() && r.chunks.is_empty());
    }
    for r in by_max_tokens(&run.requests, 5) {
        let e = r.error.as_deref().unwrap();
        assert!(e.starts_with("disconnected"), "{e}");
        assert_eq!(r.chunks.len(), 2, "the chunks before the break are kept");
    }
    for r in by_max_tokens(&run.requests, 6) {
        let e = r.error.as_deref().unwrap();
        assert!(e.starts_with("timeout"), "{e}");
        assert_eq!(r.chunks.len(), 1);
    }
    for r in by_max_tokens(&run.requests, 7) {
        let e = r.error.as_deref().unwrap();
        assert!(e.starts_with("malformed SSE event"), "{e}");
        assert!(e.contains("{not json"), "{e}");
        assert_eq!(r.chunks.len(), 1);
    }
    for r in by_max_tokens(&run.requests, 8) {
        assert!(r.error.is_none(), "{r:?}");
        let w = r.warnings.join("\n");
        assert!(
            w.contains("prompt length mismatch: the server counted"),
            "{w}"
        );
        assert!(
            w.contains("usage.completion_tokens is 10 but the chunks carry 8"),
            "{w}"
        );
        assert_eq!(r.usage_completion_tokens, Some(10));
        // Totals come from usage when the server gives them.
        assert_eq!(r.received_tokens(), 10);
    }
    // The summary table names the failures.
    assert!(stdout.contains("4 ok, 8 failed"), "{stdout}");
    assert!(stdout.contains("error: 2 × HTTP 500"), "{stdout}");
}

#[test]
fn serial_an_unreachable_server_fails_fast_with_a_message() {
    let dir = Scratch::new("unreachable");
    let w = dir.path("w.csv");
    write_workload(&w, &[(0.0, 4, 2)]);
    // A port nothing listens on: bind one, learn its number, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let res = simfid()
        .args(["record", "--url", &format!("http://127.0.0.1:{port}/v1")])
        .arg("--workload")
        .arg(&w)
        .arg("-o")
        .arg(dir.path("run.jsonl"))
        .arg("--no-progress")
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(2));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("server unreachable"), "{err}");
}

#[test]
fn malformed_workload_exits_non_zero_naming_the_line() {
    let dir = Scratch::new("badworkload");
    let w = dir.path("w.csv");
    std::fs::write(
        &w,
        "arrived_at,num_prefill_tokens,num_decode_tokens\n0.1,5,3\n0.2,x,3\n",
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
    assert!(err.contains("w.csv:3:"), "{err}");
}

#[test]
fn serial_sigint_mid_run_leaves_a_readable_fixture_with_every_finished_request() {
    let dir = Scratch::new("sigint");
    let serve = ServeChild::start(&[]);
    // 150 requests over ~6 s: the interrupt lands mid-run.
    let rows: Vec<(f64, u32, u32)> = (0..150).map(|i| (0.04 * i as f64, 20, 4)).collect();
    let w = dir.path("w.csv");
    write_workload(&w, &rows);
    let out = dir.path("run.jsonl");
    let mut child = simfid()
        .args(["record", "--url", &serve.url, "--workload"])
        .arg(&w)
        .arg("-o")
        .arg(&out)
        .args(["--no-progress", "--grace", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = || {
        std::fs::read_to_string(&out)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    assert!(
        wait_for(20.0, || lines() > 20),
        "the recorder wrote nothing"
    );
    let before = std::fs::read_to_string(&out).unwrap();
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exited = wait_for(10.0, || child.try_wait().unwrap().is_some());
    if !exited {
        let _ = child.kill();
        panic!("simfid record did not stop after SIGINT");
    }
    let code = child.wait().unwrap().code();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    let (run, info) = read_run(&out).unwrap();
    assert!(!info.truncated_last_line);
    // Every request is in the fixture: finished ones as they were, the rest as errors.
    assert_eq!(run.requests.len(), 150);
    // Lines written before the signal are untouched.
    let after = std::fs::read_to_string(&out).unwrap();
    assert!(after.starts_with(&before));
    let ok = run.requests.iter().filter(|r| r.ok()).count();
    assert!(ok >= 20, "{ok} finished requests");
    let unsent = run.requests.iter().filter(|r| r.sent.is_none()).count();
    assert!(unsent > 0, "the interrupt came after the last send");
    for r in &run.requests {
        if r.sent.is_none() {
            assert_eq!(
                r.error.as_deref(),
                Some("not sent: the run was interrupted")
            );
        } else if r.error.is_none() {
            assert_eq!(r.chunks.len(), 4);
        }
    }
}

#[test]
fn serial_sigint_cuts_off_requests_still_running_after_the_grace_period() {
    let dir = Scratch::new("sigint-hard");
    let url = misbehaving_server();
    // Three streams that stall after one chunk (max_tokens 6), and one request due at 30 s.
    let w = dir.path("w.csv");
    write_workload(&w, &[(0.0, 5, 6), (0.01, 5, 6), (0.02, 5, 6), (30.0, 5, 3)]);
    let out = dir.path("run.jsonl");
    let mut child = simfid()
        .args(["record", "--url", &url, "--workload"])
        .arg(&w)
        .arg("-o")
        .arg(&out)
        .args(["--no-progress", "--grace", "0.3", "--timeout", "60"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    let start = Instant::now();
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(wait_for(10.0, || child.try_wait().unwrap().is_some()));
    assert_eq!(child.wait().unwrap().code(), Some(130));
    // Stopped after the grace period, not at the 60 s timeout or the 30 s arrival.
    assert!(start.elapsed().as_secs_f64() < 5.0);
    let (run, _) = read_run(&out).unwrap();
    assert_eq!(run.requests.len(), 4);
    for r in &run.requests[..3] {
        assert_eq!(
            r.error.as_deref(),
            Some("interrupted mid-stream (1 chunks received)"),
            "{r:?}"
        );
        assert_eq!(r.chunks.len(), 1);
    }
    assert_eq!(
        run.requests[3].error.as_deref(),
        Some("not sent: the run was interrupted")
    );
}
