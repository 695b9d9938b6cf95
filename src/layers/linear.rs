//! The linear layer every model uses: a dense matrix, or a block-quantized one (GGUF's Q8_0,
//! Q4_K, ...) multiplied by candle's quantized kernels. Which one a layer gets is decided here,
//! from where its weights come from, so a model file is the same code for both.
//!
//! candle's `VarBuilder` hands out dense tensors only. Quantized matrices therefore reach this
//! layer through [`with_quantized`]: while a network is built inside it, a layer whose weight the
//! quantized source holds takes the quantized matrix, every other tensor (norms, embeddings,
//! biases) comes from the `VarBuilder` in f32.

use std::cell::RefCell;
use std::sync::Arc;

use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;

use crate::layers::cpu_linear::CpuLinear;

/// Where quantized weight matrices come from, by the name the model asks for (`...q_proj.weight`).
pub(crate) trait QuantizedSource {
    /// The matrix `name` on the network's device, or `None` when it is not block-quantized (the
    /// `VarBuilder` then serves it dense).
    fn matrix(&self, name: &str) -> candle_core::Result<Option<Arc<QTensor>>>;
}

thread_local! {
    static QUANTIZED: RefCell<Option<Arc<dyn QuantizedSource>>> = const { RefCell::new(None) };
}

/// Runs `build` (which builds a network on this thread) with `source`'s matrices in its linear
/// layers.
pub(crate) fn with_quantized<T>(source: Arc<dyn QuantizedSource>, build: impl FnOnce() -> T) -> T {
    struct Reset(Option<Arc<dyn QuantizedSource>>);
    impl Drop for Reset {
        fn drop(&mut self) {
            QUANTIZED.with(|q| *q.borrow_mut() = self.0.take());
        }
    }
    let _reset = Reset(QUANTIZED.with(|q| q.borrow_mut().replace(source)));
    build()
}

fn quantized_matrix(name: &str) -> candle_core::Result<Option<Arc<QTensor>>> {
    QUANTIZED.with(|q| match q.borrow().as_ref() {
        Some(source) => source.matrix(name),
        None => Ok(None),
    })
}

enum Weight {
    /// On the CPU: kept transposed (see `cpu_linear`).
    DenseCpu(CpuLinear),
    Dense(candle_nn::Linear),
    Quantized(QMatMul),
}

/// `y = x Wᵀ + b`, with `W` dense or block-quantized and `b` dense.
pub(crate) struct Linear {
    weight: Weight,
    /// Added after a quantized product (candle's dense `Linear` holds its own).
    bias: Option<Tensor>,
    out_features: usize,
}

impl Linear {
    /// A dense layer from its tensors.
    pub(crate) fn new(weight: Tensor, bias: Option<Tensor>) -> candle_core::Result<Self> {
        let out_features = weight.dim(0)?;
        let weight = if weight.device().is_cpu() {
            Weight::DenseCpu(CpuLinear::new(&weight, bias)?)
        } else {
            Weight::Dense(candle_nn::Linear::new(weight, bias))
        };
        Ok(Self {
            weight,
            bias: None,
            out_features,
        })
    }

    /// Whether the weight runs on the quantized kernels.
    #[cfg(test)]
    pub(crate) fn is_quantized(&self) -> bool {
        matches!(self.weight, Weight::Quantized(_))
    }

    /// Rows of the weight: the width of the output.
    pub(crate) fn out_features(&self) -> usize {
        self.out_features
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match &self.weight {
            Weight::DenseCpu(linear) => linear.forward(x),
            Weight::Dense(linear) => linear.forward(x),
            Weight::Quantized(matmul) => {
                // The quantized kernels read their input as one contiguous block.
                let y = matmul.forward(&x.contiguous()?)?;
                match &self.bias {
                    Some(bias) => y.broadcast_add(bias),
                    None => Ok(y),
                }
            }
        }
    }
}

