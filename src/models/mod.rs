//! The network architectures. Each file turns token ids into per-token hidden states; pooling,
//! batching and loading live elsewhere. [`Config`] is `config.json`, typed: it picks the
//! architecture by `model_type` and answers every question about the network's sizes.

pub(crate) mod bert;
pub(crate) mod encoder;
pub(crate) mod heads;
pub(crate) mod nomic_bert;
pub(crate) mod qwen3;
pub(crate) mod shape;

use std::path::Path;

use candle_nn::VarBuilder;
use serde::Deserialize;

use crate::error::{Error, Result};
use encoder::{Encoder, ModelInput};
use heads::Heads;
use shape::Shape;

/// Architectures rembed can run, named as in `models.toml` (`config.json`'s `model_type`
/// spellings are accepted too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Architecture {
    /// BERT (all-MiniLM, bge-small, ...).
    Bert,
    /// XLM-RoBERTa (bge-m3): BERT with positions offset past the padding id.
    #[serde(alias = "xlm_roberta", alias = "roberta")]
    XlmRoberta,
    /// NomicBert (nomic-embed-text v1 / v1.5).
    #[serde(alias = "nomic_bert")]
    NomicBert,
    /// Qwen3 decoder used as an encoder (Qwen3-Embedding).
    Qwen3,
}

impl Architecture {
    /// Every architecture, for messages that list them.
    pub const ALL: [Self; 4] = [Self::Bert, Self::XlmRoberta, Self::NomicBert, Self::Qwen3];

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

/// `config.json`, typed by its `model_type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "model_type")]
pub(crate) enum Config {
    #[serde(rename = "bert")]
    Bert(bert::Config),
    #[serde(rename = "xlm-roberta", alias = "xlm_roberta", alias = "roberta")]
    XlmRoberta(bert::Config),
    #[serde(rename = "nomic_bert", alias = "nomic-bert")]
    NomicBert(nomic_bert::Config),
    #[serde(rename = "qwen3")]
    Qwen3(qwen3::Config),
}

impl Config {
    /// Parses and checks a config; `path` and `model` name the source in errors. An unknown
    /// `model_type` is [`Error::UnsupportedArchitecture`], sizes that cannot make a network
    /// (zero heads, heads that do not divide the width) are [`Error::Malformed`], before any
    /// tensor is built.
    pub(crate) fn parse(value: &serde_json::Value, path: &Path, model: &str) -> Result<Self> {
        let model_type = value
            .get("model_type")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        if serde_json::from_value::<Architecture>(model_type.into()).is_err() {
            return Err(Error::UnsupportedArchitecture {
                model: model.to_string(),
                architecture: model_type.to_string(),
                supported: Architecture::ALL.map(Architecture::as_str).join(", "),
            });
        }
        let malformed = |reason: String| Error::Malformed {
            path: path.to_path_buf(),
            reason,
        };
        let config: Self =
            serde_json::from_value(value.clone()).map_err(|e| malformed(e.to_string()))?;
        let shape = config.shape().map_err(|e| malformed(e.to_string()))?;
        let explicit_head_dim = matches!(&config, Self::Qwen3(c) if c.explicit_head_dim());
        shape.check(explicit_head_dim).map_err(malformed)?;
        Ok(config)
    }

    pub(crate) fn architecture(&self) -> Architecture {
        match self {
            Self::Bert(_) => Architecture::Bert,
            Self::XlmRoberta(_) => Architecture::XlmRoberta,
            Self::NomicBert(_) => Architecture::NomicBert,
            Self::Qwen3(_) => Architecture::Qwen3,
        }
    }

    /// The network's sizes.
    pub(crate) fn shape(&self) -> candle_core::Result<Shape> {
        Ok(match self {
            Self::Bert(c) => c.shape(bert::Flavour::Bert),
            Self::XlmRoberta(c) => c.shape(bert::Flavour::XlmRoberta),
            Self::NomicBert(c) => c.shape()?,
            Self::Qwen3(c) => c.shape(),
        })
    }

    /// Whether the feed-forward block is gated (SwiGLU: three matrices where BERT has two).
    pub(crate) fn gated(&self) -> bool {
        matches!(self, Self::NomicBert(_) | Self::Qwen3(_))
    }

