//! Fragmented MP4 (ISO/IEC 14496-12 with the AVC file format of 14496-15) for a live
//! H.264 stream: bytes in, boxes out.
//!
//! A stream is an initialisation segment, then one fragment per picture:
//!
//! ```text
//! ftyp  moov(mvhd trak(tkhd mdia(mdhd hdlr minf(vmhd dinf stbl(stsd(avc1(avcC)) ...)))) mvex(trex))
//! moof(mfhd traf(tfhd tfdt trun))  mdat(sample)      ← one per picture
//! ```
//!
//! Times are in [`TIMESCALE`] ticks (90 kHz, as RTP uses for video). The initialisation
//! segment announces no duration (a live stream) and an empty sample table; every
//! fragment carries one sample with its decode time, duration, size and whether it is a
//! sync sample (an IDR picture). Media Source Extensions and `ffmpeg` read this form.

use super::slot::StreamConfig;

/// Ticks per second of the track's times.
pub const TIMESCALE: u32 = 90_000;

/// The one track's ID.
const TRACK: u32 = 1;

/// `sample_flags` of a sync sample: depends on no other picture.
const SYNC_FLAGS: u32 = 0x0200_0000;
/// `sample_flags` of any other picture: depends on others, not a sync sample.
const NON_SYNC_FLAGS: u32 = 0x0101_0000;

