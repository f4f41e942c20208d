use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Architecture facts of a decoder-only transformer, as far as serving cost depends on them.
///
/// Field names follow Vidur's model config where Vidur has one. `head_dim` is explicit because
/// some models (Qwen3) have `head_dim != embedding_dim / num_q_heads`; for Vidur's models the
/// two agree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Name, e.g. `Qwen/Qwen3-0.6B` (Vidur resolves profiles by this name).
    pub name: String,
    /// Transformer layers.
    pub num_layers: u32,
    /// Query heads.
    pub num_q_heads: u32,
    /// Key/value heads (GQA when fewer than query heads).
    pub num_kv_heads: u32,
    /// Hidden size.
    pub embedding_dim: u32,
    /// Attention head dimension.
    pub head_dim: u32,
    /// MLP intermediate size.
    pub mlp_hidden_dim: u32,
    /// Gated (SwiGLU-style) MLP: three matrices instead of two.
    pub use_gated_mlp: bool,
    /// Vocabulary size.
    pub vocab_size: u32,
    /// Maximum positions.
    pub max_position_embeddings: u32,
    /// RoPE base.
    pub rope_theta: f64,
    /// Whether the model has a norm before the MLP (Vidur: `post_attn_norm`).
    pub post_attn_norm: bool,
    /// Input embedding and LM head share weights.
    pub tie_word_embeddings: bool,
}

/// `(name, builder)` of every built-in model.
/// Builds one built-in model.
type Builder = fn() -> ModelSpec;

const BUILTIN: &[(&str, Builder)] = &[
    ("Qwen/Qwen3-0.6B", qwen3_0_6b),
    ("meta-llama/Llama-2-7b-hf", llama2_7b),
    ("meta-llama/Llama-2-70b-hf", llama2_70b),
    ("meta-llama/Meta-Llama-3-8B", llama3_8b),
    ("meta-llama/Meta-Llama-3-70B", llama3_70b),
    ("codellama/CodeLlama-34b-Instruct-hf", codellama_34b),
    ("internlm/internlm-20b", internlm_20b),
    ("internlm/internlm2-20b", internlm2_20b),
    ("microsoft/phi-2", phi2),
    ("Qwen/Qwen-72B", qwen_72b),
];

#[expect(clippy::too_many_arguments, reason = "a table of architecture facts")]
fn llama_like(
    name: &str,
    layers: u32,
    q: u32,
    kv: u32,
    emb: u32,
    mlp: u32,
    vocab: u32,
    max_pos: u32,
    rope: f64,
) -> ModelSpec {
    ModelSpec {
        name: name.to_string(),
        num_layers: layers,
        num_q_heads: q,
        num_kv_heads: kv,
        embedding_dim: emb,
        head_dim: emb / q,
        mlp_hidden_dim: mlp,
        use_gated_mlp: true,
        vocab_size: vocab,
        max_position_embeddings: max_pos,
        rope_theta: rope,
        post_attn_norm: true,
        tie_word_embeddings: false,
    }
}

// Architecture facts of Vidur's models are those of Vidur's `vidur/config/model_config.py`
// at commit 7d47513 (which in turn are the models' published config.json values).
fn llama2_7b() -> ModelSpec {
    llama_like(
        "meta-llama/Llama-2-7b-hf",
        32,
        32,
        32,
        4096,
        11008,
        32768,
        4096,
        10000.0,
    )
}
fn llama2_70b() -> ModelSpec {
    llama_like(
        "meta-llama/Llama-2-70b-hf",
        80,
        64,
        8,
        8192,
        28672,
        32768,
        4096,
        10000.0,
    )
}
fn llama3_8b() -> ModelSpec {
    llama_like(
        "meta-llama/Meta-Llama-3-8B",
        32,
        32,
        8,
        4096,
        14336,
        128256,
        4096,
        500000.0,
    )
}
fn llama3_70b() -> ModelSpec {
    llama_like(
        "meta-llama/Meta-Llama-3-70B",
        80,
        64,
        8,
        8192,
        28672,
        128256,
        8192,
        500000.0,
    )
}
fn codellama_34b() -> ModelSpec {
    llama_like(
        "codellama/CodeLlama-34b-Instruct-hf",
        48,
        64,
        8,
        8192,
        22016,
        32768,
        16384,
        1e6,
    )
}
fn internlm_20b() -> ModelSpec {
    llama_like(
        "internlm/internlm-20b",
        60,
        40,
        40,
        5120,
        13824,
        103168,
        4096,
        10000.0,
    )
}
fn internlm2_20b() -> ModelSpec {
    llama_like(
        "internlm/internlm2-20b",
        48,
        48,
        8,
        6144,
        16384,
        92544,
        32768,
        1e6,
    )
}
fn qwen_72b() -> ModelSpec {
    llama_like("Qwen/Qwen-72B", 80, 64, 64, 8192, 24576, 152064, 32768, 1e6)
}
fn phi2() -> ModelSpec {
    ModelSpec {
        use_gated_mlp: false,
        post_attn_norm: false,
        ..llama_like(
            "microsoft/phi-2",
            32,
            32,
            32,
            2560,
            10240,
            51200,
            2048,
            10000.0,
        )
    }
}
/// Qwen3-0.6B, from its published `config.json` (Qwen/Qwen3-0.6B on Hugging Face).
fn qwen3_0_6b() -> ModelSpec {
    ModelSpec {
        name: "Qwen/Qwen3-0.6B".to_string(),
        num_layers: 28,
        num_q_heads: 16,
        num_kv_heads: 8,
        embedding_dim: 1024,
        head_dim: 128,
        mlp_hidden_dim: 3072,
        use_gated_mlp: true,
        vocab_size: 151936,
        max_position_embeddings: 40960,
        rope_theta: 1_000_000.0,
        post_attn_norm: true,
        tie_word_embeddings: true,
    }
}

