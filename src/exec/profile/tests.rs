//! Reading, filtering and interpolating synthetic profiles written to a temp folder; error
//! messages; [`grid_mape`] on a known error. The comparison with Vidur's own tables on real
//! profiles is in `cli/tests/integration/vidur_profile.rs`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use super::*;
use crate::error::{Error, Result};
use crate::exec::{LinearOp, OpTimes};
use crate::model::{ModelSpec, NodeSpec};

// -----------------------------------------------------------------------------------------
// Synthetic profiles

/// A fresh, empty folder under the system temp dir.
fn temp_dir(name: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "simfid-profile-{}-{}-{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A tiny model: 4 q heads, 2 kv heads, embedding 64, MLP 128, vocab 1000.
fn tiny_model() -> ModelSpec {
    ModelSpec {
        name: "tiny".into(),
        num_layers: 2,
        num_q_heads: 4,
        num_kv_heads: 2,
        embedding_dim: 64,
        head_dim: 16,
        mlp_hidden_dim: 128,
        use_gated_mlp: true,
        vocab_size: 1000,
        max_position_embeddings: 4096,
        rope_theta: 10000.0,
        post_attn_norm: true,
        tie_word_embeddings: false,
    }
}

fn node(devices: u32) -> NodeSpec {
    NodeSpec {
        name: "test_node".into(),
        num_devices_per_node: devices,
    }
}

/// A CSV with `header`, one line per row; unset columns hold `default`.
fn csv_text(header: &[String], rows: &[Vec<(&str, String)>], default: &str) -> String {
    let mut out = header.join(",");
    out.push('\n');
    for row in rows {
        let line: Vec<String> = header
            .iter()
            .map(|h| {
                row.iter()
                    .find(|(k, _)| k == h)
                    .map_or_else(|| default.to_string(), |(_, v)| v.clone())
            })
            .collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

fn stats(ops: &[&str]) -> Vec<String> {
    ops.iter()
        .flat_map(|op| {
            ["min", "max", "mean", "median", "std"].map(|s| format!("time_stats.{op}.{s}"))
        })
        .collect()
}

const MLP_OPS: [&str; 10] = [
    "emb",
    "input_layernorm",
    "attn_pre_proj",
    "attn_rope",
    "attn_post_proj",
    "post_attention_layernorm",
    "mlp_up_proj",
    "mlp_act",
    "mlp_down_proj",
    "add",
];

/// An mlp.csv row of the tiny model: every op's median is `scale × (op index + 1) ×
/// tokens`.
fn mlp_row(tokens: u32, tp: u32, n_head: u32, scale: f64) -> Vec<(&'static str, String)> {
    let mut row = vec![
        ("n_head", n_head.to_string()),
        ("n_kv_head", "2".into()),
        ("n_embd", "64".into()),
        ("n_expanded_embd", "128".into()),
        ("vocab_size", "1000".into()),
        ("use_gated_mlp", "True".into()),
        ("num_tokens", tokens.to_string()),
        ("num_tensor_parallel_workers", tp.to_string()),
    ];
    for (i, op) in MLP_OPS.iter().enumerate() {
        let name: &'static str = Box::leak(format!("time_stats.{op}.median").into_boxed_str());
        row.push((
            name,
            (scale * (i + 1) as f64 * f64::from(tokens)).to_string(),
        ));
    }
    row
}

fn mlp_header(ops: &[&str]) -> Vec<String> {
    let mut h = stats(ops);
    for c in [
        "n_head",
        "n_kv_head",
        "n_embd",
        "n_expanded_embd",
        "vocab_size",
        "use_gated_mlp",
        "num_tokens",
        "num_tensor_parallel_workers",
    ] {
        h.push(c.into());
    }
    h
}

fn attention_tail() -> Vec<&'static str> {
    vec![
        "n_embd",
        "n_q_head",
        "n_kv_head",
        "block_size",
        "num_tensor_parallel_workers",
        "max_model_len",
        "batch_size",
        "prefill_chunk_size",
        "kv_cache_size",
        "is_prefill",
        "attention_backend",
    ]
}

/// Current (36-column) attention.csv header.
fn current_attention_header() -> Vec<String> {
    let mut h = stats(&[
        "attn_input_reshape",
        "attn_kv_cache_save",
        "attn_prefill",
        "attn_decode",
        "attn_output_reshape",
    ]);
    h.extend(attention_tail().into_iter().map(String::from));
    h
}

/// Historic (32-column, May 2024) attention.csv header.
fn historic_attention_header() -> Vec<String> {
    let mut h = stats(&[
        "attn_input_reshape",
        "attn_decode",
        "attn_output_reshape",
        "attn_prefill",
    ]);
    h.extend(attention_tail().into_iter().map(String::from));
    h.push("profile_method".into());
    h
}

/// Synthetic attention "physics": decode `0.01 + 1e-5·b·kv`, prefill
/// `0.02 + 1e-7·c·(kv + c)`, kv-cache save `1e-3·tokens`.
fn decode_time(b: u32, kv: u32) -> f64 {
    0.01 + 1e-5 * f64::from(b) * f64::from(kv)
}
fn prefill_time(c: u32, kv: u32) -> f64 {
    0.02 + 1e-7 * f64::from(c) * f64::from(kv + c)
}

fn attention_row(
    b: u32,
    c: u32,
    kv: u32,
    block: u32,
    tp: u32,
    with_save: bool,
) -> Vec<(&'static str, String)> {
    let mut row = vec![
        ("n_embd", "64".to_string()),
        ("n_q_head", "4".into()),
        ("n_kv_head", "2".into()),
        ("block_size", block.to_string()),
        ("num_tensor_parallel_workers", tp.to_string()),
        ("max_model_len", "512".into()),
        ("batch_size", b.to_string()),
        ("prefill_chunk_size", c.to_string()),
        ("kv_cache_size", kv.to_string()),
        ("is_prefill", if c > 0 { "True" } else { "False" }.into()),
        (
            "attention_backend",
            "AttentionBackend.FLASH_ATTENTION".into(),
        ),
        ("profile_method", "ProfileMethod.KINETO".into()),
    ];
    if c > 0 {
        row.push((
            "time_stats.attn_prefill.median",
            prefill_time(c, kv).to_string(),
        ));
    } else {
        row.push((
            "time_stats.attn_decode.median",
            decode_time(b, kv).to_string(),
        ));
    }
    if with_save {
        let t = f64::from(b.max(c));
        row.push((
            "time_stats.attn_kv_cache_save.median",
            (1e-3 * t).to_string(),
        ));
    }
    row
}

/// Attention rows on a triangle `c + kv ≤ 512` (prefill) and a full decode grid.
fn attention_rows(block: u32, tp: u32, with_save: bool) -> Vec<Vec<(&'static str, String)>> {
    let mut rows = Vec::new();
    for b in [1, 2, 4, 8] {
        for kv in [32, 64, 128, 256, 448] {
            rows.push(attention_row(b, 0, kv, block, tp, with_save));
        }
    }
    for c in [64, 128, 256, 512] {
        for kv in [0, 64, 128, 256, 448] {
            if c + kv <= 512 {
                rows.push(attention_row(1, c, kv, block, tp, with_save));
            }
        }
    }
    rows
}

fn collective_header(op: &str) -> Vec<String> {
    let mut h = vec![String::new()];
    h.extend(stats(&[op]));
    for c in [
        "rank",
        "num_workers",
        "size",
        "collective",
        "devices_per_node",
        "max_devices_per_node",
    ] {
        h.push(c.into());
    }
    h
}

/// A collective row: median `base + 1e-6·size` at `size` bytes.
fn collective_row(
    index: usize,
    op: &'static str,
    workers: u32,
    per_node: u32,
    size: u64,
    base: f64,
) -> Vec<(&'static str, String)> {
    let median: &'static str = Box::leak(format!("time_stats.{op}.median").into_boxed_str());
    vec![
        ("", index.to_string()),
        (median, (base + 1e-6 * size as f64).to_string()),
        ("rank", "0".into()),
        ("num_workers", workers.to_string()),
        ("size", size.to_string()),
        ("collective", op.into()),
        ("devices_per_node", per_node.to_string()),
        ("max_devices_per_node", "4".into()),
    ]
}

struct Fixture {
    dir: PathBuf,
    files: ProfileFiles,
}

/// Writes a complete synthetic profile set; `historic` picks the attention layout.
fn fixture(name: &str, historic: bool) -> Fixture {
    let dir = temp_dir(name);
    // mlp: tokens 1, 8, 16, 32 for TP1 and TP2, plus decoy rows of another model, plus a
    // duplicate row.
    let mut rows = Vec::new();
    for t in [1, 8, 16, 32] {
        rows.push(mlp_row(t, 1, 4, 1e-3));
        rows.push(mlp_row(t, 2, 4, 2e-3));
        rows.push(mlp_row(t, 1, 8, 5.0));
    }
    rows.push(mlp_row(8, 1, 4, 1e-3));
    std::fs::write(
        dir.join("mlp.csv"),
        csv_text(&mlp_header(&MLP_OPS), &rows, "0.0"),
    )
    .unwrap();
    let (header, default) = if historic {
        (historic_attention_header(), "")
    } else {
        (current_attention_header(), "0.0")
    };
    let mut rows = attention_rows(16, 1, !historic);
    rows.extend(attention_rows(16, 2, !historic));
    rows.extend(attention_rows(32, 1, !historic).into_iter().map(|mut r| {
        // Decoys at another block size: times ×100.
        for (k, v) in r.iter_mut() {
            if k.starts_with("time_stats") {
                *v = (v.parse::<f64>().unwrap() * 100.0).to_string();
            }
        }
        r
    }));
    std::fs::write(dir.join("attention.csv"), csv_text(&header, &rows, default)).unwrap();

    let mut ar = Vec::new();
    for (i, size) in [1280u64, 12800, 128_000].into_iter().enumerate() {
        ar.push(collective_row(3 * i, "all_reduce", 2, 2, size, 0.01));
        ar.push(collective_row(3 * i + 1, "all_reduce", 4, 4, size, 1.0));
        ar.push(collective_row(3 * i + 2, "all_reduce", 2, 1, size, 2.0));
    }
    std::fs::write(
        dir.join("all_reduce.csv"),
        csv_text(&collective_header("all_reduce"), &ar, "0.0"),
    )
    .unwrap();
    let mut sr = Vec::new();
    for (i, size) in [1280u64, 12800, 128_000].into_iter().enumerate() {
        sr.push(collective_row(2 * i, "send_recv", 2, 2, size, 0.02));
        sr.push(collective_row(2 * i + 1, "send_recv", 2, 1, size, 0.5));
    }
    std::fs::write(
        dir.join("send_recv.csv"),
        csv_text(&collective_header("send_recv"), &sr, "0.0"),
    )
    .unwrap();
    let files = ProfileFiles {
        mlp: dir.join("mlp.csv"),
        attention: dir.join("attention.csv"),
        all_reduce: Some(dir.join("all_reduce.csv")),
        send_recv: Some(dir.join("send_recv.csv")),
    };
    Fixture { dir, files }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * (1.0 + b.abs())
}

// -----------------------------------------------------------------------------------------
// Synthetic tests

#[test]
fn mlp_rows_are_filtered_by_model_and_tp_and_interpolated() {
    let fx = fixture("mlp", false);
    let p = OpProfile::load(&fx.files, &tiny_model(), 1, 1, 16, &node(4)).unwrap();
    // attn_pre_proj is the 3rd column group: 3e-3 per token on TP1.
    for t in [1, 8, 12, 20, 32] {
        let want = 3e-3 * f64::from(t);
        assert!(
            close(p.linear(LinearOp::AttnPreProj, t).unwrap(), want),
            "{t}"
        );
    }
    // Beyond the last profiled token count the value is held.
    assert!(close(
        p.linear(LinearOp::AttnPreProj, 4096).unwrap(),
        3e-3 * 32.0
    ));
    assert!(close(p.linear(LinearOp::Add, 16).unwrap(), 10e-3 * 16.0));
    let p2 = OpProfile::load(&fx.files, &tiny_model(), 2, 1, 16, &node(4)).unwrap();
    assert!(close(
        p2.linear(LinearOp::MlpDownProj, 8).unwrap(),
        9.0 * 2e-3 * 8.0
    ));
}

#[test]
fn missing_norm_and_add_columns_read_as_zero() {
    let dir = temp_dir("mlp-no-norms");
    let ops: Vec<&str> = MLP_OPS
        .iter()
        .copied()
        .filter(|op| !op.contains("norm") && *op != "add")
        .collect();
    let rows: Vec<_> = [1, 8].iter().map(|&t| mlp_row(t, 1, 4, 1e-3)).collect();
    std::fs::write(
        dir.join("mlp.csv"),
        csv_text(&mlp_header(&ops), &rows, "0.0"),
    )
    .unwrap();
    let fx = fixture("mlp-no-norms-attn", false);
    let files = ProfileFiles {
        mlp: dir.join("mlp.csv"),
        ..fx.files.clone()
    };
    let p = OpProfile::load(&files, &tiny_model(), 1, 1, 16, &node(4)).unwrap();
    assert_eq!(p.linear(LinearOp::InputLayernorm, 8).unwrap(), 0.0);
    assert_eq!(p.linear(LinearOp::Add, 8).unwrap(), 0.0);
    assert!(p.linear(LinearOp::MlpUpProj, 8).unwrap() > 0.0);
    let _ = std::fs::remove_dir_all(dir);
}

fn check_attention(p: &OpProfile) {
    // Decode: exact on the profiled grid, bilinear inside, clamped at the kv edges.
    assert!(close(p.attn_decode(4, 128).unwrap(), decode_time(4, 128)));
    let mid = p.attn_decode(3, 96).unwrap();
    let want =
        (decode_time(2, 64) + decode_time(2, 128) + decode_time(4, 64) + decode_time(4, 128)) / 4.0;
    assert!(close(mid, want), "{mid} vs {want}");
    assert!(close(p.attn_decode(1, 0).unwrap(), decode_time(1, 32)));
    assert!(close(p.attn_decode(8, 4096).unwrap(), decode_time(8, 448)));
    assert!(close(p.attn_decode(128, 64).unwrap(), decode_time(8, 64)));
    // Prefill: exact at profiled points, linear in chunk² between chunk rows.
    assert!(close(
        p.attn_prefill(64, 128 * 128).unwrap(),
        prefill_time(128, 64)
    ));
    let c2 = 100u64 * 100;
    let f = (c2 as f64 - 64.0 * 64.0) / (128.0 * 128.0 - 64.0 * 64.0);
    let want = prefill_time(64, 0) + f * (prefill_time(128, 0) - prefill_time(64, 0));
    assert!(close(p.attn_prefill(0, c2).unwrap(), want));
    // Below the smallest chunk: the smallest chunk's row.
    assert!(close(
        p.attn_prefill(128, 1).unwrap(),
        prefill_time(64, 128)
    ));
    // Outside the profiled triangle: the row's value at its largest profiled kv.
    assert!(close(
        p.attn_prefill(4096, 256 * 256).unwrap(),
        prefill_time(256, 256)
    ));
    assert!(close(
        p.attn_prefill(300, 512 * 512).unwrap(),
        prefill_time(512, 0)
    ));
    assert!(close(
        p.attn_prefill(0, 4096 * 4096).unwrap(),
        prefill_time(512, 0)
    ));
}

#[test]
fn current_attention_format_is_read_and_interpolated() {
    let fx = fixture("attn-current", false);
    let p = OpProfile::load(&fx.files, &tiny_model(), 1, 1, 16, &node(4)).unwrap();
    check_attention(&p);
    // kv-cache save over max(chunk, batch), averaged over all rows of the same count.
    assert!(close(p.kv_cache_save(4).unwrap(), 4e-3));
    assert!(close(p.kv_cache_save(96).unwrap(), 96e-3));
    assert!(close(p.kv_cache_save(4096).unwrap(), 512e-3));
}

#[test]
fn historic_attention_format_with_empty_cells_is_read() {
    let fx = fixture("attn-historic", true);
    let text = std::fs::read_to_string(&fx.files.attention).unwrap();
    assert_eq!(text.lines().next().unwrap().split(',').count(), 32);
    assert!(
        text.lines().nth(1).unwrap().contains(",,"),
        "empty cells expected"
    );
    let p = OpProfile::load(&fx.files, &tiny_model(), 1, 1, 16, &node(4)).unwrap();
    check_attention(&p);
    // No attn_kv_cache_save column: 0, as in Vidur.
    assert_eq!(p.kv_cache_save(100).unwrap(), 0.0);
}

#[test]
fn block_size_selects_attention_rows() {
    let fx = fixture("attn-block", false);
    let p = OpProfile::load(&fx.files, &tiny_model(), 1, 1, 32, &node(4)).unwrap();
    assert!(close(
        p.attn_decode(4, 128).unwrap(),
        100.0 * decode_time(4, 128)
    ));
    let e = OpProfile::load(&fx.files, &tiny_model(), 1, 1, 8, &node(4)).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("attention.csv") && msg.contains("block_size == 8"),
        "{msg}"
    );
}

#[test]
fn collectives_are_filtered_and_converted_to_tokens() {
    let fx = fixture("net", false);
    // tp 2 on a 4-device node: all_reduce (2 workers, 2 per node); pp 2 keeps tp × pp on
    // one node, so send_recv uses devices_per_node == 2.
    let p = OpProfile::load(&fx.files, &tiny_model(), 2, 2, 16, &node(4)).unwrap();
    // 128 bytes per token (embedding 64 × 2 bytes): 1280 bytes = 10 tokens.
    assert!(close(p.all_reduce(10).unwrap(), 0.01 + 1e-6 * 1280.0));
    assert!(close(p.all_reduce(1).unwrap(), 0.01 + 1e-6 * 1280.0));
    let mid = 0.01 + 1e-6 * (1280.0 + 12800.0) / 2.0;
    assert!(close(p.all_reduce(55).unwrap(), mid));
    assert!(close(p.all_reduce(4096).unwrap(), 0.01 + 1e-6 * 128_000.0));
    assert!(close(p.send_recv(100).unwrap(), 0.02 + 1e-6 * 12800.0));
    // tp 2 × pp 2 on 2-device nodes is multi-node: devices_per_node == 1 rows.
    let p = OpProfile::load(&fx.files, &tiny_model(), 2, 2, 16, &node(2)).unwrap();
    assert!(close(p.send_recv(100).unwrap(), 0.5 + 1e-6 * 12800.0));
    // TP1/PP1 reads neither and answers neither.
    let p = OpProfile::load(&fx.files, &tiny_model(), 1, 1, 16, &node(4)).unwrap();
    assert!(matches!(p.all_reduce(8), Err(Error::OutOfRange { .. })));
    assert!(matches!(p.send_recv(8), Err(Error::OutOfRange { .. })));
}

#[test]
fn network_needs_and_layout_errors() {
    let fx = fixture("net-errors", false);
    let no_net = ProfileFiles {
        all_reduce: None,
        send_recv: None,
        ..fx.files.clone()
    };
    let e = OpProfile::load(&no_net, &tiny_model(), 2, 1, 16, &node(4)).unwrap_err();
    assert!(e.to_string().contains("all_reduce"), "{e}");
    let e = OpProfile::load(&no_net, &tiny_model(), 1, 2, 16, &node(4)).unwrap_err();
    assert!(e.to_string().contains("send_recv"), "{e}");
    // 3 workers on 2-device nodes: neither fewer nor a multiple.
    let e = OpProfile::load(&fx.files, &tiny_model(), 1, 3, 16, &node(2)).unwrap_err();
    assert!(matches!(e, Error::Exec(_)), "{e}");
    // A file without all-reduce rows (the send/recv profile passed by mistake).
    let wrong = ProfileFiles {
        all_reduce: fx.files.send_recv.clone(),
        ..fx.files.clone()
    };
    let e = OpProfile::load(&wrong, &tiny_model(), 2, 1, 16, &node(4)).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("send_recv.csv")
            && msg.contains("collective == all_reduce")
            && msg.contains("num_workers == 2")
            && msg.contains("devices_per_node == 2"),
        "{msg}"
    );
}