    /// Whether tokens attend only to earlier tokens.
    pub(crate) fn causal(&self) -> bool {
        matches!(self, Self::Qwen3(_))
    }

    /// Weights a model reads without stating their shape (it learns a size from the
    /// checkpoint), with the shape the config implies: what a source of made-up weights must
    /// know.
    pub(crate) fn unchecked_shapes(&self) -> Vec<(&'static str, Vec<usize>)> {
        match self {
            Self::NomicBert(c) => {
                let (shape, types) = (c.shape().ok(), c.type_vocab_size());
                shape
                    .map(|s| {
                        vec![
                            ("fc11.weight", vec![s.intermediate, s.hidden]),
                            ("token_type_embeddings.weight", vec![types, s.hidden]),
                        ]
                    })
                    .unwrap_or_default()
            }
            _ => Vec::new(),
        }
    }

    /// Builds the network from its weights.
    fn encoder(&self, vb: VarBuilder) -> candle_core::Result<Box<dyn Encoder>> {
        Ok(match self {
            Self::Bert(c) => Box::new(bert::Model::load(vb, c, bert::Flavour::Bert)?),
            Self::XlmRoberta(c) => Box::new(bert::Model::load(vb, c, bert::Flavour::XlmRoberta)?),
            Self::NomicBert(c) => Box::new(nomic_bert::Model::load(vb, c)?),
            Self::Qwen3(c) => Box::new(qwen3::Model::load(vb, c)?),
        })
    }
}

/// A model on one device: the encoder and whatever output heads its checkpoint ships.
pub(crate) struct Network {
    encoder: Box<dyn Encoder>,
    heads: Heads,
}

impl Network {
    pub(crate) fn new(config: &Config, vb: VarBuilder, heads: Heads) -> candle_core::Result<Self> {
        Ok(Self {
            encoder: config.encoder(vb)?,
            heads,
        })
    }

    /// A network around any encoder, for tests of the code that drives it.
    #[cfg(test)]
    pub(crate) fn from_encoder(encoder: Box<dyn Encoder>) -> Self {
        Self {
            encoder,
            heads: Heads::default(),
        }
    }

    /// Hidden states `(B, L, H)` of a padded batch.
    pub(crate) fn forward(&self, input: &ModelInput) -> candle_core::Result<candle_core::Tensor> {
        self.encoder.forward(input)
    }

    pub(crate) fn heads(&self) -> &Heads {
        &self.heads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: serde_json::Value) -> Result<Config> {
        Config::parse(&value, Path::new("config.json"), "m")
    }

    #[test]
    fn model_type_picks_the_architecture_and_bad_sizes_are_refused() {
        let bert = serde_json::json!({
            "model_type": "bert", "vocab_size": 10, "hidden_size": 384,
            "num_hidden_layers": 1, "num_attention_heads": 12, "intermediate_size": 8,
            "hidden_act": "gelu", "max_position_embeddings": 16
        });
        assert_eq!(
            parse(bert.clone()).unwrap().architecture(),
            Architecture::Bert
        );
        let mut xlm = bert.clone();
        xlm["model_type"] = "xlm-roberta".into();
        xlm["pad_token_id"] = 1.into();
        let xlm = parse(xlm).unwrap();
        assert_eq!(xlm.shape().unwrap().position_capacity, Some(14));

        let mut zero = bert.clone();
        zero["num_attention_heads"] = 0.into();
        let err = parse(zero).unwrap_err();
        assert!(
            matches!(&err, Error::Malformed { reason, .. } if reason.contains("heads is 0")),
            "{err}"
        );
        let mut seven = bert.clone();
        seven["num_attention_heads"] = 7.into();
        let err = parse(seven).unwrap_err().to_string();
        assert!(
            err.contains("7 attention heads") && err.contains("config.json"),
            "{err}"
        );

        let mut gpt2 = bert;
        gpt2["model_type"] = "gpt2".into();
        let err = parse(gpt2).unwrap_err();
        assert!(
            matches!(&err, Error::UnsupportedArchitecture { architecture, supported, .. }
                if architecture == "gpt2" && supported.contains("qwen3")),
            "{err}"
        );
    }
}
