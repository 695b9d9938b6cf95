//! Attention on the CPU in f32 as one kernel: for each row, head and block of queries, the
//! scores of the visible keys only, their softmax, and the weighted values, written straight
//! into the `(B, L, H·D)` layout the output projection reads.
//!
//! What this saves over composing candle ops: the copies that make transposed q/k/v views
//! contiguous and that merge the heads back, the additive mask (built, added and exponentiated
//! to zero), a scalar `exp` per score, and the keys past a row's length or (causal) past a
//! query, which are never computed. Every mask here is a prefix: a query sees the keys
//! `0..min(q + 1, len)` when causal and `0..len` otherwise, so masked keys are skipped rather
//! than written as zeros' worth of work.
//!
//! Memory stays bounded as in the blocked path: each task holds the scores of at most
//! [`query_block`] queries, at most `max_elements` floats, whatever the length.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::layers::vector_math::softmax_prefix_in_place;

/// Most queries one task computes at once: enough rows for the matrix kernel to run at speed.
const MAX_QUERY_BLOCK: usize = 128;

/// Queries per task for `keys` keys, so that a task's scores hold at most `max_elements` floats.
pub(crate) fn query_block(keys: usize, max_elements: usize) -> usize {
    (max_elements / keys.max(1)).clamp(1, MAX_QUERY_BLOCK)
}

/// `softmax(q kᵀ · scale, masked) v` for f32 CPU tensors `q (B, Hq, L, D)` and `k, v
/// (B, Hkv, L, D)`, any strides with a unit last stride (the head views of a projection).
/// Returns `(B, Hq, L, D)` as a transposed view of a contiguous `(B, L, Hq, D)` tensor, so that
/// merging the heads costs nothing.
pub(crate) fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    lengths: &[usize],
    causal: bool,
    scale: f64,
    max_elements: usize,
) -> candle_core::Result<Tensor> {
    let unit_last = |t: &Tensor| -> candle_core::Result<Tensor> {
        if t.stride().last() == Some(&1) {
            Ok(t.clone())
        } else {
            t.contiguous()
        }
    };
    let op = FusedAttention {
        lengths: lengths.to_vec(),
        causal,
        scale: scale as f32,
        max_elements,
    };
    q.apply_op3_no_bwd(&unit_last(k)?, &unit_last(v)?, &op)?
        .transpose(1, 2)
}

struct FusedAttention {
    lengths: Vec<usize>,
    causal: bool,
    scale: f32,
    max_elements: usize,
}

/// A strided 4-d f32 view: the storage slice from its start and its strides.
struct View<'a> {
    data: &'a [f32],
    stride: [usize; 4],
}

impl<'a> View<'a> {
    fn new(storage: &'a CpuStorage, layout: &Layout, name: &str) -> candle_core::Result<Self> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!(
                "fused attention takes f32 {name}, not {:?}",
                storage.dtype()
            );
        };
        let stride: [usize; 4] = layout
            .stride()
            .try_into()
            .map_err(|_| candle_core::Error::Msg(format!("fused attention: {name} is not 4-d")))?;
        if stride[3] != 1 {
            candle_core::bail!("fused attention: {name} must have a unit last stride");
        }
        Ok(Self {
            data: &data[layout.start_offset()..],
            stride,
        })
    }

    /// Pointer to element `(b, h, l, 0)`.
    fn at(&self, b: usize, h: usize, l: usize) -> *const f32 {
        let offset = b * self.stride[0] + h * self.stride[1] + l * self.stride[2];
        self.data[offset..].as_ptr()
    }
}

/// The output buffer, written by many tasks at disjoint places.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: every task writes its own (row, head, query block) rectangle and nothing reads it
// until all tasks are done.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// The pointer (a method, so that closures capture the `Sync` wrapper, not the field).
    fn get(self) -> *mut f32 {
        self.0
    }
}