/// A `in_dim -> out_dim` layer named by `vb`'s prefix, with a bias when `bias` is set.
pub(crate) fn linear_b(
    in_dim: usize,
    out_dim: usize,
    bias: bool,
    vb: VarBuilder,
) -> candle_core::Result<Linear> {
    let name = format!("{}.weight", vb.prefix());
    let Some(matrix) = quantized_matrix(&name)? else {
        return Linear::new(
            vb.get((out_dim, in_dim), "weight")?,
            bias.then(|| vb.get(out_dim, "bias")).transpose()?,
        );
    };
    if matrix.shape().dims() != [out_dim, in_dim] {
        candle_core::bail!(
            "{name} is {:?}, the model expects [{out_dim}, {in_dim}]",
            matrix.shape().dims()
        );
    }
    Ok(Linear {
        weight: Weight::Quantized(QMatMul::from_arc(matrix)?),
        bias: bias.then(|| vb.get(out_dim, "bias")).transpose()?,
        out_features: out_dim,
    })
}

/// A layer with a bias.
pub(crate) fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> candle_core::Result<Linear> {
    linear_b(in_dim, out_dim, true, vb)
}

/// A layer without a bias.
pub(crate) fn linear_no_bias(
    in_dim: usize,
    out_dim: usize,
    vb: VarBuilder,
) -> candle_core::Result<Linear> {
    linear_b(in_dim, out_dim, false, vb)
}

#[cfg(test)]
mod tests {
    use candle_core::quantized::GgmlDType;
    use candle_core::{DType, Device};

    use super::*;

    struct One(Arc<QTensor>);

    impl QuantizedSource for One {
        fn matrix(&self, name: &str) -> candle_core::Result<Option<Arc<QTensor>>> {
            Ok((name == "proj.weight").then(|| self.0.clone()))
        }
    }

    /// A Q8_0 layer computes what the dense layer of its dequantized weights computes, to the
    /// precision of the activations candle quantizes on the way; outside the scope the same
    /// `VarBuilder` gives the dense layer again.
    #[test]
    fn quantized_layer_matches_its_dequantized_weights() {
        let device = Device::Cpu;
        let w = Tensor::randn(0f32, 0.1, (8, 64), &device).unwrap();
        let b = Tensor::randn(0f32, 0.1, 8, &device).unwrap();
        let q = Arc::new(QTensor::quantize(&w, GgmlDType::Q8_0).unwrap());
        let dq = q.dequantize(&device).unwrap();
        let tensors = [
            ("proj.weight".to_string(), dq.clone()),
            ("proj.bias".to_string(), b),
        ];
        let vb = VarBuilder::from_tensors(tensors.into_iter().collect(), DType::F32, &device);
        let x = Tensor::randn(0f32, 1.0, (3, 5, 64), &device).unwrap();

        let quantized = with_quantized(Arc::new(One(q)), || linear(64, 8, vb.pp("proj"))).unwrap();
        assert!(matches!(quantized.weight, Weight::Quantized(_)));
        let dense = linear(64, 8, vb.pp("proj")).unwrap();
        assert!(matches!(dense.weight, Weight::DenseCpu(_)));
        assert_eq!(quantized.out_features(), 8);

        let (a, e) = (quantized.forward(&x).unwrap(), dense.forward(&x).unwrap());
        let err = (a - &e).unwrap().abs().unwrap().max_all().unwrap();
        let scale = e.abs().unwrap().max_all().unwrap();
        let (err, scale) = (
            err.to_scalar::<f32>().unwrap(),
            scale.to_scalar::<f32>().unwrap(),
        );
        assert!(err < 0.02 * scale, "{err} vs {scale}");

        let wrong = with_quantized(
            Arc::new(One(Arc::new(
                QTensor::quantize(&w.t().unwrap().contiguous().unwrap(), GgmlDType::F32).unwrap(),
            ))),
            || linear(64, 8, vb.pp("proj")),
        );
        assert!(wrong.is_err());
    }
}
