//! NomicBert (nomic-embed-text v1 and v1.5).
//!
//! Reference: nomic's `modeling_hf_nomic_bert.py` (the remote code the checkpoints ship with) and
//! `transformers/models/nomic_bert`. What differs from BERT: no absolute positions but a rotary
//! embedding (base 1000, non-interleaved), one fused `Wqkv` projection, a SwiGLU MLP
//! (`fc2(fc11(x) · silu(fc12(x)))`), no biases, and post-norm blocks (`norm1`, `norm2`).
//!
//! Inputs longer than the trained positions (2048) get dynamic NTK rotary scaling, as the model
//! card loads v1.5 for long inputs (`rotary_scaling_factor=2`), but computed per sequence from its
//! own length. nomic's remote code scales by the padded length of the whole batch (and keeps the
//! scaled frequencies for later calls), so there a text's vector depends on its batch; here it
//! does not, and a text embedded alone gets exactly the remote code's vector.

use candle_core::{Module, Tensor};
use candle_nn::{Embedding, LayerNorm, VarBuilder};
use serde::Deserialize;

use super::encoder::{Encoder, ModelInput};
use super::shape::Shape;
use crate::layers::activation::swiglu;
use crate::layers::attention::{merge_heads, scaled_dot_product, AttentionMask};
use crate::layers::linear::{linear_b, Linear};
use crate::layers::norm::{add_layer_norm, layer_norm};
use crate::layers::rotary::{DynamicNtk, Rotary, RotaryTables};

/// The fields of `config.json` that the forward pass needs. nomic's checkpoints use GPT-2 names
/// (`n_embd`, `n_head`, ...); transformers' native NomicBert writes BERT names, and the published
/// configs now carry both, so either is read.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Config {
    vocab_size: usize,
    n_embd: Option<usize>,
    hidden_size: Option<usize>,
    n_head: Option<usize>,
    num_attention_heads: Option<usize>,
    n_layer: Option<usize>,
    num_hidden_layers: Option<usize>,
    n_inner: Option<usize>,
    intermediate_size: Option<usize>,
    type_vocab_size: Option<usize>,
    layer_norm_epsilon: Option<f64>,
    layer_norm_eps: Option<f64>,
    rotary_emb_base: Option<f64>,
    rope_parameters: Option<RopeParameters>,
    #[serde(default = "one")]
    rotary_emb_fraction: f64,
    #[serde(default)]
    rotary_emb_interleaved: bool,
    #[serde(default)]
    rotary_emb_scale_base: Option<f64>,
    #[serde(default)]
    rotary_scaling_factor: Option<f64>,
    max_trained_positions: Option<usize>,
    max_position_embeddings: Option<usize>,
    n_positions: Option<usize>,
    #[serde(default)]
    qkv_proj_bias: bool,
    #[serde(default)]
    mlp_fc1_bias: bool,
    #[serde(default)]
    mlp_fc2_bias: bool,
    #[serde(default)]
    prenorm: bool,
    activation_function: Option<String>,
    hidden_act: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct RopeParameters {
    rope_theta: Option<f64>,
}

fn one() -> f64 {
    1.0
}

/// One setting under either of its names; nomic's wins.
fn either<T>(nomic: Option<T>, native: Option<T>, name: &str) -> candle_core::Result<T> {
    nomic
        .or(native)
        .ok_or_else(|| candle_core::Error::Msg(format!("config.json has no `{name}`")))
}

/// Scaling factor when the config names none: what the model card passes for long inputs.
const DEFAULT_NTK_FACTOR: f64 = 2.0;

struct Dims {
    hidden: usize,
    heads: usize,
    layers: usize,
    eps: f64,
}

impl Config {
    /// The sizes. The inner width is the config's (the checkpoint may round it up; see [`Mlp`]);
    /// rotary positions cap no input length.
    pub(crate) fn shape(&self) -> candle_core::Result<Shape> {
        let dims = self.dims()?;
        Ok(Shape {
            hidden: dims.hidden,
            layers: dims.layers,
            heads: dims.heads,
            kv_heads: dims.heads,
            head_dim: dims.hidden.checked_div(dims.heads).unwrap_or(0),
            intermediate: self
                .n_inner
                .or(self.intermediate_size)
                .unwrap_or(4 * dims.hidden),
            vocab: self.vocab_size,
            max_positions: self.max_position_embeddings.or(self.n_positions),
            position_capacity: None,
        })
    }

