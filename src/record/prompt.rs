//! Prompts of an exact token length.
//!
//! A recording is only comparable with a simulation if every prompt has exactly the length the
//! workload asks for. Three ways to get there ([`PromptMode`]):
//! * `words`: `w1000 w1001 …`, n words, for servers whose tokenizer is word-level (the
//!   project's GPU checkpoint: `w<i>` is token `i`), so n words are n tokens;
//! * `token-ids`: the prompt as a list of token ids (vLLM, SGLang, TGI accept it), no
//!   tokenizer involved at all;
//! * `text`: text built to tokenize to exactly n tokens under a given tokenizer
//!   ([`TokenCounter::exact_text`]).
//!
//! Prompts of different requests never share a prefix (servers cache prefixes): request `r`'s
//! word/token `i` is number `1000 + (r · 1009 + i) mod 150000`, so the first tokens differ
//! for 150,000 consecutive request ids. The server's own count (`usage.prompt_tokens`) is
//! checked against the length asked for by the recorder.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::tokenize::TokenCounter;

/// How prompts are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptMode {
    /// `w<k> w<k+1> …` words (one token each under a word-level tokenizer).
    Words,
    /// A list of token ids.
    TokenIds,
    /// Text of an exact length under a tokenizer.
    Text,
}

impl PromptMode {
    /// Parses `words`, `token-ids` or `text`.
    pub fn parse(s: &str) -> Result<PromptMode> {
        match s {
            "words" => Ok(PromptMode::Words),
            "token-ids" | "token_ids" | "ids" => Ok(PromptMode::TokenIds),
            "text" => Ok(PromptMode::Text),
            _ => Err(Error::Config(format!(
                "unknown prompt mode '{s}'; known: words, token-ids, text"
            ))),
        }
    }

    /// The name `parse` accepts.
    pub fn name(self) -> &'static str {
        match self {
            PromptMode::Words => "words",
            PromptMode::TokenIds => "token-ids",
            PromptMode::Text => "text",
        }
    }
}

/// First word/token number.
pub const BASE: u64 = 1000;
/// Number of distinct words/tokens used (`w1000` … `w150999`).
pub const SPAN: u64 = 150_000;
/// Stride between requests (prime, so coprime with [`SPAN`]).
const STRIDE: u64 = 1009;

/// The `k`-th word/token number of request `variant`.
pub fn token_number(variant: u64, k: u64) -> u64 {
    BASE + (variant.wrapping_mul(STRIDE).wrapping_add(k)) % SPAN
}

/// Builds prompts of exact lengths.
#[derive(Debug, Clone)]
pub struct PromptBuilder {
    mode: PromptMode,
    tokenizer: Option<Arc<TokenCounter>>,
}

impl PromptBuilder {
    /// A builder; `text` mode needs a tokenizer.
    pub fn new(mode: PromptMode, tokenizer: Option<Arc<TokenCounter>>) -> Result<PromptBuilder> {
        if mode == PromptMode::Text && tokenizer.is_none() {
            return Err(Error::Config(
                "prompt mode text needs a tokenizer (--tokenizer tokenizer.json)".into(),
            ));
        }
        Ok(PromptBuilder { mode, tokenizer })
    }

    /// The mode.
    pub fn mode(&self) -> PromptMode {
        self.mode
    }

    /// The `prompt` field of a completion request of `n` tokens for request `variant`.
    pub fn prompt(&self, variant: u64, n: u32) -> Result<serde_json::Value> {
        let n = u64::from(n);
        Ok(match self.mode {
            PromptMode::Words => {
                let mut s = String::with_capacity(n as usize * 8);
                for k in 0..n {
                    if k > 0 {
                        s.push(' ');
                    }
                    s.push('w');
                    s.push_str(&token_number(variant, k).to_string());
                }
                serde_json::Value::String(s)
            }
            PromptMode::TokenIds => serde_json::Value::Array(
                (0..n)
                    .map(|k| serde_json::Value::from(token_number(variant, k)))
                    .collect(),
            ),
            PromptMode::Text => {
                let t = self.tokenizer.as_ref().expect("checked in new");
                serde_json::Value::String(t.exact_text(n as u32, variant)?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_ids_have_exact_lengths_and_no_shared_prefix() {
        let b = PromptBuilder::new(PromptMode::Words, None).unwrap();
        let p0 = b.prompt(0, 3).unwrap();
        assert_eq!(p0, "w1000 w1001 w1002");
        let p1 = b.prompt(1, 5).unwrap();
        assert_eq!(p1.as_str().unwrap().split_whitespace().count(), 5);
        assert!(p1.as_str().unwrap().starts_with("w2009 "));
        let firsts: std::collections::HashSet<u64> =
            (0..20_000).map(|r| token_number(r, 0)).collect();
        assert_eq!(firsts.len(), 20_000);
        let ids = PromptBuilder::new(PromptMode::TokenIds, None).unwrap();
        let v = ids.prompt(2, 4).unwrap();
        assert_eq!(v, serde_json::json!([3018, 3019, 3020, 3021]));
        assert!(PromptBuilder::new(PromptMode::Text, None).is_err());
    }
}
