//! The deterministic generator the randomized tests share (the dig reply
//! mutator, the filter compiler's and the packet printer's fuzz tests):
//! Marsaglia's xorshift64*, so a failing case is reproducible from its seed
//! without a dependency. cargo-fuzz would need a nightly toolchain, which
//! the build machines lack; these bounded tests run in every `cargo test`.

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform enough in 0..n (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    pub fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}
