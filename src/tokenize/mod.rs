//! Token counting with a HuggingFace `tokenizer.json` (feature `tokenizer`).
//!
//! [`TokenCounter`] wraps the `tokenizers` crate: it counts the tokens of a prompt as an
//! OpenAI-compatible server does for `/v1/completions` (the raw text, special tokens of the
//! tokenizer's post-processor included, no chat template), and builds text that tokenizes to an
//! exact number of tokens ([`TokenCounter::exact_text`]) for `simfid record --prompt-mode text`.
//! [`prompts`] turns a file of real prompts into the lengths CSV that `simfid simulate` and
//! `simfid record` read (`simfid trace`).

pub mod prompts;

use std::path::Path;

use crate::error::{Error, Result};

/// A loaded tokenizer.
pub struct TokenCounter {
    inner: tokenizers::Tokenizer,
    name: String,
    /// Single-token words (each a separate pre-token) that [`Self::exact_text`] strings
    /// together; found lazily.
    fillers: std::sync::OnceLock<Vec<String>>,
    /// Tokens the post-processor adds to any input (BOS, …).
    special: u32,
}

impl std::fmt::Debug for TokenCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCounter")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn tok_err(what: impl Into<String>) -> impl FnOnce(tokenizers::Error) -> Error {
    let what = what.into();
    move |source| Error::Tokenizer { what, source }
}

impl TokenCounter {
    /// Loads a `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<TokenCounter> {
        if !path.is_file() {
            return Err(Error::io(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such tokenizer file"),
            ));
        }
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(tok_err(format!("{}", path.display())))?;
        let mut t = TokenCounter {
            inner,
            name: path.display().to_string(),
            fillers: std::sync::OnceLock::new(),
            special: 0,
        };
        t.special = t.count("")?;
        Ok(t)
    }

    /// Where the tokenizer came from (its path).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Tokens of `text` as a server counts a completion prompt: special tokens of the
    /// post-processor included.
    pub fn count(&self, text: &str) -> Result<u32> {
        let enc = self
            .inner
            .encode_fast(text, true)
            .map_err(tok_err(format!("{}: encoding a prompt", self.name)))?;
        Ok(enc.len() as u32)
    }

    /// Tokens of a streamed piece of output text (no special tokens).
    pub fn count_output(&self, text: &str) -> Result<u32> {
        let enc = self
            .inner
            .encode_fast(text, false)
            .map_err(tok_err(format!("{}: encoding output text", self.name)))?;
        Ok(enc.len() as u32)
    }

    /// Single-token words (` word`, leading space included) that stay one token each when
    /// strung together in any order: text that a simulated server can stream one whole token
    /// at a time, so that [`count_output`](Self::count_output) counts what it streamed.
    pub fn single_token_words(&self) -> Result<&[String]> {
        self.fillers()
    }

    /// Vocabulary size, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Words that are one token each and stay one token when joined with spaces: for each id
    /// in order, the decoded token with its surrounding spaces trimmed, kept when it is ASCII
    /// alphanumeric and `" " + word` encodes to exactly one token.
    fn fillers(&self) -> Result<&[String]> {
        if let Some(f) = self.fillers.get() {
            return Ok(f);
        }
        let mut found = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let added = self.inner.get_added_tokens_decoder();
        for id in 0..self.inner.get_vocab_size(true) as u32 {
            if found.len() >= 1024 {
                break;
            }
            if added.contains_key(&id) {
                continue;
            }
            let Ok(word) = self.inner.decode(&[id], true) else {
                continue;
            };
            let word = word.trim();
            if word.len() < 2
                || !word.bytes().all(|b| b.is_ascii_alphanumeric())
                || !seen.insert(word.to_string())
            {
                continue;
            }
            let piece = format!(" {word}");
            if self.count_output(&piece)? == 1 && self.count_output(&piece.repeat(3))? == 3 {
                found.push(piece);
            }
        }
        if found.len() < 2 {
            return Err(Error::Config(format!(
                "tokenizer {}: found no single-token words to build exact-length text from",
                self.name
            )));
        }
        Ok(self.fillers.get_or_init(|| found))
    }

    /// Text that tokenizes to exactly `n` tokens (special tokens included, as [`Self::count`]
    /// counts). `variant` picks the words, so that two prompts of different variants share no
    /// prefix (servers with prefix caching would otherwise skip work). Errors when `n` is
    /// smaller than the special tokens the tokenizer adds or no exact text is found.
    pub fn exact_text(&self, n: u32, variant: u64) -> Result<String> {
        let fillers = self.fillers()?;
        let f = fillers.len() as u64;
        if n < self.special {
            return Err(Error::Config(format!(
                "tokenizer {} adds {} special tokens: no prompt has {n} tokens",
                self.name, self.special
            )));
        }
        let word = |i: u64| {
            fillers[((variant.wrapping_mul(7919)).wrapping_add(i * 13) % f) as usize].as_str()
        };
        let mut words = (n - self.special) as u64;
        for _ in 0..8 {
            let text: String = (0..words).map(word).collect();
            let c = self.count(&text)?;
            if c == n {
                return Ok(text);
            }
            // Normalizers may strip the leading space or merge across words: adjust and retry.
            words = (words as i64 + i64::from(n) - i64::from(c)).max(0) as u64;
        }
        Err(Error::Config(format!(
            "tokenizer {}: could not build a text of exactly {n} tokens",
            self.name
        )))
    }
}
