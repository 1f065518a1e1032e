//! The benchmarks' camera-like pictures: a test card of eight coloured bars that move a
//! little each frame, a vertical shade, and per-pixel noise like a sensor's, encoded at
//! quality 75, so that pictures compress to a real camera's sizes and their entropy
//! data holds as many stuffed 0xFF bytes as a real picture's.

/// The bars' colours, in video range.
const BARS: [[i32; 3]; 8] = [
    [235, 235, 235],
    [235, 235, 16],
    [16, 235, 235],
    [16, 235, 16],
    [235, 16, 235],
    [235, 16, 16],
    [16, 16, 235],
    [16, 16, 16],
];

/// Test card number `index` at `width` x `height` as a JPEG, with noise of up to
/// `noise` levels either way on every component. The same arguments give the same
/// bytes in every run.
pub fn test_card(width: usize, height: usize, index: usize, noise: u64) -> Vec<u8> {
    let mut rng = 0x2545_F491_4F6C_DD1Du64 ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut rgb = vec![0u8; width * height * 3];
    let bar_width = (width / 8).max(1);
    for y in 0..height {
        let shade = (y * 80 / height.max(1)) as i32 - 40;
        for x in 0..width {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let base = BARS[(x + index * 8) / bar_width % 8];
            for c in 0..3 {
                let jitter = ((rng >> (c * 8)) % (2 * noise + 1)) as i32 - noise as i32;
                rgb[(y * width + x) * 3 + c] = (base[c] + shade + jitter).clamp(0, 255) as u8;
            }
        }
    }
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, 75)
        .encode(
            &rgb,
            width as u16,
            height as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .expect("encoding a test card");
    jpeg
}
