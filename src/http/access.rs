//! Who may ask: CORS preflights, and the HTTP Basic check of every other request when
//! users are configured. Credentials are checked on the connection's own thread, so a
//! slow hash, or the pause after a wrong password, holds up no one else; the auth module
//! decides whose check goes first and how many run at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use super::head::RequestHead;
use super::reply::{Body, Response};
use super::AppState;
use crate::auth::{Precheck, Verdict};
use crate::ratelog::{RateLimit, DEFAULT_INTERVAL};

/// Wrong or missing credentials: ask for them.
pub fn unauthorized() -> Response {
    Response::text(
        401,
        "authorization required: this camera lets in only its users\n".into(),
    )
    .with_header("WWW-Authenticate", AUTH_CHALLENGE)
}

/// The `WWW-Authenticate` challenge of every `401`.
pub const AUTH_CHALLENGE: &str = "Basic realm=\"picam-stream\", charset=\"UTF-8\"";

/// One line about wrong passwords per interval, however many guessers there are.
static WRONG_PASSWORD: RateLimit = RateLimit::new(DEFAULT_INTERVAL);

/// How long the answer to wrong credentials is held back.
const FAILURE_DELAY: Duration = Duration::from_secs(1);

/// Refusals held back at once; more are sent at once.
const MAX_PAUSING: usize = 64;

/// True for a CORS preflight, answered only when `--allow-origin` is set.
pub fn is_preflight(head: &RequestHead, state: &AppState) -> bool {
    state.allow_origin.is_some() && head.method == "OPTIONS"
}

/// Answers a preflight: headers only, no credentials asked (browsers send none).
pub fn preflight() -> Response {
    Response::new(204, Body::Empty)
        .with_header("Access-Control-Allow-Methods", "GET, HEAD, POST, DELETE")
        .with_header(
            "Access-Control-Allow-Headers",
            "Authorization, Content-Type",
        )
        .with_header("Access-Control-Max-Age", "600")
}

/// Lets the request through when no users are configured or its credentials are
/// right; otherwise gives the answer that refuses it (`401`, `429` or `503`).
pub fn admit(
    head: &RequestHead,
    peer: &str,
    ip: std::net::IpAddr,
    state: &AppState,
) -> Result<(), Response> {
    let Some(guard) = &state.guard else {
        return Ok(());
    };
    match guard.precheck(head.authorization.as_deref(), Some(ip)) {
        Precheck::Known => Ok(()),
        Precheck::Missing => Err(unauthorized()),
        Precheck::Throttled(wait) => {
            log::debug!("{peer} is held off after too many wrong passwords");
            Err(throttled(wait))
        }
        Precheck::Verify(presented) => match guard.check(&presented, Some(ip)) {
            Verdict::Accepted => Ok(()),
            Verdict::Refused => {
                crate::warn_limited!(
                    WRONG_PASSWORD,
                    "{peer} sent a wrong user name or password for {}",
                    printable(&head.target)
                );
                // On top of the hold-back in `check` (which makes every refusal take
                // as long as the slowest hash), a pause that slows guessing down.
                if let Some(_pausing) = Permit::take(&PAUSING, MAX_PAUSING) {
                    thread::sleep(FAILURE_DELAY);
                }
                Err(unauthorized())
            }
            Verdict::Throttled(wait) => Err(throttled(wait)),
            Verdict::Busy => {
                let body = "busy checking passwords; try again in a moment\n";
                Err(Response::text(503, body.into()).with_header("Retry-After", "1"))
            }
        },
    }
}

/// One line about changes refused as cross-site per interval.
static CROSS_SITE: RateLimit = RateLimit::new(DEFAULT_INTERVAL);

/// Why a request that changes the camera is refused, if it is: a browser made it for
/// a page of another site, which could otherwise turn the camera's controls from any
/// page its user opens (an `<img src="http://pi:8000/option?...">` is enough, and the
/// browser sends the camera's password with it). A page is the server's own when the
/// request's `Origin` names the host the request was sent to; `--allow-origin` names
/// one more (or, with `*`, any). Without `Origin`, a browser's `Sec-Fetch-Site` of
/// `cross-site` or `same-site` tells of a foreign page. Programs such as `curl` send
/// neither and are let through: they are what credentials are for.
pub fn foreign_page(head: &RequestHead, peer: &str, state: &AppState) -> Option<String> {
    let allowed = state.allow_origin.as_deref();
    let asker = match head.origin.as_deref() {
        Some(origin) => {
            let own = head.host.as_deref().is_some_and(|host| {
                ["http://", "https://"].iter().any(|scheme| {
                    origin
                        .strip_prefix(scheme)
                        .is_some_and(|h| h.eq_ignore_ascii_case(host))
                })
            });
            let listed = allowed.is_some_and(|a| a == "*" || a.eq_ignore_ascii_case(origin));
            if own || listed {
                return None;
            }
            printable(origin)
        }
        None => match head.fetch_site.as_deref() {
            Some(site @ ("cross-site" | "same-site")) if allowed.is_none() => {
                format!("a {site} page")
            }
            _ => return None,
        },
    };
    crate::warn_limited!(
        CROSS_SITE,
        "{peer}: refused a change to the camera asked by {asker}, not this server's own page"
    );
    Some(format!(
        "refused: {asker} is not this server's own page and may not change the camera \
         (to let a page of another site change it, start picam-stream with --allow-origin \
         naming that site)"
    ))
}

/// Too many wrong passwords from this address.
fn throttled(wait: Duration) -> Response {
    let body = "too many wrong passwords from this address; try again later\n";
    Response::text(429, body.into()).with_header("Retry-After", &(wait.as_secs() + 1).to_string())
}

/// A request target as it may appear in the log: at most 200 characters, control
/// characters replaced.
pub fn printable(target: &str) -> String {
    let mut out: String = target
        .chars()
        .take(200)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if target.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// Refusals being held back now (see [`MAX_PAUSING`]).
static PAUSING: AtomicUsize = AtomicUsize::new(0);

/// One of a bounded number of concurrent jobs; released when dropped.
struct Permit(&'static AtomicUsize);

impl Permit {
    fn take(count: &'static AtomicUsize, max: usize) -> Option<Permit> {
        count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        Some(Permit(count))
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