#[test]
fn empty_filter_names_file_and_values() {
    let fx = fixture("filter", false);
    let model = ModelSpec {
        mlp_hidden_dim: 999,
        ..tiny_model()
    };
    let e = OpProfile::load(&fx.files, &model, 1, 1, 16, &node(4)).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Exec(_)));
    assert!(
        msg.contains("mlp.csv") && msg.contains("n_expanded_embd == 999"),
        "{msg}"
    );
    let model = ModelSpec {
        use_gated_mlp: false,
        ..tiny_model()
    };
    let msg = OpProfile::load(&fx.files, &model, 1, 1, 16, &node(4))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("use_gated_mlp == false"), "{msg}");
}

#[test]
fn malformed_number_reports_file_and_line() {
    let fx = fixture("malformed", false);
    let text = std::fs::read_to_string(&fx.files.attention).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    // Line 4 (header is line 1): break its kv_cache_size.
    let col = current_attention_header()
        .iter()
        .position(|h| h == "kv_cache_size")
        .unwrap();
    let mut fields: Vec<&str> = lines[3].split(',').collect();
    fields[col] = "12x";
    lines[3] = fields.join(",");
    std::fs::write(&fx.files.attention, lines.join("\n") + "\n").unwrap();
    let e = OpProfile::load(&fx.files, &tiny_model(), 1, 1, 16, &node(4)).unwrap_err();
    match &e {
        Error::Csv {
            path,
            line,
            message,
        } => {
            assert_eq!(path, &fx.files.attention);
            assert_eq!(*line, 4);
            assert!(
                message.contains("kv_cache_size") && message.contains("12x"),
                "{e}"
            );
        }
        _ => panic!("expected a CSV error, got {e}"),
    }
    assert!(e.to_string().contains("attention.csv:4:"), "{e}");
}

