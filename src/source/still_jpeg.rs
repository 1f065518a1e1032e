//! Encoding a full-resolution picture into a [`Still`]: turned as the stream is, then
//! encoded in software at the stream's quality. Every source that takes stills from
//! raw pictures (the test pattern, V4L2 and libcamera cameras) goes through here, so a
//! hardware encoder set up for the stream's size is left alone.

use crate::encoder::{RawFrame, SoftwareEncoder, Turner};
use crate::picture::Orientation;
use crate::still::Still;

/// The still of `frame`, moved as `orientation` says (its size then turned too) and
/// encoded at `quality`.
pub fn encode_still(
    frame: RawFrame<'_>,
    orientation: Orientation,
    quality: u8,
) -> Result<Still, String> {
    let mut encoder = SoftwareEncoder::new(quality);
    let (jpeg, width, height) = Turner::new(orientation)
        .encode(&mut encoder, frame)
        .map_err(|e| e.to_string())?;
    Ok(Still {
        jpeg: jpeg.to_vec(),
        width: width.into(),
        height: height.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::RawLayout;

    #[test]
    fn a_still_is_turned_and_decodes_at_its_turned_size() {
        // A 64x32 picture: left half black, right half white (YUYV).
        let (w, h) = (64usize, 32usize);
        let mut yuyv = vec![128u8; w * h * 2];
        for (i, px) in yuyv.chunks_mut(2).enumerate() {
            px[0] = if i % w < w / 2 { 16 } else { 235 };
        }
        let frame = RawFrame::packed(&yuyv, RawLayout::Yuyv, (w as u16, h as u16), w * 2);
        let quarter = Orientation {
            transpose: true,
            hflip: true,
            vflip: false,
        };
        let still = encode_still(frame, quarter, 90).unwrap();
        assert_eq!((still.width, still.height), (32, 64));
        let dims = crate::jpeg::inspect(&still.jpeg).unwrap();
        assert_eq!((dims.width, dims.height), (32, 64));
        // Decoded as RGB; turned clockwise, the right half (white) is the bottom half.
        let rgb = zune_jpeg::JpegDecoder::new(&still.jpeg).decode().unwrap();
        let top = rgb[(5 * 32 + 16) * 3];
        let bottom = rgb[(58 * 32 + 16) * 3];
        assert!(top < 60 && bottom > 190, "top {top}, bottom {bottom}");
        let bad = RawFrame::packed(&yuyv[..10], RawLayout::Yuyv, (64, 32), 128);
        assert!(encode_still(bad, Orientation::default(), 90).is_err());
    }
}
