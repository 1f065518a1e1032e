//! Option parsing against arbitrary command lines and environments.
//!
//! Input: items separated by NUL bytes. An item starting with byte 1 sets an environment
//! variable: its next byte picks one of the options' variables (all of them, as the
//! option table lists them), the rest is the value. Every other item is a command-line
//! argument. Neither needs to be UTF-8. Checked:
//!
//! * nothing panics, and every error is one non-empty line;
//! * every accepted configuration is within the documented ranges;
//! * an accepted configuration's main settings written back as flags read back the same;
//! * values given through the variables or through their flags give the same outcome:
//!   both refused, or the same configuration.
#![no_main]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use libfuzzer_sys::fuzz_target;
use picam_stream::config::{
    option_variables, parse, switch_word, Action, Config, ConfigError, FlagForm,
};
use picam_stream::source::SourceSpec;

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

/// What a parse ends in, with the reason of a refusal left out (variables and flags
/// name the option differently).
fn outcome(r: Result<Action, ConfigError>) -> Option<Action> {
    r.ok()
}

/// `value` of the variable `var` written as its flag; `None` when no flag says it.
fn as_flag(flag: &str, form: FlagForm, value: &OsString) -> Option<Vec<OsString>> {
    match form {
        FlagForm::WithValue => {
            let mut arg = OsString::from(format!("{flag}="));
            arg.push(value);
            Some(vec![arg])
        }
        FlagForm::OnlyOn => match switch_word(value.to_str()?)? {
            true => Some(vec![OsString::from(flag)]),
            false => Some(Vec::new()),
        },
    }
}

fuzz_target!(|data: &[u8]| {
    let options: Vec<(&str, &str, FlagForm)> = option_variables().collect();
    let mut args = Vec::new();
    let mut env = BTreeMap::new();
    for item in data.split(|&b| b == 0) {
        match item {
            [1, pick, value @ ..] => {
                let (name, _, _) = options[usize::from(*pick) % options.len()];
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
            // Above 120 only where a camera module's sensor mode may allow it.
            let camera_module = matches!(
                c.source,
                SourceSpec::Auto | SourceSpec::Rpicam(_) | SourceSpec::Libcamera(_)
            );
            assert!((1..=if camera_module { 240 } else { 120 }).contains(&c.fps));
            assert!((1..=100).contains(&c.quality));
            assert!(c.max_clients <= 10_000);
            match run(&as_flags(c), &BTreeMap::new()) {
                Ok(Action::Run(again)) => assert_eq!(known(&again), known(c), "round trip"),
                other => panic!("{:?} does not read back: {other:?}", as_flags(c)),
            }
        }
        Ok(_) => {}
    }

    // The same values as flags ahead of the arguments, in the table's order (the order
    // variables are read in). Skipped when a value has no flag form: an `--only-on`
    // option's variable with a word that is no switch word.
    let mut flags = Vec::new();
    for (var, flag, form) in &options {
        if let Some(value) = env.get(var) {
            match as_flag(flag, *form, value) {
                Some(written) => flags.extend(written),
                None => return,
            }
        }
    }
    flags.extend(args.iter().cloned());
    assert_eq!(
        outcome(run(&flags, &BTreeMap::new())),
        outcome(result),
        "variables and flags disagree on {flags:?}"
    );
});
