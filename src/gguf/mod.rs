//! GGUF files (llama.cpp's format, which Ollama stores its models in): the header read once,
//! tensors read on demand, and what rembed builds from them: the typed config
//! ([`metadata`]), the tokenizer ([`tokenizer`]) and the weights, served to the unchanged model
//! code through a `VarBuilder` for the dense tensors and a
//! [`QuantizedSource`](crate::layers::linear::QuantizedSource) for the block-quantized matrices.
//! [`ollama`] finds a model's file in Ollama's store.
//!
//! Activations run in f32 whatever the weights' type (candle's quantized kernels take f32), so
//! norms, pooling and normalization are f32 as in the reference.

pub(crate) mod metadata;
mod names;
pub(crate) mod ollama;
pub(crate) mod tokenizer;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;

use crate::error::{Error, Result};
use crate::layers::linear::QuantizedSource;
use crate::models::Architecture;

/// The first bytes of every GGUF file.
const MAGIC: &[u8; 4] = b"GGUF";

/// A GGUF file's header: metadata and where each tensor is.
pub(crate) struct GgufFile {
    path: PathBuf,
    content: Content,
    architecture: Architecture,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("architecture", &self.architecture)
            .finish()
    }
}

impl GgufFile {
    /// Reads the header of `path`; a file that is not GGUF is [`Error::NotGguf`], an
    /// architecture rembed cannot read from GGUF is [`Error::UnsupportedArchitecture`].
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let not_gguf = |reason: String| Error::NotGguf {
            path: path.to_path_buf(),
            reason,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let mut magic = [0u8; 4];
        if file.read_exact(&mut magic).is_err() || &magic != MAGIC {
            return Err(not_gguf(format!(
                "it does not start with `GGUF` (found {:?})",
                String::from_utf8_lossy(&magic)
            )));
        }
        let mut reader = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
        let content = Content::read(&mut reader).map_err(|e| not_gguf(e.to_string()))?;
        let name = content
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        let architecture =
            names::architecture(&name).ok_or_else(|| Error::UnsupportedArchitecture {
                model: path.display().to_string(),
                architecture: name.clone(),
                supported: format!("{} (from GGUF)", names::supported()),
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            content,
            architecture,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn architecture(&self) -> Architecture {
        self.architecture
    }

    /// A metadata value by its full key.
    pub(crate) fn value(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    /// `{arch}.{key}`, the architecture's own hyper-parameters.
    pub(crate) fn arch_value(&self, key: &str) -> Option<&Value> {
        let arch = names::arch_name(self.architecture)?;
        self.value(&format!("{arch}.{key}"))
    }

    /// A metadata problem, naming the file.
    pub(crate) fn malformed(&self, reason: impl Into<String>) -> Error {
        Error::Malformed {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    /// The GGUF name of the tensor a model asks for.
    fn gguf_name(&self, name: &str) -> Option<String> {
        names::table(self.architecture).and_then(|t| names::gguf_name(t, name))
    }

    /// The shape (rows first) and type of a tensor, by the name a model asks for.
    pub(crate) fn info(&self, name: &str) -> Option<(&Shape, GgmlDType)> {
        let info = self.content.tensor_infos.get(&self.gguf_name(name)?)?;
        Some((&info.shape, info.ggml_dtype))
    }

    /// Reads one tensor onto `device`, by the name a model asks for.
    fn read(&self, name: &str, device: &Device) -> candle_core::Result<QTensor> {
        let gguf = self.gguf_name(name).ok_or_else(|| {
            candle_core::Error::Msg(format!("no GGUF name is known for `{name}`"))
        })?;
        let mut reader = std::io::BufReader::new(std::fs::File::open(&self.path)?);
        self.content.tensor(&mut reader, &gguf, device)
    }
}

/// The file's tensors for one device: dense ones (dequantized to f32) through a `VarBuilder`,
/// block-quantized matrices as they are.
pub(crate) struct GgufWeights {
    file: Arc<GgufFile>,
    device: Device,
}

impl GgufWeights {
    pub(crate) fn new(file: Arc<GgufFile>, device: &Device) -> Self {
        Self {
            file,
            device: device.clone(),
        }
    }

    /// Dense tensors, in f32.
    pub(crate) fn var_builder(&self) -> VarBuilder<'static> {
        let backend = DenseTensors(self.file.clone());
        VarBuilder::from_backend(Box::new(backend), DType::F32, self.device.clone())
    }
}

impl QuantizedSource for GgufWeights {
    /// Matrices in a block type (Q8_0, Q4_K, ...); F32, F16 and BF16 ones are served dense.
    fn matrix(&self, name: &str) -> candle_core::Result<Option<Arc<QTensor>>> {
        match self.file.info(name) {
            Some((shape, dtype)) if shape.rank() == 2 && is_block_type(dtype) => {
                Ok(Some(Arc::new(self.file.read(name, &self.device)?)))
            }
            _ => Ok(None),
        }
    }
}

fn is_block_type(dtype: GgmlDType) -> bool {
    !matches!(dtype, GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16)
}

struct DenseTensors(Arc<GgufFile>);

impl SimpleBackend for DenseTensors {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let tensor = self.get_unchecked(name, dtype, dev)?;
        if tensor.shape() != &s {
            candle_core::bail!(
                "{name} is {:?} in the GGUF file, the model expects {s:?}",
                tensor.dims()
            );
        }
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.0.read(name, dev)?.dequantize(dev)?.to_dtype(dtype)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.0.info(name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::linear::{linear_no_bias, with_quantized};

    fn fixture(file: &str) -> Arc<GgufFile> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/gguf")
            .join(file);
        Arc::new(GgufFile::open(&path).unwrap())
    }

    /// Block-quantized matrices reach the linear layers as they are; F16 ones, norms and the
    /// token embedding are served dense in f32.
    #[test]
    fn block_types_stay_quantized_and_the_rest_is_dense() {
        let q4k = GgufWeights::new(fixture("qwen3-wide-q4_k.gguf"), &Device::Cpu);
        let q_proj = q4k
            .matrix("layers.0.self_attn.q_proj.weight")
            .unwrap()
            .unwrap();
        assert_eq!(q_proj.dtype(), GgmlDType::Q4K);
        assert_eq!(q_proj.shape().dims(), [256, 256]);
        assert!(q4k
            .matrix("layers.0.input_layernorm.weight")
            .unwrap()
            .is_none());
        let vb = q4k.var_builder();
        let norm = vb.get(256, "norm.weight").unwrap();
        assert_eq!(norm.dtype(), DType::F32);
        assert!(vb.contains_tensor("embed_tokens.weight"));
        assert!(!vb.contains_tensor("lm_head.weight"));
        let layer = with_quantized(Arc::new(q4k), || {
            linear_no_bias(256, 256, vb.pp("layers.0.self_attn.q_proj"))
        })
        .unwrap();
        assert!(layer.is_quantized());

        let f16 = GgufWeights::new(fixture("qwen3-narrow-f16.gguf"), &Device::Cpu);
        assert!(f16
            .matrix("layers.0.self_attn.q_proj.weight")
            .unwrap()
            .is_none());
        let vb = f16.var_builder();
        let layer = with_quantized(Arc::new(f16), || {
            linear_no_bias(40, 48, vb.pp("layers.0.self_attn.q_proj"))
        })
        .unwrap();
        assert!(!layer.is_quantized());
    }
}
