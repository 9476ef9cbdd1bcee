//! Interleaved comparison, shared by the benches: alternating batches of our
//! code and its anchor, so that load from other processes (this is often a
//! shared VM) falls on both alike. Criterion times one side after the other,
//! and its ratios move by 10-30% between runs here; the median of the
//! per-round ratios of an interleaved run moves by a few percent.

/// The medians of an interleaved comparison.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Interleaved {
    /// Our median time per operation, ns.
    pub(crate) ours_ns: f64,
    /// The anchor's median time per operation, ns.
    pub(crate) theirs_ns: f64,
    /// The median of the per-round ratios ours / theirs.
    pub(crate) ratio: f64,
}

/// Runs `rounds` rounds; each times one batch of `ours` and one of `theirs`
/// (in alternating order) through the closures, which run a batch and return
/// its time per operation in ns.
pub(crate) fn interleave(
    rounds: usize,
    mut ours: impl FnMut() -> f64,
    mut theirs: impl FnMut() -> f64,
) -> Interleaved {
    let (mut a, mut b, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (x, y) = if round % 2 == 0 {
            let x = ours();
            (x, theirs())
        } else {
            let y = theirs();
            (ours(), y)
        };
        a.push(x);
        b.push(y);
        ratio.push(x / y);
    }
    Interleaved {
        ours_ns: median(&mut a),
        theirs_ns: median(&mut b),
        ratio: median(&mut ratio),
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