#[test]
fn empty_target_cell_in_a_used_row_is_an_error() {
    let fx = fixture("empty-target", true);
    let text = std::fs::read_to_string(&fx.files.attention).unwrap();
    let col = historic_attention_header()
        .iter()
        .position(|h| h == "time_stats.attn_decode.median")
        .unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut fields: Vec<&str> = lines[1].split(',').collect();
    fields[col] = "";
    lines[1] = fields.join(",");
    std::fs::write(&fx.files.attention, lines.join("\n") + "\n").unwrap();
    let e = OpProfile::load(&fx.files, &tiny_model(), 1, 1, 16, &node(4)).unwrap_err();
    assert!(matches!(e, Error::Csv { line: 2, .. }), "{e}");
}

#[test]
fn missing_column_and_missing_file_are_errors() {
    let fx = fixture("missing", false);
    let text = std::fs::read_to_string(&fx.files.mlp).unwrap();
    std::fs::write(&fx.files.mlp, text.replacen("vocab_size", "vocab", 1)).unwrap();
    let e = OpProfile::load(&fx.files, &tiny_model(), 1, 1, 16, &node(4)).unwrap_err();
    assert!(matches!(e, Error::Csv { line: 1, .. }), "{e}");
    assert!(e.to_string().contains("vocab_size"), "{e}");
    let files = ProfileFiles {
        mlp: fx.dir.join("nope.csv"),
        ..fx.files.clone()
    };
    let e = OpProfile::load(&files, &tiny_model(), 1, 1, 16, &node(4)).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
}

