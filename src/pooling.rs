//! Turning per-token hidden states into one vector per text, and the vector post-processing
//! (normalization, Matryoshka truncation). The only place where pooling happens: models return
//! hidden states and never pool.

use candle_core::{DType, Device, Tensor, D};
use serde::Deserialize;

/// How token vectors become one text vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Pooling {
    /// The first token's vector (BERT's `[CLS]`, XLM-R's `<s>`).
    Cls,
    /// The mean over the text's tokens, padding excluded.
    Mean,
    /// The element-wise maximum over the text's tokens, padding excluded.
    Max,
    /// The mean scaled by `sqrt(len)` instead of `len` (sentence-transformers' `mean_sqrt_len_tokens`).
    MeanSqrtLen,
    /// The last real token's vector, for decoder models whose last token has seen the whole text.
    LastToken,
}

impl Pooling {
    /// Reads sentence-transformers' `1_Pooling/config.json`: the `pooling_mode` string of
    /// recent versions, or the `pooling_mode_*_token(s)` flags of older ones (first set wins, in
    /// the order sentence-transformers checks them). A mode rembed lacks is an error, never a
    /// silent fallback.
    pub(crate) fn from_sentence_transformers(config: &serde_json::Value) -> Result<Self, String> {
        if let Some(mode) = config.get("pooling_mode").and_then(|v| v.as_str()) {
            return match mode {
                "cls" => Ok(Self::Cls),
                "mean" => Ok(Self::Mean),
                "max" => Ok(Self::Max),
                "mean_sqrt_len_tokens" => Ok(Self::MeanSqrtLen),
                "lasttoken" => Ok(Self::LastToken),
                other => Err(format!("pooling mode `{other}` is not supported")),
            };
        }
        let flag = |key: &str| config.get(key).and_then(|v| v.as_bool()).unwrap_or(false);
        [
            ("pooling_mode_cls_token", Self::Cls),
            ("pooling_mode_lasttoken", Self::LastToken),
            ("pooling_mode_max_tokens", Self::Max),
            ("pooling_mode_mean_sqrt_len_tokens", Self::MeanSqrtLen),
            ("pooling_mode_mean_tokens", Self::Mean),
        ]
        .into_iter()
        .find(|(key, _)| flag(key))
        .map(|(_, pooling)| pooling)
        .ok_or_else(|| "no supported pooling mode is set".to_string())
    }

    /// Pools right-padded hidden states `(B, L, H)` of texts with the given token counts into
    /// `(B, H)` in f32, whatever the compute dtype.
    pub(crate) fn pool(self, hidden: &Tensor, lengths: &[usize]) -> candle_core::Result<Tensor> {
        let hidden = hidden.to_dtype(DType::F32)?;
        let (batch, seq_len, _) = hidden.dims3()?;
        match self {
            Self::Cls => hidden.narrow(1, 0, 1)?.squeeze(1),
            Self::LastToken => {
                // Located from the lengths, never by searching for a token id: the pad token and
                // the end token are the same id in Qwen3's vocabulary.
                let rows: Vec<u32> = lengths
                    .iter()
                    .enumerate()
                    .map(|(b, &len)| (b * seq_len + len.max(1) - 1) as u32)
                    .collect();
                let rows = Tensor::new(rows, hidden.device())?;
                hidden.flatten_to(1)?.index_select(&rows, 0)
            }
            Self::Mean | Self::MeanSqrtLen => {
                let mask = token_mask(lengths, seq_len, hidden.device())?; // (B, L, 1)
                let sum = hidden.broadcast_mul(&mask)?.sum(1)?; // (B, H)
                let counts: Vec<f32> = lengths
                    .iter()
                    .map(|&len| {
                        let len = len.max(1) as f32;
                        if self == Self::Mean {
                            len
                        } else {
                            len.sqrt()
                        }
                    })
                    .collect();
                sum.broadcast_div(&Tensor::from_vec(counts, (batch, 1), hidden.device())?)
            }
            Self::Max => {
                let mask = token_mask(lengths, seq_len, hidden.device())?;
                // Padding gets a large negative value, as sentence-transformers does, so it never wins.
                let penalty = ((mask - 1.0)? * 1e9)?;
                hidden.broadcast_add(&penalty)?.max(1)
            }
        }
    }
}

/// `(B, L, 1)` f32 mask: 1 for real tokens, 0 for padding.
fn token_mask(lengths: &[usize], seq_len: usize, device: &Device) -> candle_core::Result<Tensor> {
    let mask: Vec<f32> = lengths
        .iter()
        .flat_map(|&len| (0..seq_len).map(move |i| if i < len { 1.0 } else { 0.0 }))
        .collect();
    Tensor::from_vec(mask, (lengths.len(), seq_len, 1), device)
}

