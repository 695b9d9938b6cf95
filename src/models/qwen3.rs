//! Qwen3 run as a text encoder (Qwen3-Embedding 0.6B / 4B / 8B).
//!
//! Reference: `transformers/models/qwen3/modeling_qwen3.py`. A pre-norm decoder: RMSNorm,
//! grouped-query attention (fewer key/value heads than query heads), an RMSNorm over each query
//! and key head before the rotary embedding, SwiGLU, and a `head_dim` of its own that need not be
//! `hidden_size / heads`. Unlike a generation model it keeps no KV cache: each batch runs once,
//! causally masked, and the pooling (last token) happens elsewhere.

use candle_core::{Module, Tensor};
use candle_nn::{Embedding, VarBuilder};
use serde::Deserialize;

use super::encoder::{Encoder, ModelInput};
use super::shape::Shape;
use crate::layers::activation::swiglu;
use crate::layers::attention::{merge_heads, scaled_dot_product, split_heads, AttentionMask};
use crate::layers::linear::{linear_b, linear_no_bias, Linear};
use crate::layers::norm::{rms_norm, RmsNorm};
use crate::layers::rotary::{Rotary, RotaryTables};

/// The fields of `config.json` that the forward pass needs.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Config {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    #[serde(default)]
    num_key_value_heads: Option<usize>,
    #[serde(default)]
    head_dim: Option<usize>,
    #[serde(default = "default_eps")]
    rms_norm_eps: f64,
    /// transformers < 5 writes `rope_theta` at the top level ...
    #[serde(default)]
    rope_theta: Option<f64>,
    /// ... transformers 5 inside `rope_parameters`.
    #[serde(default)]
    rope_parameters: Option<RopeParameters>,
    #[serde(default)]
    rope_scaling: Option<RopeParameters>,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    use_sliding_window: bool,
    #[serde(default)]
    max_position_embeddings: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
struct RopeParameters {
    #[serde(default)]
    rope_theta: Option<f64>,
    #[serde(default, alias = "type")]
    rope_type: Option<String>,
}

fn default_eps() -> f64 {
    1e-6
}

impl Config {
    /// The sizes; rotary positions cap no input length.
    pub(crate) fn shape(&self) -> Shape {
        Shape {
            hidden: self.hidden_size,
            layers: self.num_hidden_layers,
            heads: self.num_attention_heads,
            kv_heads: self.kv_heads(),
            head_dim: self.head_dim(),
            intermediate: self.intermediate_size,
            vocab: self.vocab_size,
            max_positions: self.max_position_embeddings,
            position_capacity: None,
        }
    }

    /// Whether the config states the head size, which then need not divide the width.
    pub(crate) fn explicit_head_dim(&self) -> bool {
        self.head_dim.is_some()
    }

    fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or_else(|| {
            self.hidden_size
                .checked_div(self.num_attention_heads)
                .unwrap_or(0)
        })
    }

    /// The rotary base; scaled rotary variants (YaRN, linear, ...) are refused rather than run
    /// unscaled.
    fn rope_theta(&self) -> candle_core::Result<f64> {
        for params in [&self.rope_parameters, &self.rope_scaling]
            .into_iter()
            .flatten()
        {
            if let Some(kind) = params.rope_type.as_deref().filter(|k| *k != "default") {
                candle_core::bail!("rope type `{kind}` is not supported, only `default`");
            }
        }
        Ok(self
            .rope_parameters
            .as_ref()
            .and_then(|p| p.rope_theta)
            .or(self.rope_theta)
            .unwrap_or(10_000.0))
    }
}

struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    scale: f64,
}

impl Attention {
    fn load(vb: VarBuilder, cfg: &Config) -> candle_core::Result<Self> {
        let (h, d) = (cfg.hidden_size, cfg.head_dim());
        let (heads, kv_heads) = (cfg.num_attention_heads, cfg.kv_heads());
        if heads % kv_heads != 0 {
            candle_core::bail!("{heads} query heads cannot share {kv_heads} key/value heads");
        }
        let bias = cfg.attention_bias;
        Ok(Self {
            q_proj: linear_b(h, heads * d, bias, vb.pp("q_proj"))?,
            k_proj: linear_b(h, kv_heads * d, bias, vb.pp("k_proj"))?,
            v_proj: linear_b(h, kv_heads * d, bias, vb.pp("v_proj"))?,
            o_proj: linear_b(heads * d, h, bias, vb.pp("o_proj"))?,
            q_norm: rms_norm(d, cfg.rms_norm_eps, vb.pp("q_norm"))?,
            k_norm: rms_norm(d, cfg.rms_norm_eps, vb.pp("k_norm"))?,
            heads,
            kv_heads,
            head_dim: d,
            scale: 1.0 / (d as f64).sqrt(),
        })
    }