#[test]
fn queries_outside_the_grid_are_out_of_range() {
    let fx = fixture("range", false);
    let p = OpProfile::load(&fx.files, &tiny_model(), 1, 1, 16, &node(4)).unwrap();
    let oor = |r: Result<f64>| matches!(r, Err(Error::OutOfRange { .. }));
    assert!(oor(p.linear(LinearOp::Add, 0)));
    assert!(oor(p.linear(LinearOp::Add, 4097)));
    assert!(oor(p.kv_cache_save(4097)));
    assert!(oor(p.attn_decode(0, 64)));
    assert!(oor(p.attn_decode(129, 64)));
    assert!(oor(p.attn_decode(1, 4160)));
    assert!(oor(p.attn_prefill(0, 0)));
    assert!(oor(p.attn_prefill(0, 4097 * 4097)));
    assert!(oor(p.attn_prefill(4160, 1)));
    assert!(p.attn_prefill(4096, 4096 * 4096).is_ok());
    let wide = p.with_grid(PredictionGrid {
        max_tokens: 4096 * 128,
        ..PredictionGrid::default()
    });
    assert!(wide.linear(LinearOp::Add, 10_000).is_ok());
}

/// A second [`OpTimes`] that is the first scaled by `factor`, except zeros.
struct Scaled<'a>(&'a OpProfile, f64);

