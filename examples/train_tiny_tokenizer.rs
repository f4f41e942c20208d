//! Trains the tiny byte-level BPE tokenizer committed as `fixtures/tokenizers/tiny-bpe.json`,
//! which the tests use in place of a real model's tokenizer (the real Qwen3 one is 11 MB).
//!
//! ```text
//! cargo run --example train_tiny_tokenizer -- fixtures/tokenizers/tiny-bpe.json
//! ```
//!
//! Byte-level pre-tokenizer and decoder (GPT-2/Qwen style: every byte is representable, spaces
//! are kept as `Ġ`), 320 tokens (256 bytes + merges learnt from the corpus below) plus two
//! special tokens that a chat template uses. Small enough to read, large enough that common
//! words are single tokens and rarer ones split, which is what the tests need.

use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, TokenizerBuilder};

const CORPUS: &str = "\
A fidelity test compares a simulated run with a real one of the same workload. \
The server streams tokens to the client as they are generated, one chunk per token. \
The client records the time of every chunk, the time to first token and the gaps between \
tokens. The simulator predicts the time of every batch from a model of the hardware. \
When the simulated and the real times agree, the simulator is faithful to the server. \
Requests arrive at random times, with a prompt and a number of output tokens. \
The scheduler forms a batch of requests, runs one step, and repeats until every request \
is done. Long prompts are split into chunks so that decoding requests are not stalled. \
The cache of keys and values grows with every token and is freed when the request ends. \
A model with more layers takes more time per step; a larger batch takes more memory. \
The time of a step depends on the number of tokens in the batch and on their context. \
Hello, world! This is a test of the tokenizer with some text in it. \
";

fn main() -> tokenizers::Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fixtures/tokenizers/tiny-bpe.json".into());
    let mut trainer = BpeTrainerBuilder::new()
        .show_progress(false)
        .vocab_size(320)
        .min_frequency(2)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .special_tokens(vec![
            AddedToken::from("<|im_start|>", true),
            AddedToken::from("<|im_end|>", true),
        ])
        .build();
    let mut tokenizer = TokenizerBuilder::new()
        .with_model(BPE::default())
        .with_normalizer(None::<NormalizerWrapper>)
        .with_pre_tokenizer(Some(ByteLevel::new(false, true, true)))
        .with_post_processor(Some(ByteLevel::new(false, true, true)))
        .with_decoder(Some(ByteLevel::default()))
        .build()?;
    let lines: Vec<&str> = CORPUS.split(". ").collect();
    tokenizer.train(&mut trainer, lines.iter())?;
    tokenizer.save(&out, false)?;
    println!("wrote {out}");
    Ok(())
}
