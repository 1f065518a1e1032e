//! Option parsing against arbitrary command lines and environments.
//!
//! Input: items separated by NUL bytes. An item starting with byte 1 sets an environment
//! variable: its next byte picks one of the `PICAM_*` names, the rest is the value.
//! Every other item is a command-line argument. Neither needs to be UTF-8. Checked:
//!
//! * nothing panics, and every error is one non-empty line;
//! * every accepted configuration is within the documented ranges;
//! * an accepted configuration written back as flags reads back the same;
//! * a value given through its variable or through its flag gives the same outcome.
#![no_main]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use libfuzzer_sys::fuzz_target;
use picam_stream::config::{parse, Action, Config, ConfigError};

/// Variables and the flag each stands for.
const OPTIONS: &[(&str, &str)] = &[
    ("PICAM_LISTEN", "--listen"),
    ("PICAM_SOURCE", "--source"),
    ("PICAM_SIZE", "--size"),
    ("PICAM_FPS", "--fps"),
    ("PICAM_QUALITY", "--quality"),
    ("PICAM_MAX_CLIENTS", "--max-clients"),
];

fn run(args: &[OsString], env: &BTreeMap<&str, OsString>) -> Result<Action, ConfigError> {
    parse(args.iter().cloned(), |name| env.get(name).cloned())
}

/// The fields this target knows, so that options added later do not break it.
fn known(c: &Config) -> impl PartialEq + std::fmt::Debug {
    (
        c.listen,
        c.source.clone(),
        c.width,
        c.height,
        c.fps,
        c.quality,
        c.max_clients,
    )
}

fn as_flags(c: &Config) -> Vec<OsString> {
    [
        ("--listen", c.listen.to_string()),
        ("--source", c.source.to_string()),
        ("--size", format!("{}x{}", c.width, c.height)),
        ("--fps", c.fps.to_string()),
        ("--quality", c.quality.to_string()),
        ("--max-clients", c.max_clients.to_string()),
    ]
    .into_iter()
    .flat_map(|(f, v)| [OsString::from(f), OsString::from(v)])
    .collect()
}

fn outcome(r: &Result<Action, ConfigError>) -> Option<String> {
    match r {
        Ok(Action::Run(c)) => Some(format!("run {:?}", known(c))),
        Ok(other) => Some(format!("{other:?}")),
        Err(_) => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut args = Vec::new();
    let mut env = BTreeMap::new();
    for item in data.split(|&b| b == 0) {
        match item {
            [1, pick, value @ ..] => {
                let (name, _) = OPTIONS[usize::from(*pick) % OPTIONS.len()];
                env.insert(name, OsString::from_vec(value.to_vec()));
            }
            _ => args.push(OsString::from_vec(item.to_vec())),
        }
    }

    let result = run(&args, &env);
    match &result {
        Err(ConfigError(message)) => {
            assert!(!message.is_empty());
            assert!(
                !message.contains(['\n', '\r']),
                "error message of more than one line: {message:?}"
            );
        }
        Ok(Action::Run(c)) => {
            assert!((16..=4096).contains(&c.width) && (16..=4096).contains(&c.height));
            assert!((1..=120).contains(&c.fps));
            assert!((1..=100).contains(&c.quality));
            assert!(c.max_clients <= 10_000);
            match run(&as_flags(c), &BTreeMap::new()) {
                Ok(Action::Run(again)) => assert_eq!(known(&again), known(c), "round trip"),
                other => panic!("{:?} does not read back: {other:?}", as_flags(c)),
            }
        }
        Ok(_) => {}
    }

    // The same values as flags ahead of the arguments.
    let mut flags: Vec<OsString> = OPTIONS
        .iter()
        .filter_map(|(var, flag)| Some([OsString::from(flag), env.get(var)?.clone()]))
        .flatten()
        .collect();
    flags.extend(args.iter().cloned());
    assert_eq!(
        outcome(&run(&flags, &BTreeMap::new())),
        outcome(&result),
        "variables and flags disagree"
    );
});
