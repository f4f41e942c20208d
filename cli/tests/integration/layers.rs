//! The library's layering: every `crate::…` path in `src/` points to its own module or one
//! below it in [`LAYERS`], and the files of a folder import each other without a cycle.
//!
//! The check reads the source text (comments and string literals removed) rather than the
//! compiler's view, so it names the file and line of every offending path. Doc-comment links
//! are not imports and are not checked; unit-test modules (`#[cfg(test)]`) are checked like
//! the code they test for the layer order, and left out of the folder-cycle check (a file's
//! tests may build their inputs with the rest of its folder).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The library's modules from the ground floor up: a module may use its own floor and the
/// floors below it, never one above. `error` is the ground (every module returns its
/// `Result`; `crate::Error` / `crate::Result` are its re-exports at the crate root);
/// `tokenize` sits beside `workload` (it turns prompts into workload lengths); `exec` only
/// predicts (it knows the model, not runs); `fixture`, the run format, sits below `sim` (a
/// simulation is converted into a run in `sim/to_run.rs`, never the reverse). `cli` is the binary package `cli/` (simfid-cli): it depends on the library, which cannot import it.
pub const LAYERS: &[&str] = &[
    "error", "model", "workload", "tokenize", "exec", "fixture", "sim", "fidelity", "replay",
    "record", "serve", "cli",
];

/// Folders whose `mod.rs` only declares and re-exports (the review of issue 12 found cycles
/// through a `mod.rs` that also defined the folder's types).
const REEXPORT_ONLY: &[&str] = &["fixture", "workload"];

/// Names at the crate root that belong to a floor (re-exports in `lib.rs`).
fn root_item_floor(name: &str) -> Option<&'static str> {
    match name {
        "Error" | "Result" => Some("error"),
        _ => LAYERS.iter().copied().find(|l| *l == name),
    }
}

/// A source file: its path relative to the repository root and its text.
pub struct Source {
    /// e.g. `src/sim/engine.rs`.
    pub path: String,
    /// The file's text.
    pub text: String,
}

/// One `crate::`/`super::` path found in the code, resolved to an absolute module path.
#[derive(Debug, Clone)]
struct PathUse {
    line: usize,
    /// Absolute path segments from the crate root (`["sim", "RequestRecord"]`).
    segments: Vec<String>,
    /// Inside a `#[cfg(test)]` module.
    in_test: bool,
}

