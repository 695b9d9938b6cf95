//! A registry model's exact architecture with seeded random weights: benchmarks and memory
//! checks on machines that cannot download the real weights, since speed and memory do not
//! depend on weight values.
//!
//! Weights follow transformers' initialisation: matrices uniform with standard deviation 0.02,
//! norm scales one, biases zero. They are generated on the host from a counter-based generator,
//! so a seed gives the same weights on every machine and device.

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;
use rayon::prelude::*;
use tokenizers::Tokenizer;

use crate::error::{Error, Result};
use crate::hash::fnv1a_128;
use crate::models::Config;

/// Every text is a run of `[UNK]`s: a random-weight model has no vocabulary worth the name, so
/// inputs are token ids.
const PLACEHOLDER_TOKENIZER: &str = r#"{"version":"1.0","truncation":null,"padding":null,
"added_tokens":[],"normalizer":null,"pre_tokenizer":{"type":"Whitespace"},
"post_processor":null,"decoder":null,
"model":{"type":"WordLevel","vocab":{"[UNK]":0},"unk_token":"[UNK]"}}"#;

/// The tokenizer of a random-weight model.
pub(crate) fn placeholder_tokenizer(model: &str) -> Result<Tokenizer> {
    Tokenizer::from_bytes(PLACEHOLDER_TOKENIZER).map_err(|e| Error::Tokenizer {
        model: model.to_string(),
        reason: e.to_string(),
    })
}

/// Weights of `config`'s shapes made up from `seed`.
pub(crate) fn random_var_builder(
    seed: u64,
    config: &Config,
    device: &Device,
    dtype: DType,
) -> VarBuilder<'static> {
    let backend = RandomWeights {
        seed,
        unchecked: config.unchecked_shapes(),
    };
    VarBuilder::from_backend(Box::new(backend), dtype, device.clone())
}

/// A weight source that makes up every tensor the model asks for.
struct RandomWeights {
    seed: u64,
    unchecked: Vec<(&'static str, Vec<usize>)>,
}

impl RandomWeights {
    fn tensor(
        &self,
        name: &str,
        shape: Shape,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let count = shape.elem_count();
        let values: Vec<f32> = if name.ends_with("bias") {
            vec![0.0; count]
        } else if shape.rank() == 1 {
            vec![1.0; count]
        } else {
            // Uniform on [-a, a] has standard deviation a / sqrt(3).
            let half_width = 0.02 * 3f32.sqrt();
            let stream = self.seed ^ fnv1a_128(name.as_bytes()) as u64;
            const CHUNK: usize = 1 << 16;
            let mut values = vec![0.0f32; count];
            values
                .par_chunks_mut(CHUNK)
                .enumerate()
                .for_each(|(chunk, out)| {
                    for (i, v) in out.iter_mut().enumerate() {
                        let bits = splitmix64(stream.wrapping_add((chunk * CHUNK + i) as u64));
                        let unit = (bits >> 40) as f32 / (1u64 << 24) as f32; // [0, 1)
                        *v = (2.0 * unit - 1.0) * half_width;
                    }
                });
            values
        };
        Tensor::from_vec(values, shape, device)?.to_dtype(dtype)
    }
}

impl SimpleBackend for RandomWeights {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        self.tensor(name, shape, dtype, device)
    }

    fn get_unchecked(
        &self,
        name: &str,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let shape = self
            .unchecked
            .iter()
            .find(|(suffix, _)| name.ends_with(*suffix))
            .map(|(_, shape)| shape.clone())
            .ok_or_else(|| candle_core::Error::Msg(format!("no shape known for `{name}`")))?;
        self.tensor(name, shape.into(), dtype, device)
    }

    /// Every tensor exists: the published checkpoints of the registry's models have every
    /// optional tensor the code probes for (norm scales, token type embeddings).
    fn contains_tensor(&self, _: &str) -> bool {
        true
    }
}

/// A counter-based generator: the value at position `x` of a stream, independent of the order
/// chunks are filled in.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use crate::{Embedder, Error, Options, TokenIds};

    #[test]
    fn every_registry_model_builds_and_the_seed_decides_the_output() {
        let options = Options::default().with_device(crate::Device::Cpu);
        for name in ["all-minilm-l6-v2", "nomic-embed-text-v1.5"] {
            let a = Embedder::random_weights(name, 7, options.clone()).unwrap();
            let ids = vec![vec![1u32, 5, 9, 2], vec![3, 4]];
            let embed = |e: &Embedder| {
                e.embed_with(&TokenIds(&ids), &Default::default())
                    .unwrap()
                    .dense
            };
            let first = embed(&a);
            let again = Embedder::random_weights(name, 7, options.clone()).unwrap();
            assert_eq!(first, embed(&again), "{name}");
            let other = Embedder::random_weights(name, 8, options.clone()).unwrap();
            assert_ne!(first, embed(&other), "{name}");
            assert!(first.iter().all(|v| v.is_finite()));
            assert_eq!(first.ncols(), a.dim());
        }
    }

    #[test]
    fn a_model_without_config_is_a_clear_error() {
        let err = Embedder::random_weights("no-such-model", 1, Options::default()).unwrap_err();
        assert!(matches!(err, Error::UnknownModel { .. }), "{err}");
    }
}
