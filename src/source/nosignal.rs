//! The "no signal" picture: what viewers see while a source is broken, saying why.
//!
//! Every source shows the same picture when it loses its input (a camera unplugged, a
//! command that crashed or hung, standard input that ended, a file that vanished): a dark
//! frame with "NO SIGNAL", the reason and the time it was drawn. It has the size of the
//! last good frame, so a viewer's layout does not jump, and it is drawn again about once
//! a second while somebody watches, so its clock shows the server is alive.

use std::time::{Duration, Instant};

use super::font::{text_width, Canvas};
use super::FrameSink;
use crate::clock::Utc;
use crate::encoder::SoftwareEncoder;

/// How often the picture is drawn again while the problem lasts and somebody watches.
const REFRESH: Duration = Duration::from_secs(1);

/// Draws and encodes the picture at `width`x`height` with `why` under the title.
pub fn picture(
    width: u16,
    height: u16,
    why: &str,
    encoder: &mut SoftwareEncoder,
) -> Option<Vec<u8>> {
    let (w, h) = (width as usize, height as usize);
    let mut rgb = vec![24u8; w * h * 3];
    let mut c = Canvas {
        rgb: &mut rgb,
        width: w,
        height: h,
    };
    let scale = if w >= 640 { 4 } else { 2 };
    let title = "NO SIGNAL";
    c.text(
        w.saturating_sub(text_width(title, scale)) / 2,
        h / 3,
        scale,
        title,
        [255, 80, 80],
    );
    let small = (scale / 2).max(1);
    let max_chars = (w / (6 * small)).saturating_sub(2).max(1);
    // The reason, upper-cased (the font has no lower case), over as many lines as fit.
    let reason: Vec<char> = why.to_uppercase().chars().collect();
    let line_h = 10 * small;
    let mut y = h / 2;
    for line in reason.chunks(max_chars).take(3) {
        let line: String = line.iter().collect();
        c.text(small * 6, y, small, &line, [230, 230, 230]);
        y += line_h;
    }
    let clock = format!("{} UTC", Utc::now().time_of_day());
    c.text(small * 6, y + line_h / 2, small, &clock, [0, 255, 255]);
    encoder
        .encode_rgb(&rgb, width, height)
        .ok()
        .map(<[u8]>::to_vec)
}

/// Shows the picture through a sink and keeps it fresh while a source waits.
pub struct NoSignal {
    encoder: SoftwareEncoder,
    /// Size used before any good frame was seen.
    fallback: (u16, u16),
    shown_at: Option<Instant>,
    /// The problem [`NoSignal::retry`] last logged (empty: none since the source worked).
    last_logged: String,
}

impl NoSignal {
    pub fn new(quality: u8, fallback: (u16, u16)) -> NoSignal {
        NoSignal {
            encoder: SoftwareEncoder::new(quality),
            fallback,
            shown_at: None,
            last_logged: String::new(),
        }
    }

    /// Publishes the picture saying `why`.
    pub fn show(&mut self, sink: &mut FrameSink, why: &str) {
        let (w, h) = sink.last_size().unwrap_or(self.fallback);
        match picture(w, h, why, &mut self.encoder) {
            Some(jpeg) => sink.publish_placeholder(&jpeg, w, h),
            None => log::error!("cannot draw the no-signal picture at {w}x{h}"),
        }
        self.shown_at = Some(Instant::now());
    }

    /// Logs a new problem, records it for `/status` and shows the picture; a problem
    /// already reported (same text, no good frame since) is left alone.
    pub fn report(&mut self, sink: &mut FrameSink, why: &str) {
        if sink.stats().error().as_deref() == Some(why) {
            return;
        }
        log::warn!("{why}");
        // The picture first: whoever sees the problem in /status finds it published.
        self.show(sink, why);
        sink.stats().set_error(Some(why.to_string()));
    }

    /// A camera source's failed attempt to capture: logs `problem` unless it repeats the
    /// last one, shows the picture, records the problem for `/status`, and waits `pause`
    /// before the next attempt.
    pub fn retry(&mut self, sink: &mut FrameSink, problem: &str, pause: Duration) {
        if problem != self.last_logged {
            log::warn!("{problem}; trying again");
            self.last_logged = problem.to_string();
        }
        self.show(sink, problem);
        sink.stats().set_error(Some(problem.to_string()));
        self.wait(sink, problem, pause);
    }

    /// The source works again: true if [`NoSignal::retry`] had a problem to forget.
    pub fn recovered(&mut self) -> bool {
        !std::mem::take(&mut self.last_logged).is_empty()
    }

    /// Waits `total` (less if the server stops), drawing the picture again about once a
    /// second while somebody watches.
    pub fn wait(&mut self, sink: &mut FrameSink, why: &str, total: Duration) {
        let end = Instant::now() + total;
        while !sink.stopping() {
            if Instant::now() >= end {
                return;
            }
            self.refresh(sink, why);
            std::thread::sleep((end - Instant::now().min(end)).min(Duration::from_millis(100)));
        }
    }

    /// Draws the picture again if it is about a second old and somebody watches.
    pub fn refresh(&mut self, sink: &mut FrameSink, why: &str) {
        let due = self.shown_at.is_none_or(|t| Instant::now() >= t + REFRESH);
        if due && sink.wanted(Duration::ZERO) {
            self.show(sink, why);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picture_encodes_at_the_asked_size_with_a_long_reason() {
        let mut enc = SoftwareEncoder::new(80);
        let long =
            "`a-command --with many --arguments` sent no frame for 5 s; stopped it".repeat(3);
        for (w, h) in [(320, 240), (640, 480), (16, 16)] {
            let jpeg = picture(w, h, &long, &mut enc).unwrap();
            let d = crate::jpeg::inspect(&jpeg).unwrap();
            assert_eq!((d.width, d.height), (w, h));
        }
    }
}
