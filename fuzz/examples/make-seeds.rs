//! Writes the seed corpora in `corpus/<target>/`: pictures made by the server's own
//! encoder, MJPEG streams and runs of pictures built from them, request lines and
//! heads, option lists, `Authorization` header values, auth files, mDNS packets,
//! source-process messages and camera-control descriptions, requests and answers made
//! by the server's own writers.
//!
//! Run from the `fuzz` directory with `cargo run --example make-seeds`. The output is
//! deterministic, so running it again changes nothing unless the encoder changed.

use std::fs;
use std::path::Path;

use std::net::Ipv4Addr;

use picam_stream::controls::{CameraControls, ControlInfo, ControlKind};
use picam_stream::encoder::{RawLayout, SoftwareEncoder};
use picam_stream::mdns::answer::{announcement, Addresses, Identity};
use picam_stream::mdns::wire::{
    query, Question, RData, Record, Writer, CLASS_IN, TYPE_A, TYPE_AAAA, TYPE_ANY, TYPE_PTR,
    TYPE_SRV, TYPE_TXT,
};
use picam_stream::source::isolate::control_wire::{Answer, Description, Outcome, Request};
use picam_stream::source::isolate::Message;
use picam_stream::source::pattern::{self, PatternControls};

/// A test-pattern picture of `width` x `height`, encoded at `quality`.
fn picture(width: u16, height: u16, quality: u8) -> Vec<u8> {
    let rgb = pattern::background(width.into(), height.into());
    SoftwareEncoder::new(quality)
        .encode_rgb(&rgb, width, height)
        .expect("the pattern encodes")
        .to_vec()
}

/// A YUYV camera picture of `width` x `height`, encoded as the V4L2 source does.
fn camera_picture(width: u16, height: u16) -> Vec<u8> {
    let stride = usize::from(width) * 2;
    let yuyv: Vec<u8> = (0..stride * usize::from(height))
        .map(|i| {
            if i % 2 == 0 {
                (16 + i % 200) as u8
            } else {
                128
            }
        })
        .collect();
    SoftwareEncoder::new(70)
        .encode_raw(&yuyv, RawLayout::Yuyv, width, height, stride)
        .expect("the picture encodes")
        .to_vec()
}

/// `jpeg` without its Huffman tables, as many webcams send frames.
fn without_tables(jpeg: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    let mut at = 2;
    while jpeg[at + 1] != 0xDA {
        let len = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        if jpeg[at + 1] != 0xC4 {
            out.extend_from_slice(&jpeg[at..at + 2 + len]);
        }
        at += 2 + len;
    }
    out.extend_from_slice(&jpeg[at..]);
    out
}

/// `jpeg` carrying `thumbnail` inside an APP1 segment, as cameras embed previews.
fn with_thumbnail(jpeg: &[u8], thumbnail: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&u16::try_from(thumbnail.len() + 2).unwrap().to_be_bytes());
    out.extend_from_slice(thumbnail);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// `jpeg` marked as Motion-JPEG (an APP0 `AVI1` segment) and without tables.
fn motion_jpeg(jpeg: &[u8]) -> Vec<u8> {
    let bare = without_tables(jpeg);
    let mut out = bare[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x07, b'A', b'V', b'I', b'1', 0x00]);
    out.extend_from_slice(&bare[2..]);
    out
}

/// Where the start-of-scan segment of `jpeg` ends: its headers are the bytes before.
fn headers_end(jpeg: &[u8]) -> usize {
    let mut at = 2;
    loop {
        let marker = jpeg[at + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        at += 2 + len;
        if marker == 0xDA {
            return at;
        }
    }
}

/// A sequence for the `jpeg_inspector` target: a separator byte that `jpeg` lacks, the
/// headers, then pictures that follow them (`1` + body) or stand alone (`0` + picture).
fn picture_sequence(jpeg: &[u8], others: &[&[u8]]) -> Vec<u8> {
    let separator = (0..=255u8)
        .find(|b| !jpeg.contains(b) && others.iter().all(|o| !o.contains(b)))
        .expect("a byte the pictures lack");
    let (headers, body) = jpeg.split_at(headers_end(jpeg));
    let mut items: Vec<Vec<u8>> = vec![headers.to_vec()];
    let follow = |rest: &[u8]| [&[1u8][..], rest].concat();
    items.push(follow(body));
    // Headers unchanged, the end-of-image marker missing, then trailing bytes after it.
    items.push(follow(&body[..body.len() - 2]));
    items.push(follow(&[body, &[0, 0]].concat()));
    for other in others {
        items.push([&[0u8][..], other].concat());
    }
    items.push(follow(body));
    let mut out = vec![separator];
    out.extend_from_slice(&items.join(&separator));
    out
}

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = Path::new("corpus").join(target);
    fs::create_dir_all(&dir).expect("corpus directory");
    fs::write(dir.join(name), data).expect("seed written");
}

