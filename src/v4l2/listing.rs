//! What `--list-devices` prints: every V4L2 capture device with its formats, sizes and
//! frame rates, and its controls with the values they have now.

use super::controls;
use super::device::{nodes, Device, Sizes};
use super::sys::fourcc_name;

/// Human-readable list of capture devices, their formats, sizes and rates, and their
/// controls with the values they have now.
pub fn describe_all() -> String {
    let mut out = String::new();
    for path in nodes() {
        let dev = match Device::open(&path) {
            Ok(d) => d,
            Err(e) => {
                out.push_str(&format!("{}: cannot open: {e}\n", path.display()));
                continue;
            }
        };
        if !dev.capability().is_capture() {
            continue;
        }
        out.push_str(&format!("{}\n", dev.describe()));
        for f in dev.formats() {
            out.push_str(&format!(
                "  {} ({})\n",
                fourcc_name(f.fourcc),
                f.description
            ));
            for s in dev.sizes(f.fourcc) {
                match s {
                    Sizes::Discrete(w, h) => {
                        let rates = dev.frame_rates(f.fourcc, w, h);
                        let rates: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
                        out.push_str(&format!("    {w}x{h} at {} fps\n", rates.join(", ")));
                    }
                    Sizes::Range { min, max, step } => out.push_str(&format!(
                        "    {}x{} to {}x{} in steps of {}x{}\n",
                        min.0, min.1, max.0, max.1, step.0, step.1
                    )),
                }
            }
        }
        match controls::list(dev.fd()) {
            Ok(controls) if controls.is_empty() => out.push_str("  controls: none\n"),
            Ok(controls) => {
                out.push_str("  controls:\n");
                out.push_str(&controls::describe(&controls, "    "));
            }
            Err(e) => out.push_str(&format!("  controls: cannot read them: {e}\n")),
        }
    }
    if out.is_empty() {
        out.push_str("no V4L2 capture devices found\n");
    }
    out
}