impl OpTimes for Scaled<'_> {
    fn linear(&self, op: LinearOp, t: u32) -> Result<f64> {
        Ok(self.0.linear(op, t)? * self.1)
    }
    fn kv_cache_save(&self, t: u32) -> Result<f64> {
        Ok(self.0.kv_cache_save(t)? * self.1)
    }
    fn attn_decode(&self, b: u32, kv: u32) -> Result<f64> {
        Ok(self.0.attn_decode(b, kv)? * self.1)
    }
    fn attn_prefill(&self, kv: u32, c: u64) -> Result<f64> {
        Ok(self.0.attn_prefill(kv, c)? * self.1)
    }
    fn all_reduce(&self, t: u32) -> Result<f64> {
        Ok(self.0.all_reduce(t)? * self.1)
    }
    fn send_recv(&self, t: u32) -> Result<f64> {
        Ok(self.0.send_recv(t)? * self.1)
    }
}

#[test]
fn grid_mape_scores_a_uniform_error_and_skips_zero_references() {
    let fx = fixture("mape", true);
    let p = OpProfile::load(&fx.files, &tiny_model(), 2, 1, 16, &node(4)).unwrap();
    let grid = PredictionGrid {
        max_tokens: 64,
        max_batch_size: 4,
        max_kv_cache_size: 256,
        kv_granularity: 64,
        max_prefill_chunk_size: 128,
    };
    let r = grid_mape(&Scaled(&p, 1.05), &p, &grid, 2, 1).unwrap();
    assert_eq!(
        r.ops.len(),
        13,
        "9 linear, kv save, decode, prefill, all-reduce"
    );
    assert!(r.op(GridOp::SendRecv).is_none());
    let decode = r.op(GridOp::AttnDecode).unwrap();
    assert_eq!(decode.points, 4 * 5);
    assert!((decode.mape().unwrap() - 5.0).abs() < 1e-9);
    assert_eq!(r.op(GridOp::AttnPrefill).unwrap().points, 5 * 128);
    // Historic layout: kv-cache save is 0 everywhere, so it has no MAPE.
    let save = r.op(GridOp::KvCacheSave).unwrap();
    assert_eq!(
        (save.points, save.zero_reference, save.zero_mismatches),
        (0, 64, 0)
    );
    assert_eq!(save.mape(), None);
    assert!((r.overall().unwrap() - 5.0).abs() < 1e-9);
    assert!((r.pooled().unwrap() - 5.0).abs() < 1e-9);
    let table = r.to_string();
    assert!(
        table.contains("attn_prefill") && table.contains("5.000"),
        "{table}"
    );
    assert!(table.contains("n/a"), "{table}");
    // Identical sources: 0 %.
    let r = grid_mape(&p, &p, &grid, 1, 1).unwrap();
    assert_eq!(r.overall(), Some(0.0));
}