fn main() {
    let small = picture(16, 16, 80);
    let wide = picture(48, 16, 30);
    let camera = camera_picture(32, 16);
    let thumb = with_thumbnail(&wide, &small);

    // jpeg: single pictures, as sources and drivers hand them over.
    write("jpeg", "small.jpg", &small);
    write("jpeg", "wide-low-quality.jpg", &wide);
    write("jpeg", "camera-yuyv.jpg", &camera);
    write("jpeg", "thumbnail.jpg", &thumb);
    write("jpeg", "no-tables.jpg", &without_tables(&camera));
    write("jpeg", "motion-jpeg.jpg", &motion_jpeg(&small));
    let mut padded = without_tables(&small);
    padded.extend_from_slice(&[0; 40]);
    write("jpeg", "no-tables-padded.jpg", &padded);

    // jpeg_inspector: runs of pictures sharing headers, broken by others.
    write(
        "jpeg_inspector",
        "small-then-camera.seq",
        &picture_sequence(&small, &[&camera]),
    );
    write(
        "jpeg_inspector",
        "camera-then-thumbnail.seq",
        &picture_sequence(&camera, &[&thumb, &without_tables(&camera)]),
    );

    // splitter: a byte for the size cap (0: default), a byte for how reads are cut,
    // then the stream.
    let stream = |cap: u8, seed: u8, parts: &[&[u8]]| {
        let mut out = vec![cap, seed];
        for p in parts {
            out.extend_from_slice(p);
        }
        out
    };
    write(
        "splitter",
        "three-frames.mjpg",
        &stream(0, 1, &[&small, &camera, &small]),
    );
    write(
        "splitter",
        "garbage-and-truncation.mjpg",
        &stream(
            0,
            2,
            &[
                b"--boundary\r\n\r\n",
                &small[..200],
                &wide,
                b"\r\n",
                &camera[..50],
            ],
        ),
    );
    write(
        "splitter",
        "thumbnail-byte-reads.mjpg",
        &stream(0, 0, &[&thumb, &small]),
    );
    write(
        "splitter",
        "over-the-cap.mjpg",
        &stream(40, 3, &[&wide, &small, &thumb]),
    );
    let mut corrupt = camera.clone();
    corrupt[30] ^= 0x55;
    write(
        "splitter",
        "corrupt-and-bare.mjpg",
        &stream(
            0,
            6,
            &[&corrupt, &without_tables(&small), &[0xFF, 0xFF, 0xD8]],
        ),
    );

    // routes: request lines as clients send them.
    for (name, line) in [
        ("root", "GET / HTTP/1.1"),
        ("page", "GET /index.html HTTP/1.1"),
        ("stream", "GET /stream.mjpg HTTP/1.1"),
        (
            "stream-advance",
            "GET /stream.mjpg?advance_headers=1 HTTP/1.1",
        ),
        (
            "action-stream",
            "GET /?action=stream&advance_headers HTTP/1.0",
        ),
        ("action-snapshot", "HEAD /?action=snapshot HTTP/1.1"),
        ("action-unknown", "GET /?action=reboot HTTP/1.1"),
        ("snapshot", "GET /snapshot.jpg?t=1700000000 HTTP/1.1"),
        ("status", "GET /status.json HTTP/1.1"),
        ("favicon", "GET /favicon.ico HTTP/1.1"),
        ("post", "POST /status HTTP/1.1"),
        ("controls", "POST /controls HTTP/1.1"),
        ("option", "GET /option?brightness=10 HTTP/1.1"),
        ("traversal", "GET /../../etc/passwd HTTP/1.1"),
        ("encoded", "GET /stream%2Emjpg?advance_headers=yes HTTP/1.1"),
    ] {
        write("routes", name, line.as_bytes());
    }

    // controls_json: POST /controls bodies and saved settings files, good and bad.
    for (name, body) in [
        (
            "saved",
            r#"{"@camera":"test pattern","brightness":-20,"pattern":"Grey"}"#,
        ),
        (
            "spec",
            r#"{"brightness":200,"power_line_frequency":"60 Hz","white_balance_automatic":false}"#,
        ),
        ("empty", "{}"),
        ("blanks", " \t\r\n{ \"a\" :\n-1.5e+3 , \"b\":true}\n"),
        ("escapes", r#"{"a\"\\\/\b\f\n\r\t":"\u00e9\ud83d\ude00"}"#),
        ("duplicate", r#"{"brightness":1,"brightness":2}"#),
        ("nested", r#"{"a":{"b":[1]}}"#),
        (
            "numbers",
            r#"{"a":0,"b":-0,"c":1E-7,"d":123456789012345678901234567890}"#,
        ),
        ("null", r#"{"a":null}"#),
    ] {
        write("controls_json", name, body.as_bytes());
    }

    // webrtc_json: camera-streamer's WebRTC messages (POST /webrtc), good and bad.
    let id = "0123456789abcdef0123456789abcdef";
    let offer = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/webrtc/chromium-156-whep-offer.sdp"
    ))
    .unwrap();
    let mut offer_json = String::from(r#"{"type":"offer","sdp":"#);
    picam_stream::json::string(&mut offer_json, &offer);
    offer_json.push('}');
    for (name, body) in [
        (
            "request",
            r#"{"type":"request","res":null,"iceServers":[[{"urls":["stun:x"]}]]}"#.to_string(),
        ),
        ("offer", offer_json),
        (
            "answer",
            format!(r#"{{"type":"answer","id":"{id}","sdp":"v=0\r\n"}}"#),
        ),
        (
            "candidates",
            format!(
                r#"{{"type":"remote_candidate","id":"{id}","candidates":[{{"candidate":"candidate:1 1 udp 2122260223 192.168.1.5 51000 typ host","sdpMid":"0"}},{{"candidate":""}},"a=candidate:2 1 udp 1 10.0.0.2 9 typ host",null]}}"#
            ),
        ),
        ("unknown", r#"{"type":"dance"}"#.to_string()),
        (
            "bad_id",
            r#"{"type":"answer","id":"../x","sdp":"v=0"}"#.to_string(),
        ),
        ("deep", format!("{}{}", "[".repeat(20), "]".repeat(20))),
    ] {
        write("webrtc_json", name, body.as_bytes());
    }

    // rpicam_listing: the picture size (two little-endian u16) and rate asked, then
    // the listings of the modules in tests/fixtures/pi.
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/pi");
    for module in ["ov5647", "imx219", "imx708", "imx477", "imx296"] {
        let listing = std::fs::read(format!("{fixtures}/list-cameras-{module}.txt")).unwrap();
        let mut data = vec![0x80, 0x02, 0xe0, 0x01, 30];
        data.extend_from_slice(&listing);
        write("rpicam_listing", module, &data);
    }

    // http_head: a control byte (limit and piece size), then what a client sends.
    for (name, bytes) in [
        ("get", &b"\x05GET /status HTTP/1.1\r\nHost: pi\r\n\r\n"[..]),
        (
            "pipelined",
            b"\x0dGET /stream.mjpg HTTP/1.1\r\nHost: pi\r\n\r\nGET /status HTTP/1.1\r\n\r\n",
        ),
        ("http2", b"\x03PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        (
            "lengths",
            b"\x15POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        ),
        (
            "auth",
            b"\x02GET / HTTP/1.0\nAuthorization: Basic YTpi\nConnection: keep-alive\n\n",
        ),
    ] {
        write("http_head", name, bytes);
    }

    // config: NUL-separated items; byte 1 then an index sets a PICAM_* variable.
    for (name, items) in [
        ("defaults", &[][..]),
        (
            "flags",
            &[
                "--listen",
                "127.0.0.1:8080",
                "--size",
                "1280x720",
                "--fps",
                "15",
            ][..],
        ),
        (
            "inline",
            &[
                "--quality=60",
                "--max-clients=0",
                "--source=file:/tmp/a.mjpg",
            ][..],
        ),
        (
            "exec",
            &["--source", "exec:rpicam-vid -t 0 --codec mjpeg -o -"][..],
        ),
        (
            "ipv6",
            &["--listen", "[::]:9000", "--source", "v4l2:/dev/video0"][..],
        ),
        (
            "env",
            &["\u{1}\u{3}20", "\u{1}\u{2}640x480", "--fps", "5"][..],
        ),
        (
            "env-source",
            &["\u{1}\u{1}libcamera:0", "\u{1}\u{0}8000"][..],
        ),
        ("bad-size", &["--size", "8x8"][..]),
        ("missing-value", &["--quality"][..]),
        ("help", &["--source", "test", "-h"][..]),
        ("unknown", &["--bogus", "1"][..]),
    ] {
        write("config", name, items.join("\0").as_bytes());
    }

    // authorization: header values as clients send them (the target also reads each
    // one as the bytes of `user:password`).
    for (name, value) in [
        ("basic", "Basic YW5uOnNlY3JldA=="),
        ("lower-case", "basic YW5uOnNlY3JldA=="),
        ("blanks", "  BASIC   YW5uOnBhOnNz  "),
        ("empty-password", "Basic YW5uOg=="),
        ("no-colon", "Basic YW5u"),
        ("not-base64", "Basic !!!"),
        ("not-utf8", "Basic /w=="),
        ("bearer", "Bearer abc.def"),
        ("scheme-only", "Basic"),
        ("pair", "ann:s3cret-pw"),
    ] {
        write("authorization", name, value.as_bytes());
    }

    // auth_file: USER:HASH lines, comments and the mistakes people make.
    let bcrypt = "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
    let sha512 = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
    let sha256 = "$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA";
    let rounds = "$6$rounds=10000$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
    for (name, text) in [
        (
            "kinds",
            format!("# who may watch\n\nann:{bcrypt}\nbob:{sha512}\ncid:{sha256}\ndee:{rounds}\n"),
        ),
        (
            "crlf",
            format!("ann:{bcrypt}\r\n# note\r\nbob:{sha256}\r\n"),
        ),
        ("twice", format!("ann:{bcrypt}\nann:{sha512}\n")),
        ("md5", "ann:$1$abc$defghijklmnop\n".to_string()),
        ("plain", "ann:secret\n".to_string()),
        ("no-hash", "ann\n".to_string()),
        (
            "bad-rounds",
            format!("ann:$6$rounds=12$saltsalt${}\n", &sha512[12..]),
        ),
        (
            "regression-split-character",
            format!("ann:$2x\u{e9}{}\n", "a".repeat(55)),
        ),
    ] {
        write("auth_file", name, text.as_bytes());
    }
    // mdns: a byte for the querier's port (bit 2: legacy) and the interface's addresses
    // (bits 0-1), then a packet as browsers and resolvers send them.
    let udp = |choice: u8, packet: &[u8]| [&[choice][..], packet].concat();
    let picam = Identity::new("picam", 8000);
    write(
        "mdns",
        "browse-http",
        &udp(0, &query(0, &[("_http._tcp.local", TYPE_PTR)])),
    );
    write(
        "mdns",
        "host-a-aaaa",
        &udp(
            2,
            &query(0, &[("picam.local", TYPE_A), ("picam.local", TYPE_AAAA)]),
        ),
    );
    write(
        "mdns",
        "legacy-any",
        &udp(6, &query(0x1234, &[("picam.local", TYPE_ANY)])),
    );
    write(
        "mdns",
        "instance-srv-txt",
        &udp(
            1,
            &query(
                7,
                &[
                    ("picam._http._tcp.local", TYPE_SRV),
                    ("picam._http._tcp.local", TYPE_TXT),
                ],
            ),
        ),
    );
    write(
        "mdns",
        "service-types",
        &udp(0, &query(0, &[("_services._dns-sd._udp.local", TYPE_PTR)])),
    );
    let mut known = Writer::new(0, 0);
    known.question(&Question {
        name: picam.service.clone(),
        qtype: TYPE_PTR,
        class: CLASS_IN,
        unicast_response: true,
    });
    known.answer(&Record {
        name: picam.service.clone(),
        rtype: TYPE_PTR,
        class: CLASS_IN,
        cache_flush: false,
        ttl: 4500,
        data: RData::Ptr(picam.instance.clone()),
    });
    write("mdns", "known-answer", &udp(0, &known.finish()));
    let other = Addresses {
        v4: vec![Ipv4Addr::new(192, 0, 2, 99)],
        v6: vec![],
    };
    write(
        "mdns",
        "conflicting-announcement",
        &udp(0, &announcement(&picam, &other, false)),
    );

    // isolate_pipe: a byte for how reads are cut, then what a source process sends.
    let pipe = |seed: u8, messages: &[Message<'_>]| {
        let mut out = vec![seed];
        for m in messages {
            m.write_to(&mut out).expect("written to memory");
        }
        out
    };
    write(
        "isolate_pipe",
        "start-and-frames",
        &pipe(
            1,
            &[
                Message::Encoder("software (jpeg-encoder)".into()),
                Message::Frame(&small),
                Message::Alive,
                Message::Frame(&camera),
            ],
        ),
    );
    write(
        "isolate_pipe",
        "problem-and-drops",
        &pipe(
            2,
            &[
                Message::Problem("cannot open /dev/video0: No such device".into()),
                Message::Dropped(3),
                Message::Problem("".into()),
                Message::Frame(&corrupt),
            ],
        ),
    );
    let mut cut = pipe(0, &[Message::Alive, Message::Frame(&wide)]);
    cut.truncate(cut.len() - 10);
    write("isolate_pipe", "cut-short", &cut);

    // isolate_controls: a byte choosing the reader (0 description, 1 request, 2 answer),
    // then what the server or its source process sends.
    let pattern = Description {
        number: 7,
        identity: PatternControls::new().identity(),
        controls: Some(
            PatternControls::new()
                .list()
                .expect("the pattern lists its controls"),
        ),
    };
    let control = |name: &str, kind: ControlKind, value: i64, flags: (bool, bool)| ControlInfo {
        name: name.into(),
        label: name.replace('_', " "),
        kind,
        default: 0,
        value,
        read_only: flags.0,
        inactive: flags.1,
    };
    let webcam = Description {
        number: u64::MAX - 1,
        identity: "uvcvideo: HD Pro Webcam C920".into(),
        controls: Some(vec![
            control(
                "white_balance_automatic",
                ControlKind::Boolean,
                1,
                (false, false),
            ),
            control(
                "exposure_time_absolute",
                ControlKind::Integer {
                    min: 1,
                    max: 5000,
                    step: 1,
                },
                156,
                (false, true),
            ),
            control(
                "auto_exposure",
                ControlKind::Menu {
                    choices: vec![
                        (1, "Manual Mode".into()),
                        (3, "Aperture Priority Mode".into()),
                    ],
                },
                3,
                (false, false),
            ),
            control("focus_trigger", ControlKind::Button, 0, (true, false)),
        ]),
    };
    let seed = |which: u8, bytes: Vec<u8>| [vec![which], bytes].concat();
    write("isolate_controls", "pattern", &seed(0, pattern.to_bytes()));
    write("isolate_controls", "webcam", &seed(0, webcam.to_bytes()));
    let none = Description {
        number: 1,
        identity: String::new(),
        controls: None,
    };
    write("isolate_controls", "none", &seed(0, none.to_bytes()));
    let request = Request {
        id: 3,
        changes: vec![("brightness".into(), 40), ("pattern".into(), 1)],
    };
    write("isolate_controls", "request", &seed(1, request.to_bytes()));
    let applied = Answer {
        id: 3,
        outcome: Outcome::Applied(pattern.clone()),
    };
    write("isolate_controls", "applied", &seed(2, applied.to_bytes()));
    let refused = Answer {
        id: 4,
        outcome: Outcome::Refused("control 'contrast': 500 is out of range (0 to 200)".into()),
    };
    write("isolate_controls", "refused", &seed(2, refused.to_bytes()));
    let failed = Answer {
        id: 5,
        outcome: Outcome::Failed("VIDIOC_S_EXT_CTRLS: Input/output error".into()),
    };
    write("isolate_controls", "failed", &seed(2, failed.to_bytes()));
    write(
        "isolate_pipe",
        "controls",
        &pipe(
            3,
            &[
                Message::Controls(pattern),
                Message::Frame(&small),
                Message::Controls(none),
            ],
        ),
    );
}