/// The subset of a HuggingFace `config.json` that simfid reads.
#[derive(Deserialize)]
struct HfConfig {
    #[serde(default, rename = "_name_or_path")]
    name_or_path: Option<String>,
    #[serde(default)]
    model_type: Option<String>,
    num_hidden_layers: u32,
    num_attention_heads: u32,
    #[serde(default)]
    num_key_value_heads: Option<u32>,
    hidden_size: u32,
    #[serde(default)]
    head_dim: Option<u32>,
    intermediate_size: u32,
    vocab_size: u32,
    #[serde(default)]
    max_position_embeddings: Option<u32>,
    #[serde(default)]
    rope_theta: Option<f64>,
    #[serde(default)]
    tie_word_embeddings: Option<bool>,
}

impl ModelSpec {
    /// A built-in model by name (case-insensitive; the part after `/` alone also matches).
    /// Unknown names give an error that lists the known ones.
    pub fn builtin(name: &str) -> Result<ModelSpec> {
        let wanted = name.to_ascii_lowercase();
        BUILTIN
            .iter()
            .find(|(n, _)| {
                let n = n.to_ascii_lowercase();
                n == wanted || n.rsplit('/').next() == Some(wanted.as_str())
            })
            .map(|(_, f)| f())
            .ok_or_else(|| Error::UnknownModel {
                name: name.to_string(),
                known: Self::builtin_names().join(", "),
            })
    }