/// Writes a box: its 32-bit size, its type, then what `body` writes.
fn mp4_box(out: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(kind);
    body(out);
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// A full box: a box whose body starts with a version byte and 24 bits of flags.
fn full_box(
    out: &mut Vec<u8>,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    mp4_box(out, kind, |out| {
        out.extend_from_slice(&((u32::from(version) << 24) | (flags & 0xFF_FFFF)).to_be_bytes());
        body(out);
    });
}

fn u16be(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn u32be(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn zeros(out: &mut Vec<u8>, n: usize) {
    out.resize(out.len() + n, 0);
}

/// The identity matrix of `mvhd` and `tkhd`, in 16.16 and 2.30 fixed point.
fn unity_matrix(out: &mut Vec<u8>) {
    for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        u32be(out, v);
    }
}

/// The AVC decoder configuration record (`avcC` body) of `config`: profile, level and
/// the parameter sets, with 4-byte NAL unit lengths in the samples.
pub fn avc_decoder_configuration(config: &StreamConfig) -> Vec<u8> {
    let mut out = Vec::with_capacity(11 + config.sps.len() + config.pps.len());
    let sps_byte = |i: usize| config.sps.get(i).copied().unwrap_or(0);
    out.push(1); // configurationVersion
    out.push(sps_byte(1)); // AVCProfileIndication
    out.push(sps_byte(2)); // profile_compatibility
    out.push(sps_byte(3)); // AVCLevelIndication
    out.push(0xFC | 3); // lengthSizeMinusOne: 4-byte lengths
    out.push(0xE0 | 1); // one SPS
    u16be(&mut out, config.sps.len() as u16);
    out.extend_from_slice(&config.sps);
    out.push(1); // one PPS
    u16be(&mut out, config.pps.len() as u16);
    out.extend_from_slice(&config.pps);
    out
}

/// The RFC 6381 codec string of `config` (`avc1.PPCCLL`), for `MediaSource.isTypeSupported`.
pub fn codec_string(config: &StreamConfig) -> String {
    let b = |i: usize| config.sps.get(i).copied().unwrap_or(0);
    format!("avc1.{:02X}{:02X}{:02X}", b(1), b(2), b(3))
}

/// The initialisation segment: `ftyp` and `moov` for one H.264 video track.
pub fn init_segment(config: &StreamConfig) -> Vec<u8> {
    let mut out = Vec::with_capacity(700 + config.sps.len() + config.pps.len());
    mp4_box(&mut out, b"ftyp", |out| {
        out.extend_from_slice(b"isom");
        u32be(out, 0x200);
        for brand in [b"isom", b"iso6", b"avc1", b"mp41"] {
            out.extend_from_slice(brand);
        }
    });
    mp4_box(&mut out, b"moov", |out| {
        full_box(out, b"mvhd", 0, 0, |out| {
            u32be(out, 0); // creation_time
            u32be(out, 0); // modification_time
            u32be(out, 1000); // timescale
            u32be(out, 0); // duration: unknown, live
            u32be(out, 0x0001_0000); // rate 1.0
            u16be(out, 0x0100); // volume 1.0
            zeros(out, 10);
            unity_matrix(out);
            zeros(out, 24); // pre_defined
            u32be(out, TRACK + 1); // next_track_ID
        });
        mp4_box(out, b"trak", |out| {
            // Flags: enabled, in movie.
            full_box(out, b"tkhd", 0, 3, |out| {
                u32be(out, 0);
                u32be(out, 0);
                u32be(out, TRACK);
                u32be(out, 0); // reserved
                u32be(out, 0); // duration
                zeros(out, 8);
                u16be(out, 0); // layer
                u16be(out, 0); // alternate_group
                u16be(out, 0); // volume: video has none
                u16be(out, 0);
                unity_matrix(out);
                u32be(out, u32::from(config.width) << 16);
                u32be(out, u32::from(config.height) << 16);
            });
            mp4_box(out, b"mdia", |out| {
                full_box(out, b"mdhd", 0, 0, |out| {
                    u32be(out, 0);
                    u32be(out, 0);
                    u32be(out, TIMESCALE);
                    u32be(out, 0);
                    u16be(out, 0x55C4); // language "und"
                    u16be(out, 0);
                });
                full_box(out, b"hdlr", 0, 0, |out| {
                    u32be(out, 0);
                    out.extend_from_slice(b"vide");
                    zeros(out, 12);
                    out.extend_from_slice(b"picam-stream\0");
                });
                mp4_box(out, b"minf", |out| {
                    full_box(out, b"vmhd", 0, 1, |out| zeros(out, 8));
                    mp4_box(out, b"dinf", |out| {
                        full_box(out, b"dref", 0, 0, |out| {
                            u32be(out, 1);
                            // Flags 1: the media is in this file.
                            full_box(out, b"url ", 0, 1, |_| {});
                        });
                    });
                    mp4_box(out, b"stbl", |out| {
                        full_box(out, b"stsd", 0, 0, |out| {
                            u32be(out, 1);
                            sample_entry(out, config);
                        });
                        for empty in [b"stts", b"stsc", b"stco"] {
                            full_box(out, empty, 0, 0, |out| u32be(out, 0));
                        }
                        full_box(out, b"stsz", 0, 0, |out| {
                            u32be(out, 0); // sample_size: each its own
                            u32be(out, 0); // sample_count
                        });
                    });
                });
            });
        });
        mp4_box(out, b"mvex", |out| {
            full_box(out, b"trex", 0, 0, |out| {
                u32be(out, TRACK);
                u32be(out, 1); // default_sample_description_index
                u32be(out, 0); // default_sample_duration
                u32be(out, 0); // default_sample_size
                u32be(out, 0); // default_sample_flags
            });
        });
    });
    out
}

/// The `avc1` sample entry with its `avcC`.
fn sample_entry(out: &mut Vec<u8>, config: &StreamConfig) {
    mp4_box(out, b"avc1", |out| {
        zeros(out, 6);
        u16be(out, 1); // data_reference_index
        zeros(out, 16); // pre_defined and reserved
        u16be(out, config.width);
        u16be(out, config.height);
        u32be(out, 0x0048_0000); // 72 dpi across
        u32be(out, 0x0048_0000); // and down
        u32be(out, 0);
        u16be(out, 1); // frame_count
        zeros(out, 32); // compressorname
        u16be(out, 0x0018); // depth: colour
        u16be(out, 0xFFFF); // pre_defined = -1
        mp4_box(out, b"avcC", |out| {
            out.extend_from_slice(&avc_decoder_configuration(config))
        });
    });
}

/// One picture's place in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleTiming {
    /// The fragment's sequence number (from 1, one more each fragment).
    pub sequence: u32,
    /// When the picture is decoded (and shown), in [`TIMESCALE`] ticks.
    pub decode_time: u64,
    /// How long it is shown, in ticks.
    pub duration: u32,
}

/// The boxes of one fragment before its sample: `moof` and the `mdat` header. Sent
/// followed by the `sample_len` bytes of the sample, they make the fragment.
pub fn fragment_head(timing: SampleTiming, key: bool, sample_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(112);
    mp4_box(&mut out, b"moof", |out| {
        full_box(out, b"mfhd", 0, 0, |out| u32be(out, timing.sequence));
        mp4_box(out, b"traf", |out| {
            // Flags 0x020000: data offsets count from the start of the moof.
            full_box(out, b"tfhd", 0, 0x02_0000, |out| u32be(out, TRACK));
            full_box(out, b"tfdt", 1, 0, |out| {
                out.extend_from_slice(&timing.decode_time.to_be_bytes())
            });
            // Flags: data offset, then per sample its duration, size and flags.
            full_box(out, b"trun", 0, 0x0001 | 0x0100 | 0x0200 | 0x0400, |out| {
                u32be(out, 1); // sample_count
                u32be(out, 0); // data_offset, filled in below
                u32be(out, timing.duration);
                u32be(out, sample_len as u32);
                u32be(out, if key { SYNC_FLAGS } else { NON_SYNC_FLAGS });
            });
        });
    });
    // The sample starts right after the mdat header that follows the moof.
    let data_offset = (out.len() + 8) as u32;
    let at = out.len() - 16;
    out[at..at + 4].copy_from_slice(&data_offset.to_be_bytes());
    u32be(&mut out, (sample_len + 8) as u32);
    out.extend_from_slice(b"mdat");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A box read back: its type and body.
    #[derive(Debug)]
    struct Read<'a> {
        kind: [u8; 4],
        body: &'a [u8],
    }

    /// The boxes laid one after another in `data`; panics on a size that does not fit.
    fn boxes(mut data: &[u8]) -> Vec<Read<'_>> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let size = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
            assert!(
                size >= 8 && size <= data.len(),
                "box size {size} of {}",
                data.len()
            );
            out.push(Read {
                kind: data[4..8].try_into().unwrap(),
                body: &data[8..size],
            });
            data = &data[size..];
        }
        out
    }

    fn kinds(list: &[Read<'_>]) -> Vec<String> {
        list.iter()
            .map(|b| String::from_utf8_lossy(&b.kind).into_owned())
            .collect()
    }

    /// The only child of `parent` of type `kind`, skipping `skip` bytes of the parent's
    /// body first.
    fn child<'a>(parent: &'a [u8], skip: usize, kind: &[u8; 4]) -> &'a [u8] {
        let found: Vec<_> = boxes(&parent[skip..])
            .into_iter()
            .filter(|b| &b.kind == kind)
            .collect();
        assert_eq!(found.len(), 1, "{}", String::from_utf8_lossy(kind));
        found[0].body
    }

    fn be32(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
    }

    fn config() -> StreamConfig {
        StreamConfig {
            width: 1280,
            height: 720,
            fps: 30,
            sps: vec![0x67, 0x42, 0xC0, 0x1F, 0xDA, 0x01],
            pps: vec![0x68, 0xCE, 0x3C, 0x80],
        }
    }

    #[test]
    fn the_init_segment_is_ftyp_then_moov() {
        let init = init_segment(&config());
        let top = boxes(&init);
        assert_eq!(kinds(&top), ["ftyp", "moov"]);
        assert_eq!(&top[0].body[..4], b"isom");
        assert!(top[0].body.chunks(4).any(|b| b == b"avc1"));
        let moov = top[1].body;
        assert_eq!(kinds(&boxes(moov)), ["mvhd", "trak", "mvex"]);
        let mvhd = child(moov, 0, b"mvhd");
        assert_eq!(be32(mvhd, 12), 1000, "movie timescale");
        assert_eq!(be32(mvhd, 16), 0, "no duration: live");
        assert_eq!(be32(mvhd, mvhd.len() - 4), 2, "next track ID");
        let trex = child(child(moov, 0, b"mvex"), 0, b"trex");
        assert_eq!(be32(trex, 4), 1, "track 1");
        assert_eq!(be32(trex, 8), 1, "sample description 1");
    }

    #[test]
    fn the_track_says_size_timescale_and_video() {
        let init = init_segment(&config());
        let moov = boxes(&init)[1].body;
        let trak = child(moov, 0, b"trak");
        let tkhd = child(trak, 0, b"tkhd");
        assert_eq!(be32(tkhd, 0) & 0xFF_FFFF, 3, "enabled, in movie");
        assert_eq!(be32(tkhd, 12), 1, "track ID");
        assert_eq!(be32(tkhd, tkhd.len() - 8), 1280 << 16);
        assert_eq!(be32(tkhd, tkhd.len() - 4), 720 << 16);
        let mdia = child(trak, 0, b"mdia");
        assert_eq!(kinds(&boxes(mdia)), ["mdhd", "hdlr", "minf"]);
        assert_eq!(be32(child(mdia, 0, b"mdhd"), 12), TIMESCALE);
        assert_eq!(&child(mdia, 0, b"hdlr")[8..12], b"vide");
        let minf = child(mdia, 0, b"minf");
        assert_eq!(kinds(&boxes(minf)), ["vmhd", "dinf", "stbl"]);
        let dref = child(child(minf, 0, b"dinf"), 0, b"dref");
        assert_eq!(be32(dref, 4), 1);
        assert_eq!(be32(child(dref, 8, b"url "), 0), 1, "self-contained");
        let stbl = child(minf, 0, b"stbl");
        assert_eq!(
            kinds(&boxes(stbl)),
            ["stsd", "stts", "stsc", "stco", "stsz"]
        );
        for empty in [b"stts", b"stsc", b"stco"] {
            assert_eq!(be32(child(stbl, 0, empty), 4), 0, "no samples in moov");
        }
    }

    #[test]
    fn the_sample_entry_carries_size_and_parameter_sets() {
        let c = config();
        let init = init_segment(&c);
        let moov = boxes(&init)[1].body;
        let trak = child(moov, 0, b"trak");
        let mdia = child(trak, 0, b"mdia");
        let stbl = child(child(mdia, 0, b"minf"), 0, b"stbl");
        let stsd = child(stbl, 0, b"stsd");
        assert_eq!(be32(stsd, 4), 1, "one entry");
        let avc1 = child(stsd, 8, b"avc1");
        assert_eq!(u16::from_be_bytes([avc1[24], avc1[25]]), 1280);
        assert_eq!(u16::from_be_bytes([avc1[26], avc1[27]]), 720);
        // avcC after the 78 bytes of the visual sample entry.
        let avcc = child(avc1, 78, b"avcC");
        assert_eq!(avcc, avc_decoder_configuration(&c));
        assert_eq!(&avcc[..6], &[1, 0x42, 0xC0, 0x1F, 0xFF, 0xE1]);
        assert_eq!(u16::from_be_bytes([avcc[6], avcc[7]]) as usize, c.sps.len());
        assert_eq!(&avcc[8..8 + c.sps.len()], &c.sps[..]);
        let p = 8 + c.sps.len();
        assert_eq!(avcc[p], 1);
        assert_eq!(
            u16::from_be_bytes([avcc[p + 1], avcc[p + 2]]) as usize,
            c.pps.len()
        );
        assert_eq!(&avcc[p + 3..], &c.pps[..]);
        assert_eq!(codec_string(&c), "avc1.42C01F");
    }

    #[test]
    fn a_fragment_is_moof_then_mdat_pointing_at_its_sample() {
        let sample = [0, 0, 0, 3, 0x65, 0x88, 0x84];
        let timing = SampleTiming {
            sequence: 7,
            decode_time: 5_000_000_000,
            duration: 3000,
        };
        let mut fragment = fragment_head(timing, true, sample.len());
        fragment.extend_from_slice(&sample);
        let top = boxes(&fragment);
        assert_eq!(kinds(&top), ["moof", "mdat"]);
        assert_eq!(top[1].body, sample);
        let moof = top[0].body;
        assert_eq!(be32(child(moof, 0, b"mfhd"), 4), 7);
        let traf = child(moof, 0, b"traf");
        assert_eq!(kinds(&boxes(traf)), ["tfhd", "tfdt", "trun"]);
        let tfhd = child(traf, 0, b"tfhd");
        assert_eq!(be32(tfhd, 0), 0x02_0000, "default base is moof");
        assert_eq!(be32(tfhd, 4), 1);
        let tfdt = child(traf, 0, b"tfdt");
        assert_eq!(tfdt[0], 1, "64-bit decode time");
        assert_eq!(
            u64::from_be_bytes(tfdt[4..12].try_into().unwrap()),
            5_000_000_000
        );
        let trun = child(traf, 0, b"trun");
        assert_eq!(be32(trun, 0), 0x0701);
        assert_eq!(be32(trun, 4), 1, "one sample");
        let offset = be32(trun, 8) as usize;
        assert_eq!(
            &fragment[offset..],
            &sample,
            "data offset from the moof's start"
        );
        assert_eq!(be32(trun, 12), 3000);
        assert_eq!(be32(trun, 16), sample.len() as u32);
        assert_eq!(be32(trun, 20), SYNC_FLAGS);
        let mut other = fragment_head(timing, false, 1);
        other.push(0x41);
        let trun = child(child(boxes(&other)[0].body, 0, b"traf"), 0, b"trun");
        assert_eq!(be32(trun, 20), NON_SYNC_FLAGS, "not a sync sample");
    }
}
