//! H.264 NAL units: cut out of an Annex B byte stream (each unit behind a `00 00 01` or
//! `00 00 00 01` start code, as encoders write them) and sorted into what an MP4 sample
//! holds and what its sample description holds.
//!
//! Pure functions of their input, which may be anything: a stream without start codes
//! yields no units, never a panic.

/// NAL unit types (ITU-T H.264 table 7-1) this module tells apart.
pub mod kind {
    /// A slice of a picture other than an IDR picture.
    pub const SLICE: u8 = 1;
    /// A slice of an IDR picture.
    pub const IDR: u8 = 5;
    pub const SEI: u8 = 6;
    /// Sequence parameter set.
    pub const SPS: u8 = 7;
    /// Picture parameter set.
    pub const PPS: u8 = 8;
    /// Access unit delimiter.
    pub const AUD: u8 = 9;
}

/// The type of a NAL unit (its first byte's low five bits); 0 for an empty one.
pub fn unit_type(unit: &[u8]) -> u8 {
    unit.first().map_or(0, |b| b & 0x1F)
}

/// The NAL units of an Annex B byte stream, without their start codes, in order. Bytes
/// before the first start code are not a unit and are left out, and so are empty units.
pub fn split_annex_b(stream: &[u8]) -> Vec<&[u8]> {
    let mut units = Vec::new();
    let mut start = None;
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i] == 0 && stream[i + 1] == 0 && stream[i + 2] == 1 {
            if let Some(s) = start {
                push_unit(&mut units, &stream[s..i]);
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    if let Some(s) = start {
        push_unit(&mut units, &stream[s..]);
    }
    units
}

/// Adds `unit` without the zero bytes that belong to the next start code (the leading
/// zero of a four-byte one, and trailing zeros).
fn push_unit<'a>(units: &mut Vec<&'a [u8]>, unit: &'a [u8]) {
    let end = unit.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    if end > 0 {
        units.push(&unit[..end]);
    }
}

/// One encoded picture, sorted for MP4.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Picture {
    /// Contains a slice of an IDR picture.
    pub key: bool,
    /// The last sequence parameter set in the picture's units, if any.
    pub sps: Option<Vec<u8>>,
    /// The last picture parameter set, if any.
    pub pps: Option<Vec<u8>>,
    /// Every other unit but access unit delimiters, each behind its 4-byte big-endian
    /// length: an MP4 sample.
    pub sample: Vec<u8>,
    /// Whether the sample holds a slice at all.
    pub has_slice: bool,
}

/// Sorts the NAL units of one access unit (Annex B) into parameter sets and sample.
pub fn picture(stream: &[u8]) -> Picture {
    let mut picture = Picture::default();
    for unit in split_annex_b(stream) {
        match unit_type(unit) {
            kind::SPS => picture.sps = Some(unit.to_vec()),
            kind::PPS => picture.pps = Some(unit.to_vec()),
            kind::AUD => {}
            t => {
                picture.key |= t == kind::IDR;
                picture.has_slice |= matches!(t, kind::SLICE..=kind::IDR);
                // A unit longer than 4 GiB cannot come out of one picture's encoder.
                picture
                    .sample
                    .extend_from_slice(&(unit.len() as u32).to_be_bytes());
                picture.sample.extend_from_slice(unit);
            }
        }
    }
    picture
}

/// The NAL units of an MP4 sample (each behind its 4-byte length), in order; a length
/// that runs past the end ends the list.
pub fn sample_units(sample: &[u8]) -> Vec<&[u8]> {
    let mut units = Vec::new();
    let mut rest = sample;
    while rest.len() >= 4 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let Some(unit) = rest.get(4..4 + len) else {
            break;
        };
        units.push(unit);
        rest = &rest[4 + len..];
    }
    units
}

