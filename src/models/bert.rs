//! BERT, and XLM-RoBERTa as a flavour of it.
//!
//! Reference: `transformers/models/bert/modeling_bert.py` and `.../xlm_roberta/modeling_xlm_roberta.py`.
//! XLM-RoBERTa differs only in its position ids, which start at `pad_token_id + 1` because
//! fairseq reserved the positions up to the padding index, and in its weight-name prefix.

use candle_core::{DType, Module, Tensor};
use candle_nn::{Activation, Embedding, LayerNorm, VarBuilder};
use serde::Deserialize;

use super::encoder::{Encoder, ModelInput};
use super::shape::Shape;
use crate::layers::activation::activate;
use crate::layers::attention::{merge_heads, scaled_dot_product, split_heads, AttentionMask};
use crate::layers::linear::{linear, Linear};
use crate::layers::norm::{add_layer_norm, layer_norm};

/// The fields of `config.json` that the forward pass needs.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Config {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    hidden_act: Activation,
    max_position_embeddings: usize,
    #[serde(default = "one")]
    type_vocab_size: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default)]
    pad_token_id: usize,
    #[serde(default)]
    position_embedding_type: Option<String>,
}

fn one() -> usize {
    1
}

impl Config {
    /// The sizes; XLM-RoBERTa's first `pad_token_id + 1` positions are reserved, so its inputs
    /// hold that many tokens fewer than the position table.
    pub(crate) fn shape(&self, flavour: Flavour) -> Shape {
        let reserved = match flavour {
            Flavour::Bert => 0,
            Flavour::XlmRoberta => self.pad_token_id + 1,
        };
        Shape {
            hidden: self.hidden_size,
            layers: self.num_hidden_layers,
            heads: self.num_attention_heads,
            kv_heads: self.num_attention_heads,
            head_dim: self
                .hidden_size
                .checked_div(self.num_attention_heads)
                .unwrap_or(0),
            intermediate: self.intermediate_size,
            vocab: self.vocab_size,
            max_positions: Some(self.max_position_embeddings),
            position_capacity: Some(self.max_position_embeddings.saturating_sub(reserved)),
        }
    }
}
fn default_eps() -> f64 {
    1e-12
}

/// Which member of the BERT family a checkpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    Bert,
    XlmRoberta,
}

struct Embeddings {
    word: Embedding,
    position: Embedding,
    token_type: Option<Embedding>,
    norm: LayerNorm,
    /// First position id: 0 for BERT, `pad_token_id + 1` for XLM-RoBERTa.
    position_offset: usize,
}

impl Embeddings {
    fn load(vb: VarBuilder, cfg: &Config, flavour: Flavour) -> candle_core::Result<Self> {
        let token_type = if vb.contains_tensor("token_type_embeddings.weight") {
            Some(candle_nn::embedding(
                cfg.type_vocab_size,
                cfg.hidden_size,
                vb.pp("token_type_embeddings"),
            )?)
        } else {
            None
        };
        Ok(Self {
            word: candle_nn::embedding(cfg.vocab_size, cfg.hidden_size, vb.pp("word_embeddings"))?,
            position: candle_nn::embedding(
                cfg.max_position_embeddings,
                cfg.hidden_size,
                vb.pp("position_embeddings"),
            )?,
            token_type,
            norm: layer_norm(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("LayerNorm"))?,
            position_offset: match flavour {
                Flavour::Bert => 0,
                Flavour::XlmRoberta => cfg.pad_token_id + 1,
            },
        })
    }

    fn forward(&self, input_ids: &Tensor) -> candle_core::Result<Tensor> {
        let (_, seq_len) = input_ids.dims2()?;
        let device = input_ids.device();
        let positions = Tensor::arange(
            self.position_offset as u32,
            (self.position_offset + seq_len) as u32,
            device,
        )?;
        let mut x = self
            .word
            .forward(input_ids)?
            .broadcast_add(&self.position.forward(&positions)?)?;
        if let Some(token_type) = &self.token_type {
            // Single-segment inputs: every token has type 0.
            let type_zero = token_type.forward(&Tensor::zeros(1, DType::U32, device)?)?;
            x = x.broadcast_add(&type_zero)?;
        }
        self.norm.forward(&x)
    }
}

