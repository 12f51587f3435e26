//! `cargo xtask bench ...`: measurements whose results land in `docs/benchmarks.md`.

mod apply;
mod mirror;
pub(crate) mod report;
mod sync;

pub use apply::{Options as ApplyOptions, run_bench as apply};
pub use mirror::{Options as MirrorOptions, run_bench as mirror};
pub use sync::{Options as SyncOptions, run as sync};

/// Median of `values` (mean of the middle two for an even count); 0 for none.
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
