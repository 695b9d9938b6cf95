//! Element-wise f32 math over slices, written so that the compiler vectorizes it: `exp` and the
//! exact (erf) GELU without calls into libm, which the compiler cannot vectorize and which made
//! GELU and softmax a third of a small encoder's CPU time.
//!
//! The loops are plain Rust; `dispatch!` compiles each one a second time with AVX-512 (and
//! AVX2 + FMA) enabled and picks the widest the CPU has at run time, so a binary built for
//! baseline x86-64 still runs 16 lanes at a time where the CPU allows.
//!
//! Accuracy: `exp` is within 2 ulp of the correctly rounded result over the range it returns
//! normal numbers for; GELU's `erfc` has a relative error under 1.2e-7 (a Chebyshev fit,
//! Numerical Recipes' `erfcc`), so GELU is within about 2e-7 · |x| of the exact value.

/// Runs a loop body compiled for the widest vector unit the CPU has: `dispatch!(body(a: A, ..))`
/// calls the `#[inline(always)]` function `body` with the caller's variables `a, ..`.
macro_rules! dispatch {
    ($body:ident($($arg:ident: $ty:ty),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
            fn avx512($($arg: $ty),*) {
                $body::<true>($($arg),*)
            }
            #[target_feature(enable = "avx2,fma")]
            fn avx2($($arg: $ty),*) {
                $body::<true>($($arg),*)
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has the features the function was compiled for.
                return unsafe { avx512($($arg),*) };
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: as above.
                return unsafe { avx2($($arg),*) };
            }
        }
        $body::<{ HARDWARE_FMA }>($($arg),*)
    }};
}

/// Whether the baseline build has a fused multiply-add instruction; where it does not,
/// `f32::mul_add` is a library call, and the loops multiply and add instead.
const HARDWARE_FMA: bool = cfg!(target_feature = "fma") || cfg!(target_arch = "aarch64");