/// An MP4 `sample` as an Annex B byte stream (each unit behind `00 00 00 01`), as RTP
/// packetizers take it; with `parameter_sets` (SPS, PPS) first when it is given, so
/// that a key picture carries what a decoder needs before it.
pub fn sample_to_annex_b(sample: &[u8], parameter_sets: Option<(&[u8], &[u8])>) -> Vec<u8> {
    const START: [u8; 4] = [0, 0, 0, 1];
    let mut out = Vec::with_capacity(sample.len() + 64);
    if let Some((sps, pps)) = parameter_sets {
        for unit in [sps, pps] {
            out.extend_from_slice(&START);
            out.extend_from_slice(unit);
        }
    }
    for unit in sample_units(sample) {
        out.extend_from_slice(&START);
        out.extend_from_slice(unit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_turns_into_annex_b_and_back() {
        let sample = [0, 0, 0, 3, 0x65, 0x88, 0x80, 0, 0, 0, 2, 0x41, 0x9A];
        let plain = sample_to_annex_b(&sample, None);
        assert_eq!(
            plain,
            [0, 0, 0, 1, 0x65, 0x88, 0x80, 0, 0, 0, 1, 0x41, 0x9A]
        );
        assert_eq!(
            split_annex_b(&plain),
            [&[0x65, 0x88, 0x80][..], &[0x41, 0x9A]]
        );
        let keyed = sample_to_annex_b(&sample, Some((&[0x67, 0x42], &[0x68, 0xCE])));
        let units = split_annex_b(&keyed);
        assert_eq!(units.len(), 4);
        assert_eq!(units[0], [0x67, 0x42]);
        assert_eq!(units[1], [0x68, 0xCE]);
        // A length past the end ends the units, as sample_units says.
        assert!(sample_to_annex_b(&[0, 0, 0, 9, 1], None).is_empty());
    }

    #[test]
    fn splits_on_three_and_four_byte_start_codes() {
        let stream = [
            0, 0, 0, 1, 0x67, 0x42, 0, 0x1E, // SPS with a zero inside
            0, 0, 1, 0x68, 0xCE, // PPS
            0, 0, 0, 1, 0x65, 0x88, 0, 0, // IDR slice with trailing zeros
        ];
        let units = split_annex_b(&stream);
        assert_eq!(
            units,
            vec![&[0x67, 0x42, 0, 0x1E][..], &[0x68, 0xCE], &[0x65, 0x88]]
        );
        assert_eq!(
            units.iter().map(|u| unit_type(u)).collect::<Vec<_>>(),
            [7, 8, 5]
        );
    }

    #[test]
    fn anything_without_start_codes_is_no_unit() {
        assert!(split_annex_b(&[]).is_empty());
        assert!(split_annex_b(&[0, 0]).is_empty());
        assert!(split_annex_b(&[1, 2, 3, 4, 5]).is_empty());
        assert!(split_annex_b(&[0, 0, 1]).is_empty());
        assert!(split_annex_b(&[0, 0, 1, 0, 0, 1]).is_empty());
        assert_eq!(unit_type(&[]), 0);
    }

    #[test]
    fn a_picture_is_sorted_into_parameter_sets_and_a_length_prefixed_sample() {
        let stream = [
            0, 0, 0, 1, 0x09, 0xF0, // access unit delimiter: dropped
            0, 0, 0, 1, 0x67, 0x42, 0xC0, 0x1F, // SPS
            0, 0, 0, 1, 0x68, 0xCE, 0x3C, 0x80, // PPS
            0, 0, 0, 1, 0x06, 0x05, 0x01, // SEI
            0, 0, 0, 1, 0x65, 0x88, 0x84, // IDR slice
        ];
        let p = picture(&stream);
        assert!(p.key && p.has_slice);
        assert_eq!(p.sps.as_deref(), Some(&[0x67, 0x42, 0xC0, 0x1F][..]));
        assert_eq!(p.pps.as_deref(), Some(&[0x68, 0xCE, 0x3C, 0x80][..]));
        assert_eq!(
            p.sample,
            [0, 0, 0, 3, 0x06, 0x05, 0x01, 0, 0, 0, 3, 0x65, 0x88, 0x84]
        );
        assert_eq!(
            sample_units(&p.sample),
            vec![&[0x06, 0x05, 0x01][..], &[0x65, 0x88, 0x84]]
        );
        let p = picture(&[0, 0, 1, 0x41, 0x9A]);
        assert!(!p.key && p.has_slice && p.sps.is_none());
        assert_eq!(p.sample, [0, 0, 0, 2, 0x41, 0x9A]);
    }

    #[test]
    fn a_sample_with_a_length_past_its_end_stops_there() {
        assert_eq!(
            sample_units(&[0, 0, 0, 1, 0x41, 0, 0, 0, 9, 1]),
            vec![&[0x41][..]]
        );
        assert!(sample_units(&[0, 0, 0]).is_empty());
    }
}
