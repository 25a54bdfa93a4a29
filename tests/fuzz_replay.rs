//! The fuzz targets (fuzz/targets.rs) on stable Rust: every committed seed in
//! fuzz/corpus/<target>/, then seeded random mutations of them (bit flips, byte writes,
//! cuts, insertions, size fields set to extremes). Deterministic for a given seed; the
//! number of mutations per target is `TRICHOMETER_FUZZ_ITERS` (default 1000) and the seed
//! `TRICHOMETER_FUZZ_SEED` (default 1), so .ci/fuzz.sh can run a longer pass.

#[path = "../fuzz/targets.rs"]
mod targets;

use std::path::Path;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no seeds in {}", dir.display());
    v
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to four random edits of `data`.
fn mutate(rng: &mut Rng, data: &[u8]) -> Vec<u8> {
    let mut d = data.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
            }
            1 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] = [0x00, 0xFF, 0x7F, 0x80, 0x01, rng.next() as u8][rng.below(6)];
            }
            2 if !d.is_empty() => {
                let n = rng.below(d.len());
                d.truncate(n);
            }
            3 => {
                let i = rng.below(d.len() + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                d.splice(i..i, bytes);
            }
            4 if d.len() >= 4 => {
                // A 16- or 32-bit field (size, offset, length) set to an extreme.
                let i = rng.below(d.len() - 3);
                let v = [0u32, 1, 0xFFFF, 0x7FFF_FFFF, 0xFFFF_FFFF, 20_000][rng.below(6)];
                d[i..i + 4].copy_from_slice(&v.to_be_bytes());
            }
            _ if d.len() > 1 => {
                // Duplicate a slice elsewhere (repeats markers and chunks).
                let a = rng.below(d.len());
                let b = (a + 1 + rng.below(64)).min(d.len());
                let piece = d[a..b].to_vec();
                let at = rng.below(d.len() + 1);
                d.splice(at..at, piece);
            }
            _ => d.push(rng.next() as u8),
        }
    }
    d
}

fn replay(target: &str, run: fn(&[u8])) {
    let seeds = corpus(target);
    for (name, bytes) in &seeds {
        if std::panic::catch_unwind(|| run(bytes)).is_err() {
            panic!("{target}: seed {name} crashes");
        }
    }
    let iters = env_u64("TRICHOMETER_FUZZ_ITERS", 1000);
    let mut rng = Rng(env_u64("TRICHOMETER_FUZZ_SEED", 1) | 1);
    for i in 0..iters {
        let (name, seed) = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, seed);
        if std::panic::catch_unwind(|| run(&input)).is_err() {
            let dump = std::env::temp_dir().join(format!("trichometer-fuzz-{target}-{i}"));
            std::fs::write(&dump, &input).unwrap();
            panic!(
                "{target}: mutation {i} of {name} crashes; input saved to {}",
                dump.display()
            );
        }
    }
    // Edge inputs no mutation is sure to hit.
    for input in [
        &b""[..],
        &[0],
        &[0xFF, 0xD8],
        &[0x89, b'P', b'N', b'G'],
        b"II*\0",
        b"BM",
    ] {
        run(input);
    }
}

#[test]
fn fuzz_decode_corpus_and_mutations() {
    replay("decode", targets::decode);
}

#[test]
fn fuzz_analyze_pixels_corpus_and_mutations() {
    replay("analyze_pixels", targets::analyze_pixels);
}