impl CustomOp3 for FusedAttention {
    fn name(&self) -> &'static str {
        "fused-attention-f32"
    }

    fn cpu_fwd(
        &self,
        q_storage: &CpuStorage,
        q_layout: &Layout,
        k_storage: &CpuStorage,
        k_layout: &Layout,
        v_storage: &CpuStorage,
        v_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, q_heads, l, d) = q_layout.shape().dims4()?;
        let (kb, kv_heads, kl, kd) = k_layout.shape().dims4()?;
        if (kb, kl, kd) != (b, l, d)
            || v_layout.shape() != k_layout.shape()
            || kv_heads == 0
            || q_heads % kv_heads != 0
            || self.lengths.len() != b
            || self.lengths.iter().any(|&len| len == 0 || len > l)
        {
            candle_core::bail!(
                "fused attention over q {:?}, k {:?}, v {:?} and lengths {:?}",
                q_layout.shape(),
                k_layout.shape(),
                v_layout.shape(),
                self.lengths
            );
        }
        let q = View::new(q_storage, q_layout, "q")?;
        let k = View::new(k_storage, k_layout, "k")?;
        let v = View::new(v_storage, v_layout, "v")?;
        let groups = q_heads / kv_heads;
        let block = query_block(l, self.max_elements);
        let blocks_per_head = l.div_ceil(block);
        // (B, L, Hq, D): each query's heads side by side, as merging the heads would lay them.
        // Not zeroed: the tasks write every element (their rectangles tile the output) before
        // the length is set.
        let elements = b * l * q_heads * d;
        let mut out: Vec<f32> = Vec::with_capacity(elements);
        let out_ptr = OutPtr(out.as_mut_ptr());
        let out_row = q_heads * d;
        (0..b * q_heads * blocks_per_head)
            .into_par_iter()
            .for_each_init(Vec::new, |scores: &mut Vec<f32>, task| {
                let (row, rest) = (
                    task / (q_heads * blocks_per_head),
                    task % (q_heads * blocks_per_head),
                );
                let (head, q0) = (rest / blocks_per_head, (rest % blocks_per_head) * block);
                let nq = block.min(l - q0);
                let len = self.lengths[row];
                let visible = |query: usize| {
                    if self.causal {
                        (query + 1).min(len)
                    } else {
                        len
                    }
                };
                let keys = visible(q0 + nq - 1);
                scores.clear();
                scores.resize(nq * keys, 0.0);
                let kv_head = head / groups;
                let out_at = out_ptr
                    .get()
                    .wrapping_add((row * l + q0) * out_row + head * d);
                // SAFETY: the pointers and strides describe the tensors' own storage, checked
                // above; `scores` holds nq × keys floats; the output rectangle of this task
                // (nq rows of d floats, out_row apart) is written by no other task.
                unsafe {
                    // scores (nq × keys) = scale · q_block (nq × D) · k[..keys]ᵀ (D × keys)
                    gemm::gemm(
                        nq,
                        keys,
                        d,
                        scores.as_mut_ptr(),
                        1,
                        keys as isize,
                        false,
                        q.at(row, head, q0),
                        1,
                        q.stride[2] as isize,
                        k.at(row, kv_head, 0),
                        k.stride[2] as isize,
                        1,
                        0.0,
                        self.scale,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
                for (i, scores_row) in scores.chunks_exact_mut(keys).enumerate() {
                    softmax_prefix_in_place(scores_row, visible(q0 + i));
                }
                unsafe {
                    // out (nq × D) = probabilities (nq × keys) · v[..keys] (keys × D)
                    gemm::gemm(
                        nq,
                        d,
                        keys,
                        out_at,
                        1,
                        out_row as isize,
                        false,
                        scores.as_ptr(),
                        1,
                        keys as isize,
                        v.at(row, kv_head, 0),
                        1,
                        v.stride[2] as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
            });
        // SAFETY: the tasks above, all finished, wrote all `elements` floats: for every row and
        // head the query blocks cover 0..l, and each wrote d floats per query.
        unsafe { out.set_len(elements) };
        Ok((CpuStorage::F32(out), Shape::from_dims(&[b, l, q_heads, d])))
    }
}
