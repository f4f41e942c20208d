//! The rows Vidur keeps from each profile file for a model and parallel layout (the table in
//! the module docs), turned into interpolants.

use std::path::Path;

use super::interpolate::{Curve, Surface};
use super::table::{Table, describe, median_column, resolve_filters};
use crate::error::Result;
use crate::exec::LinearOp;
use crate::model::ModelSpec;

pub(super) fn load_mlp(path: &Path, model: &ModelSpec, tp: u32) -> Result<Vec<Curve>> {
    let table = Table::read(path)?;
    let filters = [
        ("n_head", f64::from(model.num_q_heads)),
        ("n_kv_head", f64::from(model.num_kv_heads)),
        ("n_embd", f64::from(model.embedding_dim)),
        ("n_expanded_embd", f64::from(model.mlp_hidden_dim)),
        ("vocab_size", f64::from(model.vocab_size)),
        ("num_tensor_parallel_workers", f64::from(tp)),
    ];
    let cols = resolve_filters(&table, &filters)?;
    let gated = table.column("use_gated_mlp")?;
    let tokens = table.column("num_tokens")?;
    // Norms and add may be absent or empty (then 0); the other ops must have a number.
    let targets = LinearOp::ALL
        .iter()
        .map(|op| {
            let name = median_column(op.name());
            let zero_ok = matches!(
                op,
                LinearOp::InputLayernorm | LinearOp::PostAttentionLayernorm | LinearOp::Add
            );
            if zero_ok {
                Ok((table.optional_column(&name), true))
            } else {
                table.column(&name).map(|c| (Some(c), false))
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let mut points = vec![Vec::new(); LinearOp::ALL.len()];
    for (line, fields) in &table.rows {
        let line = *line;
        if !table.matches(line, fields, &cols)?
            || table.boolean(line, fields, gated)? != model.use_gated_mlp
        {
            continue;
        }
        let x = table.number(line, fields, tokens)?;
        for (i, &(col, zero_ok)) in targets.iter().enumerate() {
            let y = match col {
                Some(c) if !zero_ok => table.number(line, fields, c)?,
                _ => table.number_or_zero(line, fields, col)?,
            };
            points[i].push((x, y));
        }
    }
    if points[0].is_empty() {
        return Err(table.no_rows(&format!(
            "{}, use_gated_mlp == {}",
            describe(&filters),
            model.use_gated_mlp
        )));
    }
    Ok(points.into_iter().map(Curve::from_points).collect())
}

pub(super) fn load_attention(
    path: &Path,
    model: &ModelSpec,
    tp: u32,
    block_size: u32,
) -> Result<(Curve, Surface, Surface)> {
    let table = Table::read(path)?;
    let filters = [
        ("n_embd", f64::from(model.embedding_dim)),
        ("n_q_head", f64::from(model.num_q_heads)),
        ("n_kv_head", f64::from(model.num_kv_heads)),
        ("block_size", f64::from(block_size)),
        ("num_tensor_parallel_workers", f64::from(tp)),
    ];
    let cols = resolve_filters(&table, &filters)?;
    let batch = table.column("batch_size")?;
    let chunk = table.column("prefill_chunk_size")?;
    let kv = table.column("kv_cache_size")?;
    let prefill_t = table.column(&median_column("attn_prefill"))?;
    let decode_t = table.column(&median_column("attn_decode"))?;
    let save_t = table.optional_column(&median_column("attn_kv_cache_save"));

    let mut save = Vec::new();
    let mut decode = Vec::new();
    let mut prefill = Vec::new();
    for (line, fields) in &table.rows {
        let line = *line;
        if !table.matches(line, fields, &cols)? {
            continue;
        }
        let b = table.number(line, fields, batch)?;
        let c = table.number(line, fields, chunk)?;
        let k = table.number(line, fields, kv)?;
        save.push((c.max(b), table.number_or_zero(line, fields, save_t)?));
        if c == 0.0 {
            decode.push((b, k, table.number(line, fields, decode_t)?));
        } else {
            prefill.push((c * c, k, table.number(line, fields, prefill_t)?));
        }
    }
    if save.is_empty() {
        return Err(table.no_rows(&describe(&filters)));
    }
    if decode.is_empty() {
        return Err(table.no_rows(&format!(
            "{}, prefill_chunk_size == 0 (decode)",
            describe(&filters)
        )));
    }
    if prefill.is_empty() {
        return Err(table.no_rows(&format!(
            "{}, prefill_chunk_size > 0 (prefill)",
            describe(&filters)
        )));
    }
    Ok((
        Curve::from_points(save),
        Surface::from_points(decode),
        Surface::from_points(prefill),
    ))
}

pub(super) struct CollectiveFilter {
    pub(super) collective: &'static str,
    pub(super) num_workers: Option<u32>,
    pub(super) devices_per_node: u32,
}

pub(super) fn load_collective(
    path: &Path,
    model: &ModelSpec,
    filter: &CollectiveFilter,
) -> Result<Curve> {
    let table = Table::read(path)?;
    let mut filters = vec![("devices_per_node", f64::from(filter.devices_per_node))];
    if let Some(n) = filter.num_workers {
        filters.push(("num_workers", f64::from(n)));
    }
    let cols = resolve_filters(&table, &filters)?;
    let collective = table.column("collective")?;
    let size = table.column("size")?;
    let bytes_per_token = 2.0 * f64::from(model.embedding_dim);
    let mut kept = Vec::new();
    for (line, fields) in &table.rows {
        if table.field(*line, fields, collective)? == filter.collective
            && table.matches(*line, fields, &cols)?
        {
            kept.push((*line, fields));
        }
    }
    if kept.is_empty() {
        return Err(table.no_rows(&format!(
            "collective == {}, {}",
            filter.collective,
            describe(&filters)
        )));
    }
    let target = table.column(&median_column(filter.collective))?;
    let points = kept
        .into_iter()
        .map(|(line, fields)| {
            let tokens = table.number(line, fields, size)? / bytes_per_token;
            Ok((tokens, table.number(line, fields, target)?))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Curve::from_points(points))
}