/// `a · b + c`, fused (one rounding, one instruction) in the loops compiled with FMA.
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `exp(x)` for every element, in place. Inputs below -87.3 give about 1e-38 (never 0 through
/// underflow, and never NaN), above 88.7 about 3.3e38 rather than infinity.
#[cfg(test)]
pub(crate) fn exp_in_place(xs: &mut [f32]) {
    dispatch!(exp_loop(xs: &mut [f32]))
}

/// `0.5 · x · (1 + erf(x / √2))` for every element, in place.
pub(crate) fn gelu_erf_in_place(xs: &mut [f32]) {
    dispatch!(gelu_loop(xs: &mut [f32]))
}

/// `silu(gate) · up` element-wise into `gate` (SwiGLU's gating), `silu(g) = g / (1 + exp(-g))`.
pub(crate) fn swiglu_in_place(gate: &mut [f32], up: &[f32]) {
    dispatch!(swiglu_loop(gate: &mut [f32], up: &[f32]))
}

/// Softmax of `row[..visible]` in place, and 0 for `row[visible..]`: the probabilities of a
/// score row whose keys past `visible` are masked (their `exp` underflows to exactly 0 in the
/// masked computation, so leaving them out changes nothing). `visible` must be at least 1.
pub(crate) fn softmax_prefix_in_place(row: &mut [f32], visible: usize) {
    dispatch!(softmax_loop(row: &mut [f32], visible: usize))
}

/// `layer_norm(x + residual) · weight + bias` of one row into `out` (all the same length), with
/// the mean and variance of the sum computed in two passes over the row in cache.
pub(crate) fn add_layer_norm_row(
    out: &mut [f32],
    x: &[f32],
    residual: &[f32],
    weight: &[f32],
    bias: &[f32],
    eps: f32,
) {
    dispatch!(add_layer_norm_loop(
        out: &mut [f32],
        x: &[f32],
        residual: &[f32],
        weight: &[f32],
        bias: &[f32],
        eps: f32
    ))
}

/// `x / sqrt(mean(x²) + eps) · weight` of one row into `out` (all the same length): RMS norm,
/// with the mean square summed in 16 lanes.
pub(crate) fn rms_norm_row(out: &mut [f32], x: &[f32], weight: &[f32], eps: f32) {
    dispatch!(rms_norm_loop(out: &mut [f32], x: &[f32], weight: &[f32], eps: f32))
}

#[inline(always)]
fn rms_norm_loop<const FMA: bool>(out: &mut [f32], x: &[f32], weight: &[f32], eps: f32) {
    let mean_square = squared_distances(x, 0.0) / x.len().max(1) as f32;
    let inverse_rms = 1.0 / (mean_square + eps).sqrt();
    for ((o, v), w) in out.iter_mut().zip(x).zip(weight) {
        *o = *v * inverse_rms * w;
    }
}

#[inline(always)]
fn add_layer_norm_loop<const FMA: bool>(
    out: &mut [f32],
    x: &[f32],
    residual: &[f32],
    weight: &[f32],
    bias: &[f32],
    eps: f32,
) {
    for ((o, a), b) in out.iter_mut().zip(x).zip(residual) {
        *o = a + b;
    }
    let n = out.len() as f32;
    let mean = sum(out) / n;
    let variance = squared_distances(out, mean) / n;
    let inverse_std = 1.0 / (variance + eps).sqrt();
    for ((o, w), b) in out.iter_mut().zip(weight).zip(bias) {
        *o = (*o - mean) * inverse_std * w + b;
    }
}

#[cfg(test)]
#[inline(always)]
fn exp_loop<const FMA: bool>(xs: &mut [f32]) {
    for x in xs.iter_mut() {
        *x = exp::<FMA>(*x);
    }
}

#[inline(always)]
fn softmax_loop<const FMA: bool>(row: &mut [f32], visible: usize) {
    let (live, hidden) = row.split_at_mut(visible.min(row.len()));
    hidden.fill(0.0);
    let max = max(live);
    for x in live.iter_mut() {
        *x = exp::<FMA>(*x - max);
    }
    let total = sum(live);
    let inverse = 1.0 / total;
    for x in live.iter_mut() {
        *x *= inverse;
    }
}

/// The largest element (`-inf` for none), with 16 running maxima the compiler keeps in one
/// vector register; `f32::max`'s NaN rule would keep the loop scalar, and a NaN score makes the
/// row NaN either way.
#[inline(always)]
fn max(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 16];
    let mut chunks = xs.chunks_exact(16);
    for chunk in &mut chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = if x > *lane { x } else { *lane };
        }
    }
    let rest = chunks.remainder().iter();
    lanes
        .iter()
        .chain(rest)
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m })
}

/// `Σ (x − center)²` in 16 running partial sums (the variance of a layer norm, the mean square
/// of an RMS norm).
#[inline(always)]
fn squared_distances(xs: &[f32], center: f32) -> f32 {
    let mut lanes = [0f32; 16];
    let mut chunks = xs.chunks_exact(16);
    for chunk in &mut chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            // Not fused: the sum runs through one register, and an add's latency is shorter.
            let d = v - center;
            *lane += d * d;
        }
    }
    let tail: f32 = chunks
        .remainder()
        .iter()
        .map(|v| (v - center) * (v - center))
        .sum();
    lanes.iter().sum::<f32>() + tail
}