    /// Names of the built-in models.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(n, _)| *n).collect()
    }

    /// Qwen3-0.6B, simfid's default model.
    pub fn qwen3_0_6b() -> ModelSpec {
        qwen3_0_6b()
    }

    /// Reads a HuggingFace `config.json`. `name` overrides the name recorded in the file.
    pub fn from_hf_config(path: &Path, name: Option<&str>) -> Result<ModelSpec> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_hf_config_str(&text, name).map_err(|message| Error::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses the text of a HuggingFace `config.json`.
    pub fn from_hf_config_str(
        text: &str,
        name: Option<&str>,
    ) -> std::result::Result<ModelSpec, String> {
        let c: HfConfig = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if c.num_attention_heads == 0 || c.num_hidden_layers == 0 || c.hidden_size == 0 {
            return Err(
                "num_attention_heads, num_hidden_layers and hidden_size must be > 0".into(),
            );
        }
        let model_type = c.model_type.unwrap_or_default();
        let non_gated = matches!(model_type.as_str(), "phi" | "gpt2" | "gpt_neox" | "opt");
        Ok(ModelSpec {
            name: name
                .map(str::to_string)
                .or(c.name_or_path)
                .unwrap_or_else(|| model_type.clone()),
            num_layers: c.num_hidden_layers,
            num_q_heads: c.num_attention_heads,
            num_kv_heads: c.num_key_value_heads.unwrap_or(c.num_attention_heads),
            embedding_dim: c.hidden_size,
            head_dim: c.head_dim.unwrap_or(c.hidden_size / c.num_attention_heads),
            mlp_hidden_dim: c.intermediate_size,
            use_gated_mlp: !non_gated,
            vocab_size: c.vocab_size,
            max_position_embeddings: c.max_position_embeddings.unwrap_or(0),
            rope_theta: c.rope_theta.unwrap_or(10000.0),
            post_attn_norm: model_type != "phi",
            tie_word_embeddings: c.tie_word_embeddings.unwrap_or(false),
        })
    }

    /// Resolves a model: a path to a `config.json` (or a folder holding one), else a built-in name.
    pub fn resolve(name_or_path: &str) -> Result<ModelSpec> {
        let p = Path::new(name_or_path);
        if p.is_dir() && p.join("config.json").is_file() {
            return Self::from_hf_config(&p.join("config.json"), None);
        }
        if p.is_file() {
            return Self::from_hf_config(p, None);
        }
        // A path (not a model name): say that the file is missing, not that the model is
        // unknown. Built-in names have one slash (`org/name`) and never end in `.json`.
        let looks_like_path = name_or_path.ends_with(".json")
            || name_or_path.starts_with(['.', '/', '~'])
            || p.is_dir()
            || name_or_path.matches('/').count() > 1;
        if looks_like_path && Self::builtin(name_or_path).is_err() {
            let missing = if p.is_dir() {
                p.join("config.json")
            } else {
                p.to_path_buf()
            };
            return Err(Error::io(
                missing,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such model config (config.json) file",
                ),
            ));
        }
        Self::builtin(name_or_path)
    }

    /// Parameters per device of the transformer blocks (embeddings, LM head and norms
    /// excluded), as Vidur's `ParamCounter` counts them.
    pub fn params_per_device(&self, tp: u32, pp: u32) -> u64 {
        let e = self.embedding_dim as u64;
        let h = self.head_dim as u64;
        let q = (self.num_q_heads / tp) as u64;
        let kv = self.num_kv_heads.div_ceil(tp) as u64;
        let f = self.mlp_hidden_dim as u64;
        let mats = if self.use_gated_mlp { 3 } else { 2 };
        let per_layer = e * h * (q + 2 * kv) + e * h * q + mats * e * f / tp as u64;
        per_layer * (self.num_layers / pp) as u64
    }

    /// KV-cache bytes per token on one device for all layers (K and V, 2 bytes per value).
    pub fn kv_bytes_per_token(&self, tp: u32) -> u64 {
        2 * 2
            * self.head_dim as u64
            * self.num_kv_heads.div_ceil(tp) as u64
            * self.num_layers as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qwen3_builtin_has_published_shape() {
        let m = ModelSpec::builtin("qwen3-0.6b").unwrap();
        assert_eq!((m.num_layers, m.num_q_heads, m.num_kv_heads), (28, 16, 8));
        assert_eq!(
            (m.head_dim, m.embedding_dim, m.mlp_hidden_dim),
            (128, 1024, 3072)
        );
        assert_eq!(m.vocab_size, 151936);
        assert!(m.tie_word_embeddings);
    }

    #[test]
    fn unknown_model_lists_known_ones() {
        let e = ModelSpec::builtin("gpt-9").unwrap_err().to_string();
        assert!(e.contains("gpt-9") && e.contains("Qwen/Qwen3-0.6B"), "{e}");
    }

    #[test]
    fn llama3_8b_params_match_vidur_worked_example() {
        // Vidur's `vidur/utils/param_counter.py` on Llama-3-8B: 218,103,808 parameters per layer,
        // 32 layers.
        let m = ModelSpec::builtin("meta-llama/Meta-Llama-3-8B").unwrap();
        assert_eq!(m.params_per_device(1, 1), 218_103_808 * 32);
    }

    #[test]
    fn hf_config_parses_qwen3_fields() {
        let text = r#"{"model_type":"qwen3","num_hidden_layers":28,"num_attention_heads":16,
            "num_key_value_heads":8,"hidden_size":1024,"head_dim":128,"intermediate_size":3072,
            "vocab_size":151936,"max_position_embeddings":40960,"rope_theta":1000000,
            "tie_word_embeddings":true}"#;
        let m = ModelSpec::from_hf_config_str(text, Some("Qwen/Qwen3-0.6B")).unwrap();
        assert_eq!(m, ModelSpec::qwen3_0_6b());
    }

    #[test]
    fn hf_config_error_is_reported() {
        assert!(ModelSpec::from_hf_config_str("{\"hidden_size\": 3}", None).is_err());
    }
}