    /// Projects to heads and normalizes each head: `(B, L, H)` -> `(B, heads, L, D)`.
    fn heads(
        &self,
        x: &Tensor,
        proj: &Linear,
        norm: &RmsNorm,
        heads: usize,
    ) -> candle_core::Result<Tensor> {
        let (b, l, _) = x.dims3()?;
        // (B, L, heads * D) -> (B, L, heads, D): the norm runs over each head's D components.
        let x = proj.forward(x)?.reshape((b, l, heads, self.head_dim))?;
        norm.forward(&x)?.transpose(1, 2) // -> (B, heads, L, D)
    }

    fn forward(
        &self,
        x: &Tensor,
        mask: &AttentionMask,
        rotary: &RotaryTables,
    ) -> candle_core::Result<Tensor> {
        let q = rotary.apply(&self.heads(x, &self.q_proj, &self.q_norm, self.heads)?)?;
        let k = rotary.apply(&self.heads(x, &self.k_proj, &self.k_norm, self.kv_heads)?)?;
        let v = split_heads(&self.v_proj.forward(x)?, self.kv_heads)?; // (B, Hkv, L, D)
        let context = scaled_dot_product(&q, &k, &v, mask, self.scale)?; // (B, Hq, L, D)
        self.o_proj.forward(&merge_heads(&context)?)
    }
}

struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl Mlp {
    fn load(vb: VarBuilder, cfg: &Config) -> candle_core::Result<Self> {
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        Ok(Self {
            gate_proj: linear_no_bias(h, i, vb.pp("gate_proj"))?,
            up_proj: linear_no_bias(h, i, vb.pp("up_proj"))?,
            down_proj: linear_no_bias(i, h, vb.pp("down_proj"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let gated = swiglu(&self.gate_proj.forward(x)?, &self.up_proj.forward(x)?)?;
        self.down_proj.forward(&gated)
    }
}

struct Layer {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    mlp: Mlp,
}

impl Layer {
    fn load(vb: VarBuilder, cfg: &Config) -> candle_core::Result<Self> {
        let (h, eps) = (cfg.hidden_size, cfg.rms_norm_eps);
        Ok(Self {
            input_layernorm: rms_norm(h, eps, vb.pp("input_layernorm"))?,
            self_attn: Attention::load(vb.pp("self_attn"), cfg)?,
            post_attention_layernorm: rms_norm(h, eps, vb.pp("post_attention_layernorm"))?,
            mlp: Mlp::load(vb.pp("mlp"), cfg)?,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        mask: &AttentionMask,
        rotary: &RotaryTables,
    ) -> candle_core::Result<Tensor> {
        let h = self
            .self_attn
            .forward(&self.input_layernorm.forward(x)?, mask, rotary)?;
        let x = (x + h)?;
        let h = self
            .mlp
            .forward(&self.post_attention_layernorm.forward(&x)?)?;
        x + h
    }
}

/// A Qwen3 decoder run over whole padded batches.
pub(crate) struct Model {
    embed_tokens: Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    rotary: Rotary,
}

impl Model {
    /// Loads the weights, with or without the `model.` prefix (embedding checkpoints are saved
    /// without it, causal-LM checkpoints with it).
    pub(crate) fn load(vb: VarBuilder, cfg: &Config) -> candle_core::Result<Self> {
        if cfg.use_sliding_window {
            candle_core::bail!("sliding-window attention is not supported");
        }
        let vb = if vb.contains_tensor("embed_tokens.weight") {
            vb
        } else {
            vb.pp("model")
        };
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::load(vb.pp(format!("layers.{i}")), cfg))
            .collect::<candle_core::Result<_>>()?;
        Ok(Self {
            embed_tokens: candle_nn::embedding(
                cfg.vocab_size,
                cfg.hidden_size,
                vb.pp("embed_tokens"),
            )?,
            layers,
            norm: rms_norm(cfg.hidden_size, cfg.rms_norm_eps, vb.pp("norm"))?,
            rotary: Rotary::new(cfg.head_dim(), cfg.rope_theta()?, None)?,
        })
    }
}

impl Encoder for Model {
    fn forward(&self, input: &ModelInput) -> candle_core::Result<Tensor> {
        let seq_len = input.input_ids.dim(1)?;
        let mut x = self.embed_tokens.forward(&input.input_ids)?; // (B, L, H)

        // Causal and padding together, built the same way for every batch: with right padding
        // no real token ever sees a pad, and the last real token sees the whole text.
        let mask = AttentionMask::new(&input.lengths, true, x.device())?;
        let rotary = self.rotary.tables(&input.lengths, seq_len, x.device())?;
        for layer in &self.layers {
            x = layer.forward(&x, &mask, &rotary)?;
        }
        self.norm.forward(&x)
    }
}