#[test]
fn dense_prefill_grid_is_fast() {
    // A profile shaped like the real one: 81 chunk rows × up to 80 kv values.
    let dir = temp_dir("speed");
    let fx = fixture("speed-base", false);
    let mut rows = Vec::new();
    let chunks: Vec<u32> = (2..=128).map(|i| i * 32).filter(|c| *c <= 4096).collect();
    for &c in chunks.iter().step_by(2) {
        for kv in (0..4096).step_by(64) {
            if c + kv <= 4096 {
                rows.push(attention_row(1, c, kv, 16, 1, true));
            }
        }
    }
    for b in 1..=128 {
        for kv in (32..4096).step_by(64) {
            rows.push(attention_row(b, 0, kv, 16, 1, true));
        }
    }
    let path = dir.join("attention.csv");
    std::fs::write(&path, csv_text(&current_attention_header(), &rows, "0.0")).unwrap();
    let files = ProfileFiles {
        attention: path,
        ..fx.files.clone()
    };
    let p = OpProfile::load(&files, &tiny_model(), 1, 1, 16, &node(4)).unwrap();
    let start = std::time::Instant::now();
    let mut sum = 0.0;
    for kv in (0..=4096).step_by(64) {
        for c in 1..=4096u64 {
            sum += p.attn_prefill(kv, c * c).unwrap();
        }
    }
    let took = start.elapsed();
    println!("65 x 4096 prefill grid filled in {took:?} (sum {sum:.3})");
    assert!(sum > 0.0);
    if !cfg!(debug_assertions) {
        assert!(took.as_secs_f64() < 0.5, "{took:?}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
