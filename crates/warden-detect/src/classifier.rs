//! The statistical layer: a logistic regression over hashed word unigrams (FNV-1a of the
//! lower-cased token) and bigrams (a mix of the two unigram hashes), scored
//! on every window of [`Model::window`] consecutive tokens; a text's score is its best
//! window's. Trained by `eval/detect/train.py` (which mirrors the feature extraction here
//! exactly); the weights ship in `model/injection.bin` and are compiled in.
//!
//! File format (little endian): `b"WDLR1\0\0\0"`, `u32` log2(buckets), `u32` window,
//! `f32` bias, `f32` scale, then `2^log2` `i16` weights (weight = i16 × scale).

use crate::DetectError;

static SHIPPED: &[u8] = include_bytes!("../model/injection.bin");

/// A loaded classifier.
#[derive(Debug, Clone)]
pub struct Model {
    weights: Vec<f32>,
    mask: u32,
    window: usize,
    bias: f32,
}

/// The best-scoring window of a text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowScore {
    /// Probability in [0, 1].
    pub score: f64,
    /// Byte span of the window in the scored text.
    pub start: usize,
    pub end: usize,
}

const FNV_OFFSET: u32 = 0x811C_9DC5;
const FNV_PRIME: u32 = 0x0100_0193;

#[inline]
fn fnv(mut h: u32, b: u8) -> u32 {
    h ^= b as u32;
    h.wrapping_mul(FNV_PRIME)
}

/// Bigram bucket from the two unigram hashes (one multiply per token, not per byte).
#[inline]
fn bigram(prev: u32, h: u32) -> u32 {
    let x = (prev.wrapping_mul(0x9E37_79B1) ^ h).wrapping_mul(0x85EB_CA6B);
    x ^ (x >> 15)
}

#[inline]
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

impl Model {
    /// The weights shipped with this crate.
    pub fn shipped() -> &'static Model {
        static MODEL: std::sync::OnceLock<Model> = std::sync::OnceLock::new();
        MODEL.get_or_init(|| Model::from_bytes(SHIPPED).expect("shipped model is valid"))
    }

    /// Parses a model file.
    pub fn from_bytes(b: &[u8]) -> Result<Model, DetectError> {
        let bad = |m: &str| DetectError::Model(m.to_string());
        if b.len() < 24 || &b[..8] != b"WDLR1\0\0\0" {
            return Err(bad("not a WDLR1 model file"));
        }
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let log2 = u32_at(8);
        let window = u32_at(12) as usize;
        let bias = f32::from_le_bytes(b[16..20].try_into().unwrap());
        let scale = f32::from_le_bytes(b[20..24].try_into().unwrap());
        if !(8..=24).contains(&log2) || window == 0 {
            return Err(bad("bad header"));
        }
        let n = 1usize << log2;
        if b.len() != 24 + 2 * n {
            return Err(bad("weights truncated"));
        }
        let weights = b[24..]
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32 * scale)
            .collect();
        Ok(Model {
            weights,
            mask: (n - 1) as u32,
            window,
            bias,
        })
    }

    /// Tokens per scored window.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Scores `text` (already normalised): the best window's probability and span.
    /// Empty text scores 0.
    pub fn score(&self, text: &str) -> WindowScore {
        let bytes = text.as_bytes();
        let w = self.window;
        // Ring buffers of the last `w` tokens' contributions and start offsets.
        let mut contrib = vec![0f32; w];
        let mut starts = vec![0usize; w];
        let mut ends = vec![0usize; w];
        let mut n_tokens = 0usize;
        let mut sum = 0f32;
        let mut best = f32::NEG_INFINITY;
        let mut best_span = (0, 0);
        let mut prev_hash: Option<u32> = None;
        let mut i = 0;
        let len = bytes.len();
        while i < len {
            if !is_token_byte(bytes[i]) {
                i += 1;
                continue;
            }
            let start = i;
            let mut h = FNV_OFFSET;
            while i < len && is_token_byte(bytes[i]) {
                h = fnv(h, bytes[i].to_ascii_lowercase());
                i += 1;
            }
            let mut c = self.weights[(h & self.mask) as usize];
            if let Some(p) = prev_hash {
                c += self.weights[(bigram(p, h) & self.mask) as usize];
            }
            prev_hash = Some(h);
            let slot = n_tokens % w;
            if n_tokens >= w {
                sum -= contrib[slot];
            }
            contrib[slot] = c;
            starts[slot] = start;
            ends[slot] = i;
            sum += c;
            n_tokens += 1;
            if n_tokens >= w && sum > best {
                best = sum;
                let first = (n_tokens - w) % w;
                best_span = (starts[first], i);
            }
        }
        if n_tokens == 0 {
            return WindowScore {
                score: 0.0,
                start: 0,
                end: 0,
            };
        }
        if n_tokens < w {
            best = sum;
            best_span = (starts[0], ends[(n_tokens - 1) % w]);
        }
        let logit = (self.bias + best) as f64;
        WindowScore {
            score: 1.0 / (1.0 + (-logit).exp()),
            start: best_span.0,
            end: best_span.1,
        }
    }
}