/// The text with comments, string and char literals blanked out (newlines kept, so line
/// numbers stay right).
fn code_only(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < b.len() {
        let c = b[i];
        if c == '/' && b.get(i + 1) == Some(&'/') {
            while i < b.len() && b[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && b.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && (b.get(i + 1) == Some(&'"') || b.get(i + 1) == Some(&'#'))
            && (i == 0 || !(b[i - 1].is_alphanumeric() || b[i - 1] == '_'))
        {
            // Raw string r"…" or r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            for &ch in &b[i..j.min(b.len())] {
                out.push(blank(ch));
            }
            i = j;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < b.len() {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && (b.get(i + 2) == Some(&'\'') || (b.get(i + 1) == Some(&'\\'))) {
            // A char literal ('a', '\n', '\u{..}'); a lifetime has no closing quote.
            let mut j = i + 1;
            if b[j] == '\\' {
                j += 1;
            }
            while j < b.len() && b[j] != '\'' {
                j += 1;
            }
            for _ in i..=j.min(b.len() - 1) {
                out.push(' ');
            }
            i = j + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// A file's module path from the crate root: `src/sim/scheduler/vllm.rs` → `[sim, scheduler,
/// vllm]`, `src/sim/mod.rs` → `[sim]`; `src/lib.rs` and `src/main.rs` → `[]`.
fn module_path(path: &str) -> Vec<String> {
    let rel = path.strip_prefix("src/").unwrap_or(path);
    let rel = rel.strip_suffix(".rs").unwrap_or(rel);
    let mut segs: Vec<String> = rel.split('/').map(str::to_owned).collect();
    if matches!(
        segs.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        segs.pop();
    }
    segs
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Parses a use tree (or an expression path) at `s`, returning every full path it names
/// (prefixed with `prefix`).
fn use_tree(s: &[char], mut i: usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let mut path = prefix;
    loop {
        while i < s.len() && s[i].is_whitespace() {
            i += 1;
        }
        if i < s.len() && s[i] == '{' {
            i += 1;
            loop {
                while i < s.len() && (s[i].is_whitespace() || s[i] == ',') {
                    i += 1;
                }
                if i >= s.len() || s[i] == '}' {
                    return i + 1;
                }
                i = use_tree(s, i, path.clone(), out);
            }
        }
        let start = i;
        while i < s.len() && (is_ident_char(s[i]) || s[i] == '*') {
            i += 1;
        }
        if i > start {
            path.push(s[start..i].iter().collect());
        }
        let mut j = i;
        while j < s.len() && s[j].is_whitespace() {
            j += 1;
        }
        if s.get(j) == Some(&':') && s.get(j + 1) == Some(&':') {
            i = j + 2;
            continue;
        }
        // `as alias`: skip the alias.
        if s[j..].starts_with(&['a', 's', ' ']) {
            j += 3;
            while j < s.len() && s[j].is_whitespace() {
                j += 1;
            }
            while j < s.len() && is_ident_char(s[j]) {
                j += 1;
            }
            i = j;
        }
        out.push(path);
        return i;
    }
}

/// Every `crate::`/`super::`/`self::` path of a file, resolved from the crate root.
fn path_uses(src: &Source) -> Vec<PathUse> {
    let code = code_only(&src.text);
    let s: Vec<char> = code.chars().collect();
    let file_mod = module_path(&src.path);
    // Inline modules (`mod tests { … }`): (name, brace depth inside, is test).
    let mut inline: Vec<(String, usize, bool)> = Vec::new();
    let mut depth = 0usize;
    let mut line = 1usize;
    let mut pending_cfg_test = false;
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        match c {
            '\n' => {
                line += 1;
                i += 1;
                continue;
            }
            '{' => {
                depth += 1;
                i += 1;
                continue;
            }
            '}' => {
                if inline.last().is_some_and(|m| m.1 == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
                continue;
            }
            '#' if s[i..].starts_with(&"#[cfg(test)]".chars().collect::<Vec<_>>()) => {
                pending_cfg_test = true;
                i += 12;
                continue;
            }
            _ => {}
        }
        if !is_ident_char(c) || (i > 0 && (is_ident_char(s[i - 1]) || s[i - 1] == '$')) {
            i += 1;
            continue;
        }
        let start = i;
        while i < s.len() && is_ident_char(s[i]) {
            i += 1;
        }
        let word: String = s[start..i].iter().collect();
        if word == "mod" {
            let mut j = i;
            while j < s.len() && s[j].is_whitespace() {
                j += 1;
            }
            let ns = j;
            while j < s.len() && is_ident_char(s[j]) {
                j += 1;
            }
            let name: String = s[ns..j].iter().collect();
            while j < s.len() && s[j].is_whitespace() {
                j += 1;
            }
            if s.get(j) == Some(&'{') {
                let in_test = pending_cfg_test || inline.last().is_some_and(|m| m.2);
                inline.push((name, depth + 1, in_test));
            }
            pending_cfg_test = false;
            i = j;
            continue;
        }
        if matches!(
            word.as_str(),
            "fn" | "struct" | "enum" | "impl" | "use" | "const"
        ) {
            pending_cfg_test = false;
        }
        if !matches!(word.as_str(), "crate" | "super" | "self") {
            continue;
        }
        if !(s.get(i) == Some(&':') && s.get(i + 1) == Some(&':')) {
            continue;
        }
        // The module the path is written in.
        let mut base = file_mod.clone();
        base.extend(inline.iter().map(|m| m.0.clone()));
        let mut segs = match word.as_str() {
            "crate" => Vec::new(),
            "self" => base.clone(),
            _ => {
                let mut b = base.clone();
                b.pop();
                b
            }
        };
        let mut j = i + 2;
        // Further `super::`s.
        loop {
            let rest: String = s[j..(j + 7).min(s.len())].iter().collect();
            if rest == "super::" {
                segs.pop();
                j += 7;
            } else {
                break;
            }
        }
        let in_test = inline.iter().any(|m| m.2);
        let mut paths = Vec::new();
        let end = use_tree(&s, j, segs, &mut paths);
        // Count the lines the tree spans, reporting each path at the line it starts.
        for p in paths {
            out.push(PathUse {
                line,
                segments: p,
                in_test,
            });
        }
        let _ = end;
    }
    out
}

/// Items a `mod.rs` re-exports from its children: item name → child module.
fn reexports(src: &Source) -> BTreeMap<String, String> {
    let code = code_only(&src.text);
    let s: Vec<char> = code.chars().collect();
    let mut map = BTreeMap::new();
    let text: String = s.iter().collect();
    let mut from = 0;
    while let Some(k) = text[from..].find("pub use ") {
        let at = from + k + "pub use ".len();
        let ci = text[..at].chars().count();
        let mut paths = Vec::new();
        use_tree(&s, ci, Vec::new(), &mut paths);
        for p in paths {
            if p.len() >= 2 {
                map.insert(p.last().unwrap().clone(), p[0].clone());
            }
        }
        from = at;
    }
    map
}

/// Top-level items a `mod.rs` defines (besides `mod` and `use`): `(line, kind name)`.
fn definitions(src: &Source) -> Vec<(usize, String)> {
    let code = code_only(&src.text);
    let mut depth = 0i32;
    let mut out = Vec::new();
    for (n, line) in code.lines().enumerate() {
        if depth == 0 {
            let t = line.trim_start();
            let t = t
                .strip_prefix("pub(crate) ")
                .or_else(|| t.strip_prefix("pub "))
                .unwrap_or(t);
            for kw in [
                "struct ", "enum ", "fn ", "trait ", "impl", "const ", "static ", "type ", "union ",
            ] {
                if t.starts_with(kw) {
                    let end = t.find(['{', '=', '(', '<', ';', ':']).unwrap_or(t.len());
                    out.push((n + 1, t[..end].trim().to_owned()));
                }
            }
        }
        depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
    }
    out
}

/// The top-level module of a file (`src/exec/step.rs` → `exec`).
fn top_module(path: &str) -> Option<String> {
    module_path(path).into_iter().next()
}

/// Every path that points to a floor above the file's own, as `file:line: message`.
pub fn layer_violations(sources: &[Source]) -> Vec<String> {
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut out = Vec::new();
    for src in sources {
        let Some(own) = top_module(&src.path) else {
            continue;
        };
        let Some(own_rank) = rank(&own) else {
            out.push(format!("{}: module `{own}` is not in LAYERS", src.path));
            continue;
        };
        for u in path_uses(src) {
            let Some(first) = u.segments.first() else {
                continue;
            };
            if *first == own || first == "*" || first == "self" {
                continue;
            }
            let Some(floor) = root_item_floor(first) else {
                out.push(format!(
                    "{}:{}: `crate::{}` is not in LAYERS",
                    src.path,
                    u.line,
                    u.segments.join("::")
                ));
                continue;
            };
            if rank(floor).unwrap() > own_rank {
                out.push(format!(
                    "{}:{}: `{own}` imports `crate::{}`, but `{floor}` is above `{own}`",
                    src.path,
                    u.line,
                    u.segments.join("::")
                ));
            }
        }
    }
    out
}

/// Cycles among the files of one folder, and definitions in the `mod.rs` of the folders in
/// [`REEXPORT_ONLY`].
pub fn folder_violations(sources: &[Source]) -> Vec<String> {
    let mut out = Vec::new();
    // Folders: module path of a `mod.rs` → its children's names.
    let mut folders: BTreeMap<Vec<String>, &Source> = BTreeMap::new();
    for src in sources {
        if src.path.ends_with("/mod.rs") {
            folders.insert(module_path(&src.path), src);
        }
    }
    for (folder, mod_rs) in &folders {
        if folder.len() == 1 && REEXPORT_ONLY.contains(&folder[0].as_str()) {
            for (line, what) in definitions(mod_rs) {
                out.push(format!(
                    "{}:{line}: `{what}` defined in a mod.rs that should only re-export \
                     (move it to a file of its own)",
                    mod_rs.path
                ));
            }
        }
        let children: BTreeSet<String> = sources
            .iter()
            .map(|s| module_path(&s.path))
            .filter(|m| m.len() == folder.len() + 1 && m.starts_with(folder))
            .map(|m| m.last().unwrap().clone())
            .collect();
        let reexported = reexports(mod_rs);
        // child → (child it uses → first line).
        let mut edges: BTreeMap<String, BTreeMap<String, (String, usize)>> = BTreeMap::new();
        for src in sources {
            let m = module_path(&src.path);
            if m.len() != folder.len() + 1 || !m.starts_with(folder) {
                continue;
            }
            let own = m.last().unwrap().clone();
            for u in path_uses(src) {
                if u.in_test || u.segments.len() <= folder.len() {
                    continue;
                }
                if !u.segments.starts_with(folder) {
                    continue;
                }
                let name = &u.segments[folder.len()];
                let target = if children.contains(name) {
                    name.clone()
                } else if let Some(child) = reexported.get(name) {
                    child.clone()
                } else {
                    continue;
                };
                if target != own {
                    edges
                        .entry(own.clone())
                        .or_default()
                        .entry(target)
                        .or_insert((src.path.clone(), u.line));
                }
            }
        }
        for cycle in cycles(&edges) {
            let steps: Vec<String> = cycle
                .windows(2)
                .map(|w| {
                    let (path, line) = &edges[&w[0]][&w[1]];
                    format!("{} → {} ({path}:{line})", w[0], w[1])
                })
                .collect();
            out.push(format!(
                "src/{}: files import each other in a cycle: {}",
                folder.join("/"),
                steps.join(", ")
            ));
        }
    }
    out
}

/// One cycle (closed: first == last) through each strongly connected group of the graph.
fn cycles(edges: &BTreeMap<String, BTreeMap<String, (String, usize)>>) -> Vec<Vec<String>> {
    let mut found: Vec<Vec<String>> = Vec::new();
    let mut seen_in_cycle: BTreeSet<String> = BTreeSet::new();
    for start in edges.keys() {
        if seen_in_cycle.contains(start) {
            continue;
        }
        // Depth-first search for a path back to `start`.
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        let mut visited: BTreeSet<String> = BTreeSet::new();
        while let Some((node, path)) = stack.pop() {
            for next in edges.get(&node).map(|m| m.keys()).into_iter().flatten() {
                if next == start {
                    let mut cyc = path.clone();
                    cyc.push(start.clone());
                    seen_in_cycle.extend(cyc.iter().cloned());
                    found.push(cyc);
                    stack.clear();
                    break;
                }
                if visited.insert(next.clone()) {
                    let mut p = path.clone();
                    p.push(next.clone());
                    stack.push((next.clone(), p));
                }
            }
        }
    }
    found
}

fn read_tree(dir: &Path, root: &Path, out: &mut Vec<Source>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            read_tree(&p, root, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(Source {
                path: p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/"),
                text: std::fs::read_to_string(&p).unwrap(),
            });
        }
    }
}

fn library_sources() -> Vec<Source> {
    let root = Path::new(super::shared::ROOT);
    let mut out = Vec::new();
    read_tree(&root.join("src"), root, &mut out);
    out
}

#[test]
fn no_module_imports_a_floor_above_its_own() {
    let v = layer_violations(&library_sources());
    assert!(
        v.is_empty(),
        "imports against the layer order {LAYERS:?} (cli/tests/integration/layers.rs):\n{}",
        v.join("\n")
    );
}

#[test]
fn no_folder_has_an_import_cycle_among_its_files() {
    let v = folder_violations(&library_sources());
    assert!(v.is_empty(), "{}", v.join("\n"));
}

fn src(path: &str, text: &str) -> Source {
    Source {
        path: path.into(),
        text: text.into(),
    }
}

#[test]
fn a_back_edge_is_reported_with_its_file_and_line() {
    let tree = [
        src(
            "src/fixture/run.rs",
            "//! Runs.\n\nuse crate::sim::RequestRecord;\n",
        ),
        src(
            "src/exec/step.rs",
            "use crate::{error::Result, model::ModelSpec};\n\
             // crate::replay::Preset in a comment is fine\n\
             fn f() { let s = \"crate::replay\"; crate::fidelity::quantile(&[], 0.5); }\n\
             #[cfg(test)]\nmod tests {\n    use super::super::super::replay::Preset;\n}\n",
        ),
        src("src/sim/to_run.rs", "use crate::{fixture::Run, Error};\n"),
        src(
            "src/fidelity/metric.rs",
            "macro_rules! m { () => { $crate::cli::x() } }\n",
        ),
    ];
    let v = layer_violations(&tree);
    assert_eq!(
        v,
        [
            "src/fixture/run.rs:3: `fixture` imports `crate::sim::RequestRecord`, but `sim` is above `fixture`",
            "src/exec/step.rs:3: `exec` imports `crate::fidelity::quantile`, but `fidelity` is above `exec`",
            "src/exec/step.rs:6: `exec` imports `crate::replay::Preset`, but `replay` is above `exec`",
        ]
    );
}

#[test]
fn a_cycle_inside_a_folder_is_reported() {
    let tree = [
        src(
            "src/workload/mod.rs",
            "mod generate;\nmod rng;\npub use generate::RngKind;\npub struct RequestSpec;\n",
        ),
        src("src/workload/rng.rs", "use super::RngKind;\n"),
        src(
            "src/workload/generate.rs",
            "use crate::workload::rng::Mt;\n#[cfg(test)]\nmod tests { use super::super::rng::X; }\n",
        ),
        src("src/sim/mod.rs", "mod a;\nmod b;\npub struct Fine;\n"),
        src(
            "src/sim/a.rs",
            "#[cfg(test)]\nmod tests { use crate::sim::b::B; }\n",
        ),
        src("src/sim/b.rs", "use super::a::A;\n"),
    ];
    let v = folder_violations(&tree);
    assert_eq!(
        v,
        [
            "src/workload/mod.rs:4: `struct RequestSpec` defined in a mod.rs that should only re-export (move it to a file of its own)",
            "src/workload: files import each other in a cycle: generate → rng (src/workload/generate.rs:1), rng → generate (src/workload/rng.rs:1)",
        ]
    );
}