    /// Rows of the token type table; only the first is ever used.
    pub(crate) fn type_vocab_size(&self) -> usize {
        self.type_vocab_size.unwrap_or(2)
    }

    fn dims(&self) -> candle_core::Result<Dims> {
        Ok(Dims {
            hidden: either(self.n_embd, self.hidden_size, "n_embd")?,
            heads: either(self.n_head, self.num_attention_heads, "n_head")?,
            layers: either(self.n_layer, self.num_hidden_layers, "n_layer")?,
            eps: either(
                self.layer_norm_epsilon,
                self.layer_norm_eps,
                "layer_norm_epsilon",
            )
            .unwrap_or(1e-12),
        })
    }

    /// Refuses the variants of the remote code that these weights would be run wrongly under.
    fn check(&self) -> candle_core::Result<()> {
        let activation = self
            .activation_function
            .as_deref()
            .or(self.hidden_act.as_deref())
            .unwrap_or("swiglu");
        let unsupported = if !matches!(activation, "swiglu" | "silu") {
            Some(format!("activation `{activation}`"))
        } else if self.prenorm {
            Some("pre-norm blocks".into())
        } else if self.rotary_emb_interleaved {
            Some("interleaved rotary embeddings".into())
        } else if self.rotary_emb_scale_base.is_some() {
            Some("xPos rotary scaling".into())
        } else if self.rotary_emb_fraction <= 0.0 || self.rotary_emb_fraction > 1.0 {
            Some(format!("rotary_emb_fraction {}", self.rotary_emb_fraction))
        } else {
            None
        };
        match unsupported {
            Some(what) => candle_core::bail!("NomicBert with {what} is not supported"),
            None => Ok(()),
        }
    }

    fn rotary(&self, head_dim: usize) -> candle_core::Result<Rotary> {
        let base = self
            .rotary_emb_base
            .or(self.rope_parameters.as_ref().and_then(|p| p.rope_theta))
            .unwrap_or(1000.0);
        let ntk = DynamicNtk {
            trained_positions: self
                .max_trained_positions
                .or(self.max_position_embeddings)
                .unwrap_or(2048),
            factor: self.rotary_scaling_factor.unwrap_or(DEFAULT_NTK_FACTOR),
        };
        let dim = (head_dim as f64 * self.rotary_emb_fraction) as usize;
        Rotary::new(dim, base, Some(ntk))
    }
}

struct Attention {
    wqkv: Linear,
    out_proj: Linear,
    heads: usize,
    head_dim: usize,
    scale: f64,
}