struct Attention {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    norm: LayerNorm,
    heads: usize,
    scale: f64,
}

impl Attention {
    fn load(vb: VarBuilder, cfg: &Config) -> candle_core::Result<Self> {
        let h = cfg.hidden_size;
        let this = vb.pp("self");
        Ok(Self {
            query: linear(h, h, this.pp("query"))?,
            key: linear(h, h, this.pp("key"))?,
            value: linear(h, h, this.pp("value"))?,
            output: linear(h, h, vb.pp("output.dense"))?,
            norm: layer_norm(h, cfg.layer_norm_eps, vb.pp("output.LayerNorm"))?,
            heads: cfg.num_attention_heads,
            scale: 1.0 / ((h / cfg.num_attention_heads) as f64).sqrt(),
        })
    }

    fn forward(&self, x: &Tensor, mask: &AttentionMask) -> candle_core::Result<Tensor> {
        let q = split_heads(&self.query.forward(x)?, self.heads)?; // (B, L, H*D) -> (B, H, L, D)
        let k = split_heads(&self.key.forward(x)?, self.heads)?;
        let v = split_heads(&self.value.forward(x)?, self.heads)?;
        let context = merge_heads(&scaled_dot_product(&q, &k, &v, mask, self.scale)?)?;
        add_layer_norm(&self.norm, &self.output.forward(&context)?, x)
    }
}

struct Layer {
    attention: Attention,
    intermediate: Linear,
    output: Linear,
    norm: LayerNorm,
    activation: Activation,
}

impl Layer {
    fn load(vb: VarBuilder, cfg: &Config) -> candle_core::Result<Self> {
        Ok(Self {
            attention: Attention::load(vb.pp("attention"), cfg)?,
            intermediate: linear(
                cfg.hidden_size,
                cfg.intermediate_size,
                vb.pp("intermediate.dense"),
            )?,
            output: linear(
                cfg.intermediate_size,
                cfg.hidden_size,
                vb.pp("output.dense"),
            )?,
            norm: layer_norm(
                cfg.hidden_size,
                cfg.layer_norm_eps,
                vb.pp("output.LayerNorm"),
            )?,
            activation: cfg.hidden_act,
        })
    }

    fn forward(&self, x: &Tensor, mask: &AttentionMask) -> candle_core::Result<Tensor> {
        let x = self.attention.forward(x, mask)?;
        let h = activate(self.activation, &self.intermediate.forward(&x)?)?;
        add_layer_norm(&self.norm, &self.output.forward(&h)?, &x)
    }
}

/// A BERT-family encoder.
pub(crate) struct Model {
    embeddings: Embeddings,
    layers: Vec<Layer>,
}

impl Model {
    /// Loads the weights, whatever prefix the checkpoint put before `embeddings.` (none for
    /// sentence-transformers exports, `bert.` or `roberta.` for task-head checkpoints).
    pub(crate) fn load(
        vb: VarBuilder,
        cfg: &Config,
        flavour: Flavour,
    ) -> candle_core::Result<Self> {
        if let Some(kind) = cfg
            .position_embedding_type
            .as_deref()
            .filter(|k| *k != "absolute")
        {
            candle_core::bail!(
                "position_embedding_type `{kind}` is not supported, only `absolute`"
            );
        }
        let vb = ["", "bert", "roberta", "model"]
            .iter()
            .map(|p| if p.is_empty() { vb.clone() } else { vb.pp(p) })
            .find(|vb| vb.contains_tensor("embeddings.word_embeddings.weight"))
            .unwrap_or(vb);
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::load(vb.pp(format!("encoder.layer.{i}")), cfg))
            .collect::<candle_core::Result<_>>()?;
        Ok(Self {
            embeddings: Embeddings::load(vb.pp("embeddings"), cfg, flavour)?,
            layers,
        })
    }
}

impl Encoder for Model {
    fn forward(&self, input: &ModelInput) -> candle_core::Result<Tensor> {
        let mut x = self.embeddings.forward(&input.input_ids)?;
        let mask = AttentionMask::new(&input.lengths, false, x.device())?;
        for layer in &self.layers {
            x = layer.forward(&x, &mask)?;
        }
        Ok(x)
    }
}
