//! Real prompts → request lengths (`simfid trace`).
//!
//! A prompts file is either plain text (one prompt per non-empty line) or JSON Lines (one
//! object per line with a string `prompt` and optionally an integer `max_tokens` or
//! `output_tokens`, the output length). [`read_prompts`] reads either; [`prompt_lengths`]
//! counts each prompt's tokens with a [`TokenCounter`], adds a chat template's overhead if
//! asked, and resolves the output length, giving the rows of a lengths CSV
//! (`num_prefill_tokens,num_decode_tokens`).

use std::path::Path;

use super::TokenCounter;
use crate::error::{Error, Result};

/// One prompt of a prompts file.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptEntry {
    /// 1-based line in the file.
    pub line: u64,
    /// The prompt text.
    pub prompt: String,
    /// Output length given with the prompt (`max_tokens` or `output_tokens`).
    pub output_tokens: Option<u32>,
}

/// How a prompts file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptsFormat {
    /// JSON Lines when the first non-empty line starts with `{`, text lines otherwise.
    Auto,
    /// One prompt per non-empty line.
    Text,
    /// One JSON object per line.
    Jsonl,
}

/// Reads a prompts file. Errors name the file and the 1-based line.
pub fn read_prompts(path: &Path, format: PromptsFormat) -> Result<Vec<PromptEntry>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_prompts(&text, path, format)
}

/// [`read_prompts`] from a string; `path` is used in error messages.
pub fn parse_prompts(text: &str, path: &Path, format: PromptsFormat) -> Result<Vec<PromptEntry>> {
    let jsonl = match format {
        PromptsFormat::Jsonl => true,
        PromptsFormat::Text => false,
        PromptsFormat::Auto => text
            .lines()
            .find(|l| !l.trim().is_empty())
            .is_some_and(|l| l.trim_start().starts_with('{')),
    };
    let bad = |line: u64, message: String| Error::csv(path, line, message);
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i as u64 + 1;
        if raw.trim().is_empty() {
            continue;
        }
        if !jsonl {
            out.push(PromptEntry {
                line,
                prompt: raw.to_string(),
                output_tokens: None,
            });
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(raw).map_err(|e| bad(line, format!("invalid JSON: {e}")))?;
        let prompt = v
            .get("prompt")
            .and_then(|p| p.as_str())
            .ok_or_else(|| bad(line, "no string field \"prompt\"".into()))?;
        let mut output_tokens = None;
        for key in ["max_tokens", "output_tokens"] {
            if let Some(x) = v.get(key).filter(|x| !x.is_null()) {
                let n = x
                    .as_u64()
                    .filter(|&n| n >= 1 && n <= u64::from(u32::MAX))
                    .ok_or_else(|| bad(line, format!("\"{key}\" must be an integer >= 1")))?;
                output_tokens = Some(n as u32);
                break;
            }
        }
        out.push(PromptEntry {
            line,
            prompt: prompt.to_string(),
            output_tokens,
        });
    }
    Ok(out)
}

/// The tokens a chat template adds around a prompt.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatOverhead {
    /// The raw prompt (a `/v1/completions` request).
    None,
    /// A fixed number of tokens per prompt.
    Fixed(u32),
    /// A template with a `{prompt}` placeholder, tokenized as a whole, e.g. Qwen3's
    /// `<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n`.
    Template(String),
}

/// Where output lengths come from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutputLengths {
    /// Used for prompts without their own length (and for all when `force`).
    pub default: Option<u32>,
    /// Ignore per-prompt lengths.
    pub force: bool,
}

/// Counts every prompt's tokens and resolves its output length:
/// `(num_prefill_tokens, num_decode_tokens)` per prompt, in file order. Errors name the
/// line of a prompt without an output length when no default is given, and of an empty
/// prompt (0 tokens).
pub fn prompt_lengths(
    entries: &[PromptEntry],
    counter: &TokenCounter,
    overhead: &ChatOverhead,
    outputs: OutputLengths,
    path: &Path,
) -> Result<Vec<(u32, u32)>> {
    if let ChatOverhead::Template(t) = overhead
        && !t.contains("{prompt}")
    {
        return Err(Error::Config(
            "a chat template must contain the placeholder {prompt}".into(),
        ));
    }
    entries
        .iter()
        .map(|e| {
            let prefill = match overhead {
                ChatOverhead::None => counter.count(&e.prompt)?,
                ChatOverhead::Fixed(n) => counter.count(&e.prompt)? + n,
                ChatOverhead::Template(t) => counter.count(&t.replace("{prompt}", &e.prompt))?,
            };
            if prefill == 0 {
                return Err(Error::csv(path, e.line, "the prompt has no tokens"));
            }
            let decode = if outputs.force {
                outputs.default
            } else {
                e.output_tokens.or(outputs.default)
            };
            let decode = decode.ok_or_else(|| {
                Error::csv(
                    path,
                    e.line,
                    "no output length: give one per prompt (`max_tokens`/`output_tokens` in \
                     JSONL) or a default (--output-tokens)",
                )
            })?;
            Ok((prefill, decode))
        })
        .collect()
}

/// Writes a lengths CSV (`num_prefill_tokens,num_decode_tokens`).
pub fn write_lengths_csv(path: &Path, rows: &[(u32, u32)]) -> Result<()> {
    use std::io::Write;
    let io = |e| Error::io(path, e);
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    writeln!(w, "num_prefill_tokens,num_decode_tokens").map_err(io)?;
    for (p, d) in rows {
        writeln!(w, "{p},{d}").map_err(io)?;
    }
    w.flush().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_detected_and_errors_name_the_line() {
        let p = Path::new("p.txt");
        let text = "hello world\n\n  second prompt\n";
        let e = parse_prompts(text, p, PromptsFormat::Auto).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!((e[1].line, e[1].prompt.as_str()), (3, "  second prompt"));
        let jsonl = "{\"prompt\": \"a b\", \"max_tokens\": 7}\n{\"prompt\": \"c\", \"output_tokens\": 3}\n{\"prompt\": \"d\"}\n";
        let e = parse_prompts(jsonl, p, PromptsFormat::Auto).unwrap();
        let outs: Vec<_> = e.iter().map(|e| e.output_tokens).collect();
        assert_eq!(outs, [Some(7), Some(3), None]);
        let err = parse_prompts("{\"prompt\": 1}\n", p, PromptsFormat::Auto).unwrap_err();
        assert!(err.to_string().contains("p.txt:1:"), "{err}");
        let err = parse_prompts(
            "{\"prompt\": \"x\"}\n{\"prompt\": \"y\", \"max_tokens\": 0}\n",
            p,
            PromptsFormat::Auto,
        )
        .unwrap_err();
        assert!(err.to_string().contains("p.txt:2:"), "{err}");
        // A text file whose lines happen to look like JSON is still text when asked.
        let e = parse_prompts("{x}\n", p, PromptsFormat::Text).unwrap();
        assert_eq!(e[0].prompt, "{x}");
    }
}
