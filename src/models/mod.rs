//! The network architectures. Each file turns token ids into per-token hidden states; pooling,
//! batching and loading live elsewhere.

pub(crate) mod bert;
pub(crate) mod nomic_bert;
pub(crate) mod qwen3;

use candle_core::Tensor;
use candle_nn::VarBuilder;
use serde::Deserialize;

use crate::error::{Error, Result};

/// Architectures rembed can run, named as in `models.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Architecture {
    /// BERT (all-MiniLM, bge-small, ...).
    Bert,
    /// XLM-RoBERTa (bge-m3): BERT with positions offset past the padding id.
    XlmRoberta,
    /// NomicBert (nomic-embed-text v1 / v1.5).
    NomicBert,
    /// Qwen3 decoder used as an encoder (Qwen3-Embedding).
    Qwen3,
}

impl Architecture {
    /// Maps `config.json`'s `model_type` to an architecture.
    pub(crate) fn from_model_type(model_type: &str) -> Option<Self> {
        match model_type {
            "bert" => Some(Self::Bert),
            "xlm-roberta" | "xlm_roberta" | "roberta" => Some(Self::XlmRoberta),
            "nomic_bert" | "nomic-bert" => Some(Self::NomicBert),
            "qwen3" => Some(Self::Qwen3),
            _ => None,
        }
    }

    /// The name used in `models.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bert => "bert",
            Self::XlmRoberta => "xlm-roberta",
            Self::NomicBert => "nomic-bert",
            Self::Qwen3 => "qwen3",
        }
    }
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One padded batch, as every model receives it.
pub(crate) struct ModelInput {
    /// `(B, L)` u32 token ids, right-padded.
    pub input_ids: Tensor,
    /// Real tokens per row.
    pub lengths: Vec<usize>,
}

/// A loaded network: token ids in, hidden states `(B, L, H)` out, in the compute dtype.
pub(crate) trait Encoder: Send + Sync {
    fn forward(&self, input: &ModelInput) -> candle_core::Result<Tensor>;
}

/// Builds the network named by `architecture` from its `config.json` and weights.
pub(crate) fn load(
    architecture: Architecture,
    config: &serde_json::Value,
    config_path: &std::path::Path,
    vb: VarBuilder,
) -> Result<Box<dyn Encoder>> {
    let parse_err = |e: serde_json::Error| Error::Malformed {
        path: config_path.to_path_buf(),
        reason: e.to_string(),
    };
    match architecture {
        Architecture::Bert | Architecture::XlmRoberta => {
            let cfg: bert::Config = serde_json::from_value(config.clone()).map_err(parse_err)?;
            let flavour = if architecture == Architecture::XlmRoberta {
                bert::Flavour::XlmRoberta
            } else {
                bert::Flavour::Bert
            };
            Ok(Box::new(bert::Model::load(vb, &cfg, flavour)?))
        }
        Architecture::NomicBert => {
            let cfg: nomic_bert::Config =
                serde_json::from_value(config.clone()).map_err(parse_err)?;
            Ok(Box::new(nomic_bert::Model::load(vb, &cfg)?))
        }
        Architecture::Qwen3 => {
            let cfg: qwen3::Config = serde_json::from_value(config.clone()).map_err(parse_err)?;
            Ok(Box::new(qwen3::Model::load(vb, &cfg)?))
        }
    }
}