/// What happens to a pooled vector before it is returned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PostProcess {
    /// Layer norm without affine parameters before truncation (nomic-embed-text v1.5's Matryoshka recipe).
    pub layer_norm: bool,
    /// Keep only the first `dim` components (Matryoshka truncation).
    pub dim: usize,
    /// L2-normalize after truncation.
    pub normalize: bool,
}

impl PostProcess {
    /// Applies the steps to pooled f32 vectors `(B, H)`.
    pub(crate) fn apply(&self, pooled: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = pooled.clone();
        if self.layer_norm {
            let mean = x.mean_keepdim(D::Minus1)?;
            let centered = x.broadcast_sub(&mean)?;
            let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
            x = centered.broadcast_div(&(var + 1e-5)?.sqrt()?)?;
        }
        if self.dim < x.dim(D::Minus1)? {
            x = x.narrow(D::Minus1, 0, self.dim)?;
        }
        if self.normalize {
            x = l2_normalize(&x)?;
        }
        Ok(x)
    }
}

/// Row-wise L2 normalization with the same floor as `torch.nn.functional.normalize`, so an
/// all-zero vector stays zero instead of becoming NaN.
pub(crate) fn l2_normalize(x: &Tensor) -> candle_core::Result<Tensor> {
    let norm = x
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12, f32::MAX)?;
    x.broadcast_div(&norm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hidden() -> Tensor {
        // Two texts of lengths 2 and 3, hidden size 2, padded to 3 with a value that must never leak.
        let data = vec![
            1.0f32, 2.0, 3.0, 4.0, 99.0, 99.0, 5.0, 6.0, 7.0, -8.0, 9.0, 10.0,
        ];
        Tensor::from_vec(data, (2, 3, 2), &Device::Cpu).unwrap()
    }

    fn pooled(p: Pooling) -> Vec<Vec<f32>> {
        p.pool(&hidden(), &[2, 3]).unwrap().to_vec2().unwrap()
    }

    #[test]
    fn each_pooling_ignores_padding() {
        assert_eq!(pooled(Pooling::Cls), vec![vec![1.0, 2.0], vec![5.0, 6.0]]);
        assert_eq!(
            pooled(Pooling::LastToken),
            vec![vec![3.0, 4.0], vec![9.0, 10.0]]
        );
        assert_eq!(
            pooled(Pooling::Mean),
            vec![vec![2.0, 3.0], vec![7.0, 8.0 / 3.0]]
        );
        assert_eq!(pooled(Pooling::Max), vec![vec![3.0, 4.0], vec![9.0, 10.0]]);
        let sqrt = pooled(Pooling::MeanSqrtLen);
        assert!((sqrt[0][0] - 4.0 / 2f32.sqrt()).abs() < 1e-6);
    }

    #[test]
    fn truncation_then_normalization() {
        let x = Tensor::new(&[[3.0f32, 4.0, 12.0]], &Device::Cpu).unwrap();
        let post = PostProcess {
            layer_norm: false,
            dim: 2,
            normalize: true,
        };
        assert_eq!(
            post.apply(&x).unwrap().to_vec2::<f32>().unwrap(),
            vec![vec![0.6, 0.8]]
        );
        let zero = Tensor::zeros((1, 3), DType::F32, &Device::Cpu).unwrap();
        let post = PostProcess {
            layer_norm: false,
            dim: 3,
            normalize: true,
        };
        assert_eq!(
            post.apply(&zero).unwrap().to_vec2::<f32>().unwrap(),
            vec![vec![0.0; 3]]
        );
    }

    #[test]
    fn sentence_transformers_flags() {
        let cfg =
            serde_json::json!({"pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true});
        assert_eq!(Pooling::from_sentence_transformers(&cfg), Ok(Pooling::Mean));
        let cfg = serde_json::json!({"pooling_mode_lasttoken": true});
        assert_eq!(
            Pooling::from_sentence_transformers(&cfg),
            Ok(Pooling::LastToken)
        );
        let cfg = serde_json::json!({"pooling_mode": "cls", "include_prompt": true});
        assert_eq!(Pooling::from_sentence_transformers(&cfg), Ok(Pooling::Cls));
        let cfg = serde_json::json!({"pooling_mode": "weightedmean"});
        assert!(Pooling::from_sentence_transformers(&cfg)
            .unwrap_err()
            .contains("weightedmean"));
    }
}
