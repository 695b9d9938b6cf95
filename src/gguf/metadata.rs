//! The model's facts from GGUF metadata (`{arch}.embedding_length`, `{arch}.pooling_type`, ...):
//! the typed config the model code reads, written as the `config.json` it would have come with,
//! and the pooling and context length the registry's spec is overridden with.

use candle_core::quantized::gguf_file::Value;
use serde_json::json;

use super::GgufFile;
use crate::error::Result;
use crate::models::{Architecture, Config};
use crate::pooling::Pooling;

/// What the metadata says beyond the network's shape.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Facts {
    /// `{arch}.pooling_type`; `None` when the file states none.
    pub pooling: Option<Pooling>,
    /// `{arch}.context_length`: the tokens an input may hold.
    pub context_length: usize,
}

fn number(value: &Value) -> Option<f64> {
    Some(match value {
        Value::U8(v) => *v as f64,
        Value::I8(v) => *v as f64,
        Value::U16(v) => *v as f64,
        Value::I16(v) => *v as f64,
        Value::U32(v) => *v as f64,
        Value::I32(v) => *v as f64,
        Value::U64(v) => *v as f64,
        Value::I64(v) => *v as f64,
        Value::F32(v) => *v as f64,
        Value::F64(v) => *v,
        _ => return None,
    })
}

impl GgufFile {
    fn required(&self, key: &str) -> Result<f64> {
        self.arch_value(key)
            .and_then(number)
            .ok_or_else(|| self.malformed(format!("no numeric `{key}` in the metadata")))
    }

    fn optional(&self, key: &str) -> Option<f64> {
        self.arch_value(key).and_then(number)
    }

    /// Rows of a tensor the model asks for by `name`.
    fn rows(&self, name: &str) -> Result<usize> {
        self.info(name)
            .and_then(|(shape, _)| shape.dims().first().copied())
            .ok_or_else(|| self.malformed(format!("no tensor for `{name}`")))
    }

    /// The config the model code is built from, checked as a `config.json` would be.
    pub(crate) fn config(&self) -> Result<Config> {
        let int = |key: &str| self.required(key).map(|v| v as usize);
        let context = int("context_length")?;
        let value = match self.architecture() {
            Architecture::Qwen3 => {
                let heads = int("attention.head_count")?;
                let mut value = json!({
                    "model_type": "qwen3",
                    "vocab_size": self.rows("embed_tokens.weight")?,
                    "hidden_size": int("embedding_length")?,
                    "intermediate_size": int("feed_forward_length")?,
                    "num_hidden_layers": int("block_count")?,
                    "num_attention_heads": heads,
                    "num_key_value_heads": self.optional("attention.head_count_kv").map_or(heads, |v| v as usize),
                    "rms_norm_eps": self.required("attention.layer_norm_rms_epsilon")?,
                    "rope_theta": self.required("rope.freq_base")?,
                    "max_position_embeddings": context,
                });
                if let Some(head_dim) = self.optional("attention.key_length") {
                    value["head_dim"] = json!(head_dim as usize);
                }
                value
            }
            _ => json!({
                "model_type": "nomic_bert",
                "vocab_size": self.rows("embeddings.word_embeddings.weight")?,
                "n_embd": int("embedding_length")?,
                "n_head": int("attention.head_count")?,
                "n_layer": int("block_count")?,
                "n_inner": int("feed_forward_length")?,
                "type_vocab_size": self.rows("embeddings.token_type_embeddings.weight").unwrap_or(2),
                "layer_norm_epsilon": self.required("attention.layer_norm_epsilon")?,
                "rotary_emb_base": self.optional("rope.freq_base").unwrap_or(1000.0),
                // The trained length: longer inputs would get dynamic NTK scaling, but the
                // context length also caps the input.
                "max_trained_positions": context,
                "n_positions": context,
            }),
        };
        Config::parse(&value, self.path(), &self.path().display().to_string())
    }

    /// Pooling and context length.
    pub(crate) fn facts(&self) -> Result<Facts> {
        let pooling = match self.optional("pooling_type").map(|v| v as i64) {
            None | Some(0) => None,
            Some(1) => Some(Pooling::Mean),
            Some(2) => Some(Pooling::Cls),
            Some(3) => Some(Pooling::LastToken),
            Some(other) => {
                return Err(self.malformed(format!(
                    "pooling type {other} is not an embedding pooling rembed runs (1 mean, 2 cls, 3 last)"
                )))
            }
        };
        Ok(Facts {
            pooling,
            context_length: self.required("context_length")? as usize,
        })
    }
}
