//! Bit-exact ports of the two Mersenne-Twister generators Vidur draws from.
//!
//! * [`PyRandom`] is CPython's `random.Random` (3.11): [`PyRandom::seed`] matches
//!   `random.seed(n)` for a non-negative integer `n`, and [`random`](PyRandom::random),
//!   [`uniform`](PyRandom::uniform), [`getrandbits`](PyRandom::getrandbits) and
//!   [`randint`](PyRandom::randint) return what Python returns after the same calls. Vidur's
//!   Poisson arrivals and uniform lengths, and its `random` global scheduler, use Python's global
//!   `random` module.
//! * [`NumpyRandomState`] is NumPy's legacy `numpy.random.RandomState(seed)` for an integer seed:
//!   [`random_sample`](NumpyRandomState::random_sample),
//!   [`permutation`](NumpyRandomState::permutation) (so also pandas'
//!   `df.sample(frac=1, random_state=seed)`, which is `RandomState(seed).permutation(n)`),
//!   [`standard_gamma`](NumpyRandomState::standard_gamma) (so also SciPy's `gamma.rvs`, which
//!   multiplies it by the scale). Vidur's zipf lengths, trace-length shuffle and gamma arrivals
//!   use it.
//!
//! Both share the [`Mt19937`] core; they differ in how an integer seed fills the state
//! (`init_by_array` over the seed's 32-bit words for Python, `init_genrand` for NumPy).
//! Transcendental functions (`ln`, `powf`, `sqrt`) come from the platform's libm, as in CPython
//! and in NumPy's C code, so results agree with Python run on the same platform.

use super::rng::{UnitSource, polar_gauss, standard_gamma};
use crate::{Error, Result};

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// The MT19937 generator of Matsumoto and Nishimura (32-bit output).
#[derive(Clone)]
pub struct Mt19937 {
    state: Box<[u32; N]>,
    index: usize,
}

