//! How an [`Embedder`](crate::Embedder) is loaded and run.

use std::path::PathBuf;
use std::str::FromStr;

use crate::error::Error;
use crate::oom::SimulatedOom;

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Device {
    /// The first CUDA device when the crate is built with `cuda` and one is present, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// The CUDA device with this ordinal.
    Cuda(usize),
}

impl FromStr for Device {
    type Err = Error;

    /// Parses `auto`, `cpu`, `cuda` or `cuda:N`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::InvalidOption {
            option: "device",
            reason: format!("`{s}`: expected auto, cpu, cuda or cuda:N"),
        };
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(bad),
        }
    }
}

impl std::fmt::Display for Device {
    /// `auto`, `cpu` or `cuda:N`: what [`FromStr`] reads back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Parses a comma-separated device list such as `cuda:0,cuda:1`, for
/// [`Options::with_devices`].
pub fn parse_devices(list: &str) -> Result<Vec<Device>, Error> {
    list.split(',').map(str::parse).collect()
}

/// The number format of weights and activations. Pooling and normalization always run in f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Precision {
    /// bf16 on CUDA, f32 on the CPU.
    #[default]
    Auto,
    /// 32-bit floats: the reference precision.
    F32,
    /// 16-bit floats; can overflow to NaN on large decoder models.
    F16,
    /// bfloat16: f32's range at half the memory.
    BF16,
}

impl Precision {
    /// `auto`, `f32`, `f16` or `bf16`: what [`FromStr`] reads back.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::BF16 => "bf16",
        }
    }
}

impl FromStr for Precision {
    type Err = Error;

    /// Parses `auto`, `f32`, `f16` or `bf16`.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "f32" | "float32" => Ok(Self::F32),
            "f16" | "float16" | "fp16" => Ok(Self::F16),
            "bf16" | "bfloat16" => Ok(Self::BF16),
            _ => Err(Error::InvalidOption {
                option: "dtype",
                reason: format!("`{s}`: expected auto, f32, f16 or bf16"),
            }),
        }
    }
}

/// Settings for [`Embedder::load`](crate::Embedder::load). Every field has a sensible default;
/// change them with the `with_*` setters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    pub(crate) devices: Vec<Device>,
    pub(crate) precision: Precision,
    pub(crate) max_batch_tokens: Option<usize>,
    pub(crate) max_length: Option<usize>,
    pub(crate) dim: Option<usize>,
    pub(crate) normalize: Option<bool>,
    pub(crate) prompts: bool,
    pub(crate) revision: Option<String>,
    pub(crate) offline: bool,
    pub(crate) cache_dir: Option<PathBuf>,
    pub(crate) registry_file: Option<PathBuf>,
    pub(crate) simulated_oom: Option<SimulatedOom>,
    pub(crate) heap_retention: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            devices: vec![Device::Auto],
            precision: Precision::Auto,
            max_batch_tokens: None,
            max_length: None,
            dim: None,
            normalize: None,
            prompts: true,
            revision: None,
            offline: false,
            cache_dir: None,
            registry_file: None,
            simulated_oom: None,
            heap_retention: true,
        }
    }
}

impl Options {
    /// Where to run. Default [`Device::Auto`]. A CUDA device needs the `cuda` feature.
    pub fn with_device(mut self, device: Device) -> Self {
        self.devices = vec![device];
        self
    }

    /// Runs one replica of the model on each device (e.g. every GPU of a machine); batches go to
    /// whichever replica is free and rows come back in input order. Each replica holds its own
    /// copy of the weights. The same device may be named twice, which only pays off where one
    /// replica leaves the device idle. Default: one replica on [`Device::Auto`].
    pub fn with_devices(mut self, devices: impl IntoIterator<Item = Device>) -> Self {
        self.devices = devices.into_iter().collect();
        self
    }

    /// Number format of the forward pass. Default [`Precision::Auto`] (bf16 on CUDA, f32 on CPU);
    /// f32 costs twice the memory and, on GPUs, several times the time of bf16.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// Padded tokens per forward pass. Default: the device's (16,384 on CUDA, 2,048 on the CPU;
    /// see [`Embedder::max_batch_tokens`](crate::Embedder::max_batch_tokens)). Memory grows
    /// linearly (attention is computed in blocks of bounded size); inputs over 2,048 tokens are
    /// batched by their attention too (rows × length² at most this budget × 2,048), so several
    /// long inputs are split. A batch that still runs out of device memory
    /// is halved automatically; on the CPU, where an allocation failure would abort, a batch
    /// estimated not to fit the available memory is halved before it runs.
    pub fn with_max_batch_tokens(mut self, tokens: usize) -> Self {
        self.max_batch_tokens = Some(tokens);
        self
    }

