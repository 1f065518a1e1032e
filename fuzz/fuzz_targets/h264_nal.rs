//! The H.264 NAL unit reader and the fragmented MP4 muxer, against arbitrary bytes
//! taken as an encoder's Annex B output for one picture.
//!
//! Checked:
//!
//! * nothing panics;
//! * the sample holds, behind their lengths, exactly the units that are not parameter
//!   sets or access unit delimiters, in order;
//! * a fragment made of the sample is a `moof` and an `mdat` whose sizes add up and
//!   whose data offset points at the sample;
//! * with parameter sets, the initialisation segment is two boxes that fill it;
//! * the hardware stage's publisher, handed the bytes as two pictures in a row,
//!   publishes only pictures with a slice, and an IDR picture only with parameter
//!   sets: a device returning garbage never reaches a viewer as a broken unit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use picam_stream::h264::fmp4::{self, SampleTiming};
use picam_stream::h264::nal;
use picam_stream::h264::publish::{AnnexBPublisher, Published};
use picam_stream::h264::slot::{H264Slot, StreamConfig};

fn box_size(b: &[u8]) -> usize {
    u32::from_be_bytes(b[..4].try_into().unwrap()) as usize
}

fuzz_target!(|data: &[u8]| {
    let picture = nal::picture(data);
    let slot = H264Slot::new();
    let mut publisher = AnnexBPublisher::new(16, 16, 30);
    let (first, second) = data.split_at(data.len() / 2);
    for part in [first, second] {
        let published = publisher.publish(part, std::time::Instant::now(), &slot);
        if let Ok(Published::Unit { key }) = published {
            let coded = nal::picture(part);
            assert!(coded.has_slice && !coded.sample.is_empty());
            let config = slot.config().expect("published with parameter sets");
            assert!(!config.sps.is_empty() && !config.pps.is_empty());
            assert_eq!(key, coded.key);
        }
    }
    let kept: Vec<&[u8]> = nal::split_annex_b(data)
        .into_iter()
        .filter(|u| {
            !matches!(
                nal::unit_type(u),
                nal::kind::SPS | nal::kind::PPS | nal::kind::AUD
            )
        })
        .collect();
    assert_eq!(nal::sample_units(&picture.sample), kept);
    let timing = SampleTiming {
        sequence: 1,
        decode_time: u64::from(data.first().copied().unwrap_or(0)) << 33,
        duration: 3000,
    };
    let mut fragment = fmp4::fragment_head(timing, picture.key, picture.sample.len());
    let head = fragment.len();
    fragment.extend_from_slice(&picture.sample);
    let moof = box_size(&fragment);
    assert_eq!(&fragment[4..8], b"moof");
    assert_eq!(moof + 8, head);
    let offset = box_size(&fragment[moof - 16..]);
    assert_eq!(offset, head, "the data offset points at the sample");
    assert_eq!(&fragment[moof + 4..moof + 8], b"mdat");
    assert_eq!(box_size(&fragment[moof..]), fragment.len() - moof);
    if let (Some(sps), Some(pps)) = (picture.sps, picture.pps) {
        if sps.len() <= usize::from(u16::MAX) && pps.len() <= usize::from(u16::MAX) {
            let init = fmp4::init_segment(&StreamConfig {
                width: 16,
                height: 16,
                fps: 30,
                sps,
                pps,
            });
            let ftyp = box_size(&init);
            assert_eq!(ftyp + box_size(&init[ftyp..]), init.len());
        }
    }
});
