//! Distribution figures over per-hair widths: count, mean, median, SD, cv, class shares,
//! and histograms.

use serde::{Deserialize, Serialize};

use crate::settings::HairClass;

/// Summary of a set of per-hair widths. Widths are in the unit of the input slice
/// (µm when a scale is known, px otherwise); class figures need µm and are `None` without.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct WidthSummary {
    pub count: usize,
    pub mean: Option<f64>,
    pub median: Option<f64>,
    /// Sample standard deviation (n − 1).
    pub sd: Option<f64>,
    /// sd / mean: spread of widths (not a clinical standard; thin_fraction is).
    pub cv: Option<f64>,
    pub thin_count: Option<usize>,
    pub thin_fraction: Option<f64>,
    pub intermediate_fraction: Option<f64>,
    pub terminal_fraction: Option<f64>,
}

impl WidthSummary {
    /// Figures over `widths`; the class shares are filled when `limits_um` is given
    /// (`(thin_um, terminal_um)`), which means `widths` are in µm.
    pub fn of(widths: &[f64], limits_um: Option<(f64, f64)>) -> WidthSummary {
        let n = widths.len();
        let mut s = WidthSummary {
            count: n,
            ..Default::default()
        };
        if n == 0 {
            if limits_um.is_some() {
                s.thin_count = Some(0);
            }
            return s;
        }
        let mean = widths.iter().sum::<f64>() / n as f64;
        s.mean = Some(mean);
        s.median = Some(median(widths));
        if n >= 2 {
            let var = widths.iter().map(|w| (w - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            let sd = var.sqrt();
            s.sd = Some(sd);
            if mean > 0.0 {
                s.cv = Some(sd / mean);
            }
        }
        if let Some((thin, terminal)) = limits_um {
            let mut counts = [0usize; 3];
            for &w in widths {
                counts[match HairClass::of_width_um(w, thin, terminal) {
                    HairClass::Thin => 0,
                    HairClass::Intermediate => 1,
                    HairClass::Terminal => 2,
                }] += 1;
            }
            s.thin_count = Some(counts[0]);
            s.thin_fraction = Some(counts[0] as f64 / n as f64);
            s.intermediate_fraction = Some(counts[1] as f64 / n as f64);
            s.terminal_fraction = Some(counts[2] as f64 / n as f64);
        }
        s
    }
}

/// Median of a non-empty slice (mean of the two middle values for even lengths).
pub fn median(values: &[f64]) -> f64 {
    quantile(values, 0.5)
}

/// [`median`] of `values`, reordering them in place (by selection, not a full sort)
/// instead of sorting a copy: the same value, bit for bit.
pub fn median_mut(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    // `quantile_mut(values, 0.5)`, with the two middle order statistics found by selection.
    let pos = 0.5 * (values.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let (_, &mut a, upper) = values.select_nth_unstable_by(lo, |a, b| a.total_cmp(b));
    let b = if hi == lo {
        a
    } else {
        // The next order statistic is the least of the upper part.
        *upper
            .iter()
            .min_by(|a, b| a.total_cmp(b))
            .expect("hi < len")
    };
    a + (b - a) * (pos - lo as f64)
}

/// Linear-interpolated quantile `q` in [0, 1] of a non-empty slice (NaN when empty).
pub fn quantile(values: &[f64], q: f64) -> f64 {
    quantile_mut(&mut values.to_vec(), q)
}

/// [`quantile`], sorting `v` in place instead of a copy.
pub fn quantile_mut(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Robust standard deviation: 1.4826 × median absolute deviation (consistent for a normal).
pub fn robust_sd(values: &[f64]) -> f64 {
    robust_sd_mut(&mut values.to_vec())
}

/// [`robust_sd`], overwriting `values` (with the absolute deviations) instead of copying.
pub fn robust_sd_mut(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let m = median_mut(values);
    values.iter_mut().for_each(|v| *v = (*v - m).abs());
    1.4826 * median_mut(values)
}

/// A histogram with fixed-width bins starting at `start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Unit of the bin edges (`um` or `px`).
    pub unit: String,
    pub bin_width: f64,
    /// Left edge of each bin; the last bin is closed on the right.
    pub bin_start: Vec<f64>,
    pub counts: Vec<usize>,
}

impl Histogram {
    /// Histogram of `values` with bins of `bin_width` from 0 up to past the largest value
    /// (at least `min_upper`).
    pub fn of(values: &[f64], bin_width: f64, min_upper: f64, unit: &str) -> Histogram {
        let max = values.iter().cloned().fold(min_upper, f64::max);
        let nbins = ((max / bin_width).floor() as usize + 1).max(1);
        let mut counts = vec![0usize; nbins];
        for &v in values {
            if v.is_finite() && v >= 0.0 {
                let i = ((v / bin_width).floor() as usize).min(nbins - 1);
                counts[i] += 1;
            }
        }
        Histogram {
            unit: unit.to_string(),
            bin_width,
            bin_start: (0..nbins).map(|i| i as f64 * bin_width).collect(),
            counts,
        }
    }
}

/// Deterministic uniform numbers in [0, 1) for tests (xorshift64 from `seed`, nonzero).
#[cfg(test)]
pub(crate) fn test_uniform(mut seed: u64) -> impl FnMut() -> f64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_values() {
        let s = WidthSummary::of(&[20.0, 40.0, 60.0, 80.0], Some((30.0, 60.0)));
        assert_eq!(s.count, 4);
        assert_eq!(s.mean, Some(50.0));
        assert_eq!(s.median, Some(50.0));
        let sd = (2000.0f64 / 3.0).sqrt();
        assert!((s.sd.unwrap() - sd).abs() < 1e-12);
        assert!((s.cv.unwrap() - sd / 50.0).abs() < 1e-12);
        assert_eq!(s.thin_count, Some(1));
        assert_eq!(s.thin_fraction, Some(0.25));
        assert_eq!(s.intermediate_fraction, Some(0.25));
        assert_eq!(s.terminal_fraction, Some(0.5));
    }

    #[test]
    fn summary_without_scale_has_no_classes() {
        let s = WidthSummary::of(&[3.0], None);
        assert_eq!(s.count, 1);
        assert_eq!(s.sd, None);
        assert_eq!(s.thin_fraction, None);
        let e = WidthSummary::of(&[], Some((30.0, 60.0)));
        assert_eq!(e.count, 0);
        assert_eq!(e.mean, None);
        assert_eq!(e.thin_count, Some(0));
    }

    #[test]
    fn quantiles_and_robust_sd() {
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
        assert_eq!(quantile(&[5.0, 1.0, 3.0], 1.0), 5.0);
        assert!((robust_sd(&[1.0, 2.0, 3.0]) - 1.4826).abs() < 1e-12);
    }

    #[test]
    fn median_mut_is_the_sorted_median_bit_for_bit() {
        let mut seed = 12345u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as f64 / (1u64 << 31) as f64 - 0.5
        };
        for len in 1..80 {
            for _ in 0..20 {
                // Few distinct values (ties), signed zeros, and plain random values.
                let v: Vec<f64> = (0..len)
                    .map(|i| match i % 4 {
                        0 => (next() * 6.0).round(),
                        1 => 0.0 * next().signum(),
                        _ => next(),
                    })
                    .collect();
                let want = quantile(&v, 0.5);
                let (mut a, mut b) = (v.clone(), v.clone());
                assert_eq!(median_mut(&mut a).to_bits(), want.to_bits(), "{v:?}");
                assert_eq!(median(&v).to_bits(), want.to_bits());
                // Sort-based reference.
                let dev: Vec<f64> = v.iter().map(|x| (x - want).abs()).collect();
                let sd = 1.4826 * quantile(&dev, 0.5);
                assert_eq!(robust_sd_mut(&mut b).to_bits(), sd.to_bits(), "{v:?}");
            }
        }
        assert!(median_mut(&mut []).is_nan());
    }

    #[test]
    fn histogram_bins() {
        let h = Histogram::of(&[0.0, 4.9, 5.0, 12.0], 5.0, 10.0, "um");
        assert_eq!(h.bin_start, vec![0.0, 5.0, 10.0]);
        assert_eq!(h.counts, vec![2, 1, 1]);
    }
}