    /// Inputs longer than this many tokens (special tokens included) are truncated. Default: the
    /// model's own limit. Memory grows with it linearly, attention time quadratically.
    pub fn with_max_length(mut self, tokens: usize) -> Self {
        self.max_length = Some(tokens);
        self
    }

    /// Output dimension, for Matryoshka models: vectors are truncated, then re-normalized.
    /// Default: the model's full dimension. Only the dimensions the model was trained for are
    /// accepted. Smaller vectors cost nothing to compute and lose some retrieval quality.
    pub fn with_dim(mut self, dim: usize) -> Self {
        self.dim = Some(dim);
        self
    }

    /// Whether to L2-normalize vectors. Default: what the model does (registry or its
    /// `modules.json`).
    pub fn with_normalize(mut self, normalize: bool) -> Self {
        self.normalize = Some(normalize);
        self
    }

    /// Whether `embed` and `embed_queries` prepend the model's document and query prompts.
    /// Default true, as sentence-transformers' `encode_document` / `encode_query` do. Prompts
    /// cost their tokens on every input.
    pub fn with_prompts(mut self, prompts: bool) -> Self {
        self.prompts = prompts;
        self
    }

    /// Branch, tag or commit of the Hugging Face repo. Default: the registry's, else `main`.
    pub fn with_revision(mut self, revision: impl Into<String>) -> Self {
        self.revision = Some(revision.into());
        self
    }

    /// On the CPU, keep freed tensor memory in the process for the next batch instead of
    /// returning it to the system, which then faults it back in zeroed: about a fifth of CPU
    /// embedding time on small models. Process-wide (glibc's mmap and trim thresholds, set once
    /// when a CPU model loads), so the process keeps its peak heap; a malloc policy set through
    /// `GLIBC_TUNABLES` or `MALLOC_*_THRESHOLD_` is left alone. No effect off glibc. Default
    /// true.
    pub fn with_heap_retention(mut self, retain: bool) -> Self {
        self.heap_retention = retain;
        self
    }

    /// Never touch the network: read models only from the local cache. Default false, unless
    /// `HF_HUB_OFFLINE=1` is set.
    pub fn with_offline(mut self, offline: bool) -> Self {
        self.offline = offline;
        self
    }

    /// The Hugging Face hub cache. Default `HF_HUB_CACHE`, else `HF_HOME/hub`, else
    /// `~/.cache/huggingface/hub`: the cache Python tools use too.
    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// A `models.toml`-format file whose models are added to (or replace) the built-in registry.
    /// Default none.
    pub fn with_registry_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.registry_file = Some(path.into());
        self
    }

    /// Makes chosen forward passes fail as if the device ran out of memory, before they run:
    /// `rule(inputs, padded_tokens)` gets a batch's input indices (positions in the caller's
    /// slice) and its padded size, and returns true to fail it. For testing out-of-memory
    /// handling (halving, failure reports) on any machine. Default none.
    #[doc(hidden)]
    pub fn with_simulated_oom(
        mut self,
        rule: impl Fn(&[usize], usize) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.simulated_oom = Some(SimulatedOom::new(std::sync::Arc::new(rule)));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_and_precision() {
        assert_eq!("cuda:3".parse::<Device>().unwrap(), Device::Cuda(3));
        assert_eq!("CPU".parse::<Device>().unwrap(), Device::Cpu);
        assert!("cuda:x"
            .parse::<Device>()
            .unwrap_err()
            .to_string()
            .contains("cuda:x"));
        assert_eq!(
            parse_devices("cuda:0, cuda:1").unwrap(),
            [Device::Cuda(0), Device::Cuda(1)]
        );
        assert!(parse_devices("cuda:0,").is_err());
        assert_eq!("bf16".parse::<Precision>().unwrap(), Precision::BF16);
        assert!("int8".parse::<Precision>().is_err());
    }
}