/// A sum the compiler can vectorize: 16 running partial sums, then the remainder.
#[inline(always)]
fn sum(xs: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let mut chunks = xs.chunks_exact(16);
    for chunk in &mut chunks {
        for (lane, x) in lanes.iter_mut().zip(chunk) {
            *lane += x;
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

#[inline(always)]
fn swiglu_loop<const FMA: bool>(gate: &mut [f32], up: &[f32]) {
    for (g, u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + exp::<FMA>(-*g)) * u;
    }
}

#[inline(always)]
fn gelu_loop<const FMA: bool>(xs: &mut [f32]) {
    for x in xs.iter_mut() {
        *x = gelu_erf::<FMA>(*x);
    }
}

/// 1.5 · 2^23: adding it rounds a float below 2^22 in magnitude to an integer, which then sits
/// in the low bits of the sum's representation.
const ROUNDER: f32 = 12_582_912.0;

/// `exp(x)` as `2^n · exp(r)`, `r = x - n · ln 2` in `[-ln2/2, ln2/2]`, `exp(r)` by its Taylor
/// polynomial to degree 7 (truncation error under 5e-9 relative on that interval).
#[inline(always)]
fn exp<const FMA: bool>(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that n · LN2_HI is exact for the n that occur.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.clamp(-87.3, 88.7);
    let shifted = madd::<FMA>(x, LOG2_E, ROUNDER);
    let n = shifted - ROUNDER;
    let n_int = shifted.to_bits().wrapping_sub(ROUNDER.to_bits()) as i32;
    let r = madd::<FMA>(-n, LN2_LO, madd::<FMA>(-n, LN2_HI, x));
    let mut p = 1.0 / 5040.0;
    p = madd::<FMA>(p, r, 1.0 / 720.0);
    p = madd::<FMA>(p, r, 1.0 / 120.0);
    p = madd::<FMA>(p, r, 1.0 / 24.0);
    p = madd::<FMA>(p, r, 1.0 / 6.0);
    p = madd::<FMA>(p, r, 0.5);
    p = madd::<FMA>(p, r, 1.0);
    p = madd::<FMA>(p, r, 1.0);
    // 2^n from its exponent bits; -126 <= n <= 128 after the clamp, and n = 128 (x near 88.7)
    // is split as 2^127 · 2 to stay finite.
    let half = n_int >> 1;
    let scale_a = f32::from_bits(((half + 127) as u32) << 23);
    let scale_b = f32::from_bits(((n_int - half + 127) as u32) << 23);
    p * scale_a * scale_b
}

/// The exact GELU, `0.5 · x · erfc(-x / √2)`: written with `erfc` of `|x| / √2` so that neither
/// sign cancels (`1 + erf` of a very negative value is a small difference of large ones).
#[inline(always)]
fn gelu_erf<const FMA: bool>(x: f32) -> f32 {
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let tail = erfc_non_negative::<FMA>(z);
    let upper = if x < 0.0 { tail } else { 2.0 - tail };
    0.5 * x * upper
}

/// `erfc(z)` for `z >= 0`: `t · exp(-z² + P(t))` with `t = 1 / (1 + z/2)` and `P` a Chebyshev
/// fit of degree 9 (Numerical Recipes, `erfcc`; relative error under 1.2e-7 for every z).
// The coefficients as published, rounded to f32 by the compiler.
#[allow(clippy::excessive_precision)]
#[inline(always)]
fn erfc_non_negative<const FMA: bool>(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * z);
    let mut p = 0.170_872_77_f32;
    p = madd::<FMA>(p, t, -0.822_152_23);
    p = madd::<FMA>(p, t, 1.488_515_87);
    p = madd::<FMA>(p, t, -1.135_203_98);
    p = madd::<FMA>(p, t, 0.278_868_07);
    p = madd::<FMA>(p, t, -0.186_288_06);
    p = madd::<FMA>(p, t, 0.096_784_18);
    p = madd::<FMA>(p, t, 0.374_091_96);
    p = madd::<FMA>(p, t, 1.000_023_68);
    p = madd::<FMA>(p, t, -1.265_512_23);
    t * exp::<FMA>(madd::<FMA>(-z, z, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs across the range each function meets: dense near 0, out to the tails.
    fn samples(limit: f32) -> Vec<f32> {
        let mut xs: Vec<f32> = (-4000..=4000).map(|i| i as f32 / 4000.0 * limit).collect();
        xs.extend([0.0, -0.0, 1e-6, -1e-6, 1e-30, -1e-30, limit, -limit]);
        xs
    }

    #[test]
    fn exp_matches_f64() {
        let xs = samples(87.0);
        let mut ours = xs.clone();
        exp_in_place(&mut ours);
        for (x, got) in xs.iter().zip(&ours) {
            let want = (*x as f64).exp();
            let rel = ((*got as f64 - want) / want).abs();
            assert!(
                rel < 3e-7,
                "exp({x}) = {got}, want {want} (relative error {rel:e})"
            );
        }
        // The tails: underflow to (near) zero, never NaN or infinity.
        let mut tails = [-1e4f32, -100.0, f32::MIN, 100.0, 1e4, f32::MAX];
        exp_in_place(&mut tails);
        assert!(
            tails[..3].iter().all(|&v| (0.0..1e-37).contains(&v)),
            "{tails:?}"
        );
        assert!(
            tails[3..].iter().all(|v| v.is_finite() && *v > 1e38),
            "{tails:?}"
        );
    }

    /// The exact GELU in f64, with libm's erf as the reference.
    fn gelu_f64(x: f64) -> f64 {
        0.5 * x * (1.0 + erf_f64(x / std::f64::consts::SQRT_2))
    }

    /// erf in f64 to ~1e-16 by its Taylor series (|z| < 3) or its continued fraction.
    fn erf_f64(z: f64) -> f64 {
        if z.abs() > 6.0 {
            return z.signum();
        }
        if z.abs() < 3.0 {
            let (mut term, mut sum, mut n) = (z, z, 0.0);
            while term.abs() > 1e-18 {
                n += 1.0;
                term *= -z * z / n;
                sum += term / (2.0 * n + 1.0);
            }
            return sum * 2.0 / std::f64::consts::PI.sqrt();
        }
        // erfc by Lentz's continued fraction for large |z|.
        let a = z.abs();
        let mut f = a;
        for k in (1..60).rev() {
            f = a + (k as f64 / 2.0) / f;
        }
        let erfc = (-a * a).exp() / (f * std::f64::consts::PI.sqrt());
        (1.0 - erfc) * z.signum()
    }

    #[test]
    fn gelu_matches_the_exact_function() {
        let xs = samples(12.0);
        let mut ours = xs.clone();
        gelu_erf_in_place(&mut ours);
        for (x, got) in xs.iter().zip(&ours) {
            let want = gelu_f64(*x as f64);
            let err = (*got as f64 - want).abs();
            // Absolute error on |x| scale, relative where the value itself is tiny.
            let bound = 4e-7 * (x.abs() as f64).max(want.abs()).max(1e-30) + 1e-37;
            assert!(
                err <= bound,
                "gelu({x}) = {got}, want {want} (error {err:e})"
            );
        }
        let mut edges = [f32::MIN, -1e4, 1e4, f32::MAX];
        gelu_erf_in_place(&mut edges);
        // The negative tail underflows to (about) zero, the positive one is the identity.
        assert!(edges[..2].iter().all(|v| v.abs() < 1e-30), "{edges:?}");
        assert_eq!(edges[2..], [1e4, f32::MAX]);
    }

    #[test]
    fn softmax_prefix_matches_a_masked_softmax() {
        for (len, visible) in [(1, 1), (5, 5), (37, 20), (64, 1), (300, 299)] {
            let row: Vec<f32> = (0..len)
                .map(|i| ((i * 7919) % 23) as f32 * 0.7 - 8.0)
                .collect();
            let mut ours = row.clone();
            softmax_prefix_in_place(&mut ours, visible);
            // Plain: f64 softmax over the visible keys, the masked ones exactly 0.
            let max = row[..visible]
                .iter()
                .fold(f64::MIN, |m, &x| m.max(x as f64));
            let total: f64 = row[..visible].iter().map(|&x| (x as f64 - max).exp()).sum();
            for (i, (&got, &x)) in ours.iter().zip(&row).enumerate() {
                let want = if i < visible {
                    (x as f64 - max).exp() / total
                } else {
                    0.0
                };
                assert!(
                    (got as f64 - want).abs() <= 1e-6 * want + 1e-12,
                    "{len} {i}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn the_erf_reference_is_right() {
        // Known values of erf.
        for (z, want) in [
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (3.5, 0.999_999_256_901_627_7),
        ] {
            assert!((erf_f64(z) - want).abs() < 1e-14, "{z}");
            assert!((erf_f64(-z) + want).abs() < 1e-14, "{z}");
        }
    }
}
