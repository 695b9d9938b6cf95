//! New f32 buffers for the CPU kernels, initialized inside the parallel tasks that then compute
//! into them. `vec![0.0; n]` or `to_vec()` would write every byte once on the calling thread
//! while the others wait, and then again in the tasks: on two cores that serial pass was about
//! a twentieth of all-MiniLM's time. Here each task initializes its own chunk, which is then in
//! its cache for the computation.

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// `len` floats, computed `chunk` at a time in parallel: `fill(start, values)` gets the chunk
/// beginning at element `start`, zeroed.
pub(crate) fn par_filled(
    len: usize,
    chunk: usize,
    fill: impl Fn(usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    par_init(len, chunk, |_, slot| slot.fill(MaybeUninit::new(0.0)), fill)
}

/// A copy of `source`, then changed `chunk` at a time in parallel by `change(start, values)`.
pub(crate) fn par_copied(
    source: &[f32],
    chunk: usize,
    change: impl Fn(usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    par_init(
        source.len(),
        chunk,
        |start, slot| {
            for (slot, &value) in slot.iter_mut().zip(&source[start..]) {
                slot.write(value);
            }
        },
        change,
    )
}

/// Writes every chunk with `init`, which must write all of it (both callers do), then hands it
/// to `then` as floats.
fn par_init(
    len: usize,
    chunk: usize,
    init: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync,
    then: impl Fn(usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    let chunk = chunk.max(1);
    let mut out: Vec<f32> = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(i, slot)| {
            let start = i * chunk;
            init(start, slot);
            // SAFETY: `init` wrote every slot of this chunk (both callers write the whole
            // chunk: a fill, or a zip with a source of the buffer's length), and f32 has no
            // invalid bit patterns once written.
            let values = unsafe { &mut *(slot as *mut [MaybeUninit<f32>] as *mut [f32]) };
            then(start, values);
        });
    // SAFETY: every chunk of the first `len` slots was initialized above (a panicking task
    // unwinds past this line and the vector is dropped empty).
    unsafe { out.set_len(len) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_element_is_initialized_then_computed() {
        for (len, chunk) in [(0, 4), (1, 4), (10, 4), (1000, 7), (64, 64)] {
            let filled = par_filled(len, chunk, |start, values| {
                assert!(values.iter().all(|&v| v == 0.0));
                for (i, v) in values.iter_mut().enumerate() {
                    *v += (start + i) as f32;
                }
            });
            assert_eq!(filled, (0..len).map(|i| i as f32).collect::<Vec<_>>());
            let source: Vec<f32> = (0..len).map(|i| i as f32 * 0.5).collect();
            let copied = par_copied(&source, chunk, |_, values| {
                values.iter_mut().for_each(|v| *v *= 2.0)
            });
            assert_eq!(copied, (0..len).map(|i| i as f32).collect::<Vec<_>>());
        }
    }
}
