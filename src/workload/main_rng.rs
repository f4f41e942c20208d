//! [`MainRng`]: the random streams of one synthetic-generator run, chosen by [`RngKind`]
//! (crate-private).

use super::pyrandom::{NumpyRandomState, PyRandom};
use super::rng::{PcgSource, RngKind, UnitSource};
use crate::Result;

/// The random state of one synthetic-generator run.
#[derive(Debug, Clone)]
pub(crate) enum MainRng {
    /// Vidur's: Python's global `random` (Poisson arrivals, uniform lengths) and NumPy's global
    /// legacy state (SciPy gamma arrivals), both seeded with the generator seed by Vidur's
    /// `set_seeds`.
    Vidur { py: PyRandom, np: NumpyRandomState },
    /// simfid's: one `Pcg64Mcg` stream for everything.
    Pcg(PcgSource),
}

impl MainRng {
    /// The state right after seeding. With [`RngKind::Vidur`] the seed must fit in 32 bits, as
    /// `np.random.seed` requires.
    pub(crate) fn new(kind: RngKind, seed: u64) -> Result<Self> {
        Ok(match kind {
            RngKind::Vidur => MainRng::Vidur {
                py: PyRandom::seed(seed),
                np: NumpyRandomState::from_seed(seed)?,
            },
            RngKind::Pcg => MainRng::Pcg(PcgSource::new(seed)),
        })
    }

    /// A uniform double in `[0, 1)` (Vidur: `random.random()`).
    pub(crate) fn uniform(&mut self) -> f64 {
        match self {
            MainRng::Vidur { py, .. } => py.random(),
            MainRng::Pcg(p) => p.next_f64(),
        }
    }

    /// The source gamma deviates come from (Vidur: NumPy's global state, through SciPy).
    pub(crate) fn gamma_source(&mut self) -> &mut dyn UnitSource {
        match self {
            MainRng::Vidur { np, .. } => np,
            MainRng::Pcg(p) => p,
        }
    }
}