impl std::fmt::Debug for Mt19937 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mt19937")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl Mt19937 {
    /// Seeds from one 32-bit word (the reference `init_genrand`; NumPy's `RandomState(int)`).
    pub fn init_genrand(seed: u32) -> Self {
        let mut state = Box::new([0u32; N]);
        state[0] = seed;
        for i in 1..N {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Mt19937 { state, index: N }
    }

    /// Seeds from an array of 32-bit words (the reference `init_by_array`; CPython's
    /// `random.seed(int)` passes the little-endian words of the integer). An empty key behaves
    /// like the key `[0]`.
    pub fn init_by_array(key: &[u32]) -> Self {
        let key: &[u32] = if key.is_empty() { &[0] } else { key };
        let mut mt = Self::init_genrand(19_650_218);
        let s = &mut mt.state;
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(key.len()) {
            let prev = s[i - 1];
            s[i] = (s[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                s[0] = s[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let prev = s[i - 1];
            s[i] =
                (s[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                s[0] = s[N - 1];
                i = 1;
            }
        }
        s[0] = 0x8000_0000;
        mt
    }

    fn twist(&mut self) {
        let s = &mut self.state;
        for k in 0..N {
            let y = (s[k] & UPPER_MASK) | (s[(k + 1) % N] & LOWER_MASK);
            let mag = if y & 1 == 1 { MATRIX_A } else { 0 };
            s[k] = s[(k + M) % N] ^ (y >> 1) ^ mag;
        }
        self.index = 0;
    }

    /// The next 32-bit output (`genrand_int32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// A double in `[0, 1)` with 53 random bits from two outputs (`genrand_res53`, used by both
    /// CPython's `random()` and NumPy's legacy `random_sample()`).
    pub fn next_f64(&mut self) -> f64 {
        let a = self.next_u32() >> 5;
        let b = self.next_u32() >> 6;
        (f64::from(a) * 67_108_864.0 + f64::from(b)) / 9_007_199_254_740_992.0
    }
}

/// CPython's `random.Random` (Mersenne Twister), bit-exact for the methods it has.
#[derive(Debug, Clone)]
pub struct PyRandom {
    mt: Mt19937,
}

impl PyRandom {
    /// A generator in the state `random.seed(seed)` leaves (for an `int` seed; CPython seeds
    /// with `init_by_array` over the 32-bit words of `abs(seed)`, least significant first).
    pub fn seed(seed: u64) -> Self {
        let lo = seed as u32;
        let hi = (seed >> 32) as u32;
        let mt = if hi == 0 {
            Mt19937::init_by_array(&[lo])
        } else {
            Mt19937::init_by_array(&[lo, hi])
        };
        PyRandom { mt }
    }

    /// `random.random()`: a double in `[0, 1)`.
    pub fn random(&mut self) -> f64 {
        self.mt.next_f64()
    }

    /// `random.uniform(a, b)` = `a + (b - a) * random()`.
    pub fn uniform(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.random()
    }

    /// `random.getrandbits(k)` for `k <= 64` (larger `k` is an error: the result would not fit).
    pub fn getrandbits(&mut self, k: u32) -> Result<u64> {
        match k {
            0 => Ok(0),
            1..=32 => Ok(u64::from(self.mt.next_u32() >> (32 - k))),
            33..=64 => {
                // CPython fills 32-bit words least significant first and drops the surplus low
                // bits of the last (most significant) word.
                let low = u64::from(self.mt.next_u32());
                let high = u64::from(self.mt.next_u32() >> (64 - k));
                Ok(low | (high << 32))
            }
            _ => Err(Error::Workload(format!(
                "getrandbits({k}): at most 64 bits are supported"
            ))),
        }
    }

    /// `random._randbelow(n)`: an integer in `[0, n)` by rejection on `getrandbits(n.bit_length())`
    /// (CPython 3.11). Returns 0 for `n == 0` (where Python has no defined result).
    pub fn randbelow(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let k = 64 - n.leading_zeros();
        loop {
            // k is in 1..=64, so getrandbits cannot fail.
            let r = self.getrandbits(k).unwrap_or(0);
            if r < n {
                return r;
            }
        }
    }

    /// `random.randint(a, b)`: an integer in `[a, b]` (`a + _randbelow(b - a + 1)`).
    /// `a > b` is an error, as in Python; so is a range wider than `u64` can count.
    pub fn randint(&mut self, a: i64, b: i64) -> Result<i64> {
        if a > b {
            return Err(Error::Workload(format!("randint({a}, {b}): empty range")));
        }
        let width = (i128::from(b) - i128::from(a) + 1) as u128;
        let width = u64::try_from(width).map_err(|_| {
            Error::Workload(format!("randint({a}, {b}): range wider than 2^64 - 1"))
        })?;
        let offset = self.randbelow(width);
        Ok((i128::from(a) + i128::from(offset)) as i64)
    }
}

/// NumPy's legacy `numpy.random.RandomState` seeded with an integer, bit-exact for the methods
/// it has.
#[derive(Debug, Clone)]
pub struct NumpyRandomState {
    mt: Mt19937,
    /// The second normal deviate of the polar method, kept for the next call (`has_gauss`).
    gauss: Option<f64>,
}

impl NumpyRandomState {
    /// `RandomState(seed)` (NumPy seeds an integer with `init_genrand`).
    pub fn new(seed: u32) -> Self {
        NumpyRandomState {
            mt: Mt19937::init_genrand(seed),
            gauss: None,
        }
    }

    /// `RandomState(seed)` for a seed given as `u64`; NumPy rejects seeds above `2^32 - 1`, and
    /// so does this.
    pub fn from_seed(seed: u64) -> Result<Self> {
        u32::try_from(seed).map(Self::new).map_err(|_| {
            Error::Workload(format!(
                "seed {seed} is out of range for numpy's RandomState (0..=4294967295)"
            ))
        })
    }

    /// The next raw 32-bit output.
    pub fn next_u32(&mut self) -> u32 {
        self.mt.next_u32()
    }

    /// The next raw 64-bit output: two 32-bit outputs, the first one high.
    pub fn next_u64(&mut self) -> u64 {
        let high = u64::from(self.mt.next_u32());
        (high << 32) | u64::from(self.mt.next_u32())
    }

    /// `random_sample()`: a double in `[0, 1)`.
    pub fn random_sample(&mut self) -> f64 {
        self.mt.next_f64()
    }

    /// An integer in `[0, max]` by rejection of masked draws (NumPy's `random_interval`: 32-bit
    /// draws while `max` fits in 32 bits, 64-bit draws above).
    pub fn random_interval(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mask = u64::MAX >> max.leading_zeros();
        if max <= u64::from(u32::MAX) {
            loop {
                let v = u64::from(self.mt.next_u32()) & mask;
                if v <= max {
                    return v;
                }
            }
        } else {
            loop {
                let v = self.next_u64() & mask;
                if v <= max {
                    return v;
                }
            }
        }
    }

    /// Shuffles a slice in place as legacy `RandomState.shuffle` does a 1-D array: Fisher–Yates
    /// from the end, swapping item `i` with item `random_interval(i)`.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.random_interval(i as u64) as usize;
            items.swap(i, j);
        }
    }

    /// `permutation(n)`: a shuffled `arange(n)`. pandas' `df.sample(frac=1, random_state=seed)`
    /// returns the rows in the order `RandomState(seed).permutation(len(df))`.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        self.shuffle(&mut v);
        v
    }

    /// `standard_normal()` (legacy polar method; every other call returns the cached deviate).
    pub fn standard_normal(&mut self) -> f64 {
        let NumpyRandomState { mt, gauss } = self;
        polar_gauss(|| mt.next_f64(), gauss)
    }

    /// `standard_exponential()` = `-ln(1 - random_sample())`.
    pub fn standard_exponential(&mut self) -> f64 {
        -(1.0 - self.random_sample()).ln()
    }

    /// `standard_gamma(shape)` (legacy algorithm: exponential for shape 1, Johnk-style rejection
    /// below 1, Marsaglia–Tsang above). SciPy's `gamma.rvs(shape, scale=s)` with the global
    /// NumPy state is `standard_gamma(shape) * s`. Returns NaN for a negative or NaN shape.
    pub fn standard_gamma(&mut self, shape: f64) -> f64 {
        standard_gamma(self, shape)
    }
}

impl UnitSource for NumpyRandomState {
    fn next_f64(&mut self) -> f64 {
        self.random_sample()
    }
    fn gauss(&mut self) -> f64 {
        self.standard_normal()
    }
}

#[cfg(test)]
mod tests {
    //! Expected values were produced on this machine with CPython 3.11.7's `random` module and
    //! NumPy 1.26.4 / pandas 2.2.3 / SciPy 1.14.1 (the versions of Vidur's pinned environment),
    //! e.g. `random.Random(42).getrandbits(32)`, `np.random.RandomState(42).permutation(10)`,
    //! `df.sample(frac=1, random_state=42).index`. They are hard-coded so that the tests need
    //! no Python.
    use super::*;

    #[test]
    fn python_seed_42_matches_cpython() {
        let mut r = PyRandom::seed(42);
        let words: Vec<u64> = (0..4).map(|_| r.getrandbits(32).unwrap()).collect();
        assert_eq!(words, [2746317213, 478163327, 107420369, 3184935163]);
        let mut r = PyRandom::seed(42);
        let xs: Vec<f64> = (0..3).map(|_| r.random()).collect();
        assert_eq!(
            xs,
            [
                0.6394267984578837,
                0.025010755222666936,
                0.27502931836911926
            ]
        );
        let mut r = PyRandom::seed(42);
        let xs: Vec<f64> = (0..3).map(|_| r.uniform(136.0, 4096.0)).collect();
        assert_eq!(
            xs,
            [2668.1301218932194, 235.04259068176106, 1225.1161007417122]
        );
    }

    #[test]
    fn python_seeds_of_several_words_match_cpython() {
        let cases: [(u64, [u64; 4], [f64; 3]); 3] = [
            (
                0,
                [3626764237, 1654615998, 3255389356, 3823568514],
                [0.8444218515250481, 0.7579544029403025, 0.420571580830845],
            ),
            (
                (1 << 40) + 5,
                [2166296868, 2220160828, 1153647273, 2850991874],
                [0.5043802970418443, 0.2686044399723282, 0.9257865475671585],
            ),
            (
                u64::MAX,
                [93740670, 1068495656, 1452108352, 2657516307],
                [
                    0.021825695401270107,
                    0.3380953268613758,
                    0.21196748656082065,
                ],
            ),
        ];
        for (seed, words, doubles) in cases {
            let mut r = PyRandom::seed(seed);
            let w: Vec<u64> = (0..4).map(|_| r.getrandbits(32).unwrap()).collect();
            assert_eq!(w, words, "seed {seed}");
            let mut r = PyRandom::seed(seed);
            let d: Vec<f64> = (0..3).map(|_| r.random()).collect();
            assert_eq!(d, doubles, "seed {seed}");
        }
    }

    #[test]
    fn python_randint_and_getrandbits_match_cpython() {
        // r = random.Random(7); [r.randint(1, 4) for _ in range(12)], then the other calls in
        // this order on the same generator.
        let mut r = PyRandom::seed(7);
        let a: Vec<i64> = (0..12).map(|_| r.randint(1, 4).unwrap()).collect();
        assert_eq!(a, [3, 2, 4, 1, 1, 1, 3, 1, 2, 1, 1, 4]);
        let b: Vec<i64> = (0..4).map(|_| r.randint(-5, 1_000_000).unwrap()).collect();
        assert_eq!(b, [438480, 73243, 252348, 95114]);
        let c: Vec<u64> = [0, 1, 31, 33, 40, 64]
            .iter()
            .map(|&k| r.getrandbits(k).unwrap())
            .collect();
        assert_eq!(
            c,
            [
                0,
                1,
                911648019,
                4548844982,
                135572591311,
                4118032072156385373
            ]
        );
        let d: Vec<i64> = (0..3).map(|_| r.randint(0, 1 << 40).unwrap()).collect();
        assert_eq!(d, [874393242357, 99733787024, 636227141293]);
        assert!(r.randint(2, 1).is_err());
        assert!(r.getrandbits(65).is_err());
    }

    #[test]
    fn numpy_random_state_matches_numpy() {
        let cases: [(u32, [f64; 3], [u32; 3]); 3] = [
            (
                42,
                [0.3745401188473625, 0.9507143064099162, 0.7319939418114051],
                [1608637542, 3421126067, 4083286876],
            ),
            (
                0,
                [0.5488135039273248, 0.7151893663724195, 0.6027633760716439],
                [2357136044, 2546248239, 3071714933],
            ),
            (
                u32::MAX,
                [0.0976320289940138, 0.9123828453026218, 0.78903530185164],
                [419326371, 479346978, 3918654476],
            ),
        ];
        for (seed, doubles, words) in cases {
            let mut rs = NumpyRandomState::new(seed);
            let d: Vec<f64> = (0..3).map(|_| rs.random_sample()).collect();
            assert_eq!(d, doubles, "seed {seed}");
            let mut rs = NumpyRandomState::new(seed);
            let w: Vec<u32> = (0..3).map(|_| rs.next_u32()).collect();
            assert_eq!(w, words, "seed {seed}");
        }
        assert!(NumpyRandomState::from_seed(1 << 32).is_err());
    }

    #[test]
    fn numpy_permutation_matches_numpy_and_pandas() {
        let mut rs = NumpyRandomState::new(42);
        assert_eq!(rs.permutation(10), [8, 1, 5, 0, 7, 2, 9, 4, 3, 6]);
        assert_eq!(rs.permutation(7), [4, 1, 0, 3, 5, 6, 2]);
        // Both np.random.RandomState(42).permutation(50) and
        // pd.DataFrame({"a": range(50)}).sample(frac=1, random_state=42).index give this.
        let expected = [
            13, 39, 30, 45, 17, 48, 26, 25, 32, 19, 12, 4, 37, 8, 3, 6, 41, 46, 47, 15, 9, 16, 24,
            34, 31, 0, 44, 27, 33, 5, 29, 11, 36, 1, 21, 2, 43, 35, 23, 40, 10, 22, 18, 49, 20, 7,
            42, 14, 28, 38,
        ];
        assert_eq!(NumpyRandomState::new(42).permutation(50), expected);
        assert!(NumpyRandomState::new(1).permutation(0).is_empty());
        assert_eq!(NumpyRandomState::new(1).permutation(1), [0]);
    }

    #[test]
    fn numpy_interval_above_32_bits_matches_numpy() {
        // rs = np.random.RandomState(5); rs.randint(0, 2**40 + 1, dtype=np.uint64), twice.
        let mut rs = NumpyRandomState::new(5);
        assert_eq!(rs.random_interval(1 << 40), 34745516772);
        assert_eq!(rs.random_interval(1 << 40), 993841416126);
    }

    #[test]
    fn numpy_gamma_normal_exponential_match_numpy() {
        // rs = np.random.RandomState(123); [rs.standard_gamma(a) for a in [0.5, 1, 2.5, 2.5, 4, 0.25]]
        let mut rs = NumpyRandomState::new(123);
        let g: Vec<f64> = [0.5, 1.0, 2.5, 2.5, 4.0, 0.25]
            .iter()
            .map(|&a| rs.standard_gamma(a))
            .collect();
        assert_eq!(
            g,
            [
                0.5618439136133425,
                0.2572840801170508,
                5.86496882199701,
                2.821708773437171,
                3.2893862408440326,
                0.013870043953512563
            ]
        );
        let mut rs = NumpyRandomState::new(9);
        let n: Vec<f64> = (0..3).map(|_| rs.standard_normal()).collect();
        assert_eq!(
            n,
            [
                0.0011085547122109732,
                -0.2895440692501988,
                -1.1160663030644142
            ]
        );
        assert_eq!(rs.standard_exponential(), 0.15328065810290295);
        // np.random.seed(42); [scipy.stats.gamma.rvs(4.0, scale=1/(2.0*4.0)) for _ in range(4)]
        let mut rs = NumpyRandomState::new(42);
        let s: Vec<f64> = (0..4)
            .map(|_| rs.standard_gamma(4.0) * (1.0 / 8.0))
            .collect();
        assert_eq!(
            s,
            [
                0.5878017372669836,
                0.4260289876267912,
                0.4045405887460292,
                0.4045442046348771
            ]
        );
        assert!(rs.standard_gamma(-1.0).is_nan());
        assert_eq!(rs.standard_gamma(0.0), 0.0);
    }
}
