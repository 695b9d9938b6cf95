//! Where a replica's weights come from, safetensors files, a GGUF file or seeded random values,
//! and putting one replica of the network on a device.

use std::path::PathBuf;
use std::sync::Arc;

use candle_core::DType;
use candle_nn::VarBuilder;

use crate::error::{Error, Result};
use crate::gguf::{GgufFile, GgufWeights};
use crate::layers::linear::with_quantized;
use crate::models::heads::{HeadFiles, Heads};
use crate::models::{Config, Network};
use crate::random_weights::random_var_builder;
use crate::replicas::Replica;

/// The source of a model's weights.
pub(crate) enum WeightSource {
    /// Safetensors files, memory-mapped.
    Files(Vec<PathBuf>),
    /// A GGUF file: block-quantized matrices stay quantized, the rest is read in f32.
    Gguf(Arc<GgufFile>),
    /// Seeded random values of the config's shapes (benchmarks); `described_in` is the
    /// registry file, named in errors.
    Random { seed: u64, described_in: PathBuf },
}

impl WeightSource {
    /// The activation type the weights dictate, when they dictate one: f32 for GGUF (candle's
    /// quantized kernels take f32).
    pub(crate) fn activation_dtype(&self) -> Option<DType> {
        matches!(self, Self::Gguf(_)).then_some(DType::F32)
    }

    fn var_builder(
        &self,
        config: &Config,
        device: &candle_core::Device,
        dtype: DType,
    ) -> Result<VarBuilder<'static>> {
        match self {
            // SAFETY: the weight files are memory-mapped; like every mmap-based loader we rely
            // on them not being modified while the model is alive.
            Self::Files(files) => {
                unsafe { VarBuilder::from_mmaped_safetensors(files, dtype, device) }
                    .map_err(|e| self.malformed(e))
            }
            Self::Gguf(file) => Ok(GgufWeights::new(file.clone(), device).var_builder()),
            Self::Random { seed, .. } => Ok(random_var_builder(*seed, config, device, dtype)),
        }
    }

    /// A tensor-library error while building the network: the weights do not fit the config.
    fn malformed(&self, error: candle_core::Error) -> Error {
        let path = match self {
            Self::Files(files) => files.first().cloned().unwrap_or_default(),
            Self::Gguf(file) => file.path().to_path_buf(),
            Self::Random { described_in, .. } => described_in.clone(),
        };
        Error::Malformed {
            path,
            reason: error.to_string(),
        }
    }
}

/// One copy of the network, with its heads, on `device`. The device is synchronized before
/// the replica is handed out: the upload ran on this thread's stream, and a worker thread that
/// reads the weights must not race it.
pub(crate) fn load_replica(
    config: &Config,
    weights: &WeightSource,
    heads: &HeadFiles,
    device: candle_core::Device,
    dtype: DType,
) -> Result<Replica> {
    let vb = weights.var_builder(config, &device, dtype)?;
    let heads = Heads::load(heads, &device).map_err(|e| Error::Malformed {
        path: e.path,
        reason: e.source.to_string(),
    })?;
    let network = match weights {
        WeightSource::Gguf(file) => {
            let matrices = Arc::new(GgufWeights::new(file.clone(), &device));
            with_quantized(matrices, || Network::new(config, vb, heads))
        }
        _ => Network::new(config, vb, heads),
    }
    .map_err(|e| weights.malformed(e))?;
    device.synchronize()?;
    Ok(Replica {
        network,
        device,
        budget: Default::default(),
    })
}