impl Attention {
    fn load(vb: VarBuilder, cfg: &Config, dims: &Dims) -> candle_core::Result<Self> {
        let h = dims.hidden;
        Ok(Self {
            wqkv: linear_b(h, 3 * h, cfg.qkv_proj_bias, vb.pp("Wqkv"))?,
            out_proj: linear_b(h, h, cfg.qkv_proj_bias, vb.pp("out_proj"))?,
            heads: dims.heads,
            head_dim: h / dims.heads,
            scale: 1.0 / ((h / dims.heads) as f64).sqrt(),
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        mask: &AttentionMask,
        rotary: &RotaryTables,
    ) -> candle_core::Result<Tensor> {
        let (b, l, _) = x.dims3()?;
        // (B, L, 3·H·D) -> (B, L, 3, H, D) -> (3, B, H, L, D): q, k, v side by side in Wqkv.
        let qkv = self
            .wqkv
            .forward(x)?
            .reshape((b, l, 3, self.heads, self.head_dim))?
            .permute((2, 0, 3, 1, 4))?;
        // Views, not copies (`Tensor::get` reshapes, which copies a strided tensor).
        let part = |i: usize| qkv.narrow(0, i, 1)?.squeeze(0);
        let q = rotary.apply(&part(0)?)?;
        let k = rotary.apply(&part(1)?)?;
        let v = part(2)?;
        let context = scaled_dot_product(&q, &k, &v, mask, self.scale)?; // (B, H, L, D)
        self.out_proj.forward(&merge_heads(&context)?)
    }
}

struct Mlp {
    fc11: Linear,
    fc12: Linear,
    fc2: Linear,
}

impl Mlp {
    /// The inner width comes from the checkpoint: nomic's code rounds `n_inner` up to a multiple
    /// of 256, so the config alone does not say it.
    fn load(vb: VarBuilder, cfg: &Config, hidden: usize) -> candle_core::Result<Self> {
        let inner = vb.get_unchecked("fc11.weight")?.dim(0)?;
        Ok(Self {
            fc11: linear_b(hidden, inner, cfg.mlp_fc1_bias, vb.pp("fc11"))?,
            fc12: linear_b(hidden, inner, cfg.mlp_fc1_bias, vb.pp("fc12"))?,
            fc2: linear_b(inner, hidden, cfg.mlp_fc2_bias, vb.pp("fc2"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let gated = swiglu(&self.fc12.forward(x)?, &self.fc11.forward(x)?)?;
        self.fc2.forward(&gated)
    }
}

struct Layer {
    attn: Attention,
    norm1: LayerNorm,
    mlp: Mlp,
    norm2: LayerNorm,
}

impl Layer {
    fn load(vb: VarBuilder, cfg: &Config, dims: &Dims) -> candle_core::Result<Self> {
        Ok(Self {
            attn: Attention::load(vb.pp("attn"), cfg, dims)?,
            norm1: layer_norm(dims.hidden, dims.eps, vb.pp("norm1"))?,
            mlp: Mlp::load(vb.pp("mlp"), cfg, dims.hidden)?,
            norm2: layer_norm(dims.hidden, dims.eps, vb.pp("norm2"))?,
        })
    }

    /// Post-norm: each residual sum is normalized.
    fn forward(
        &self,
        x: &Tensor,
        mask: &AttentionMask,
        rotary: &RotaryTables,
    ) -> candle_core::Result<Tensor> {
        let x = add_layer_norm(&self.norm1, &self.attn.forward(x, mask, rotary)?, x)?;
        add_layer_norm(&self.norm2, &self.mlp.forward(&x)?, &x)
    }
}

/// A NomicBert encoder.
pub(crate) struct Model {
    word_embeddings: Embedding,
    /// Type 0's vector: every input is a single segment.
    token_type: Option<Tensor>,
    emb_ln: LayerNorm,
    layers: Vec<Layer>,
    rotary: Rotary,
}

impl Model {
    /// Loads the weights with nomic's names, under no prefix or `bert.` (pre-training checkpoints).
    pub(crate) fn load(vb: VarBuilder, cfg: &Config) -> candle_core::Result<Self> {
        cfg.check()?;
        let dims = cfg.dims()?;
        let vb = if vb.contains_tensor("embeddings.word_embeddings.weight") {
            vb
        } else {
            vb.pp("bert")
        };
        let token_type = if vb.contains_tensor("embeddings.token_type_embeddings.weight") {
            let table = vb.get_unchecked("embeddings.token_type_embeddings.weight")?;
            Some(table.get(0)?)
        } else {
            None
        };
        let layers = (0..dims.layers)
            .map(|i| Layer::load(vb.pp(format!("encoder.layers.{i}")), cfg, &dims))
            .collect::<candle_core::Result<_>>()?;
        Ok(Self {
            word_embeddings: candle_nn::embedding(
                cfg.vocab_size,
                dims.hidden,
                vb.pp("embeddings.word_embeddings"),
            )?,
            token_type,
            emb_ln: layer_norm(dims.hidden, dims.eps, vb.pp("emb_ln"))?,
            layers,
            rotary: cfg.rotary(dims.hidden / dims.heads)?,
        })
    }
}

impl Encoder for Model {
    fn forward(&self, input: &ModelInput) -> candle_core::Result<Tensor> {
        let seq_len = input.input_ids.dim(1)?;
        let mut x = self.word_embeddings.forward(&input.input_ids)?; // (B, L, H)
        if let Some(token_type) = &self.token_type {
            x = x.broadcast_add(token_type)?;
        }
        let mut x = self.emb_ln.forward(&x)?;
        let mask = AttentionMask::new(&input.lengths, false, x.device())?;
        let rotary = self.rotary.tables(&input.lengths, seq_len, x.device())?;
        for layer in &self.layers {
            x = layer.forward(&x, &mask, &rotary)?;
        }
        Ok(x)
    }
}
