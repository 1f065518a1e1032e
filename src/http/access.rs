//! Who may ask: CORS preflights, and the HTTP Basic check of every other request when
//! users are configured. Credentials seen for the first time are verified on a thread of
//! their own, so that a slow hash, or the pause after a wrong password, never holds up
//! the threads that take requests from `tiny_http`.

use std::io::Cursor;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tiny_http::{Request, Response, StatusCode};

use super::reply::{header, peer_name, send, text};
use super::routes::Method;
use super::AppState;
use crate::auth::{Precheck, Presented};

/// What answers an admitted request.
pub type Answer = fn(Request, &Arc<AppState>, Method);

/// Stack of a verification thread: a hash needs a few kilobytes, an answer little more.
const AUTH_STACK: usize = 256 * 1024;

/// Wrong or missing credentials: ask for them.
pub fn unauthorized() -> Response<Cursor<Vec<u8>>> {
    text(
        401,
        "authorization required: this camera lets in only its users\n".into(),
    )
    .with_header(header("WWW-Authenticate", AUTH_CHALLENGE))
}

/// The `WWW-Authenticate` challenge of every `401`.
pub const AUTH_CHALLENGE: &str = "Basic realm=\"picam-stream\", charset=\"UTF-8\"";

/// How long the answer to wrong credentials is held back (on a thread of its own).
const FAILURE_DELAY: Duration = Duration::from_secs(1);

/// Verifications running at once; more get `503`.
const MAX_VERIFYING: usize = 4;

/// Refusals held back at once (each a sleeping thread); more are sent at once.
const MAX_PAUSING: usize = 64;

/// True for a CORS preflight, answered only when `--allow-origin` is set.
pub fn is_preflight(request: &Request, state: &AppState) -> bool {
    state.allow_origin.is_some() && request.method().as_str() == "OPTIONS"
}

/// Answers a preflight: headers only, no credentials asked (browsers send none).
pub fn preflight(request: Request, state: &AppState) {
    let response = Response::empty(StatusCode(204))
        .with_header(header("Access-Control-Allow-Methods", "GET, HEAD"))
        .with_header(header("Access-Control-Allow-Headers", "Authorization"))
        .with_header(header("Access-Control-Max-Age", "600"))
        .with_header(header("Content-Length", "0"));
    send(request, response, state)
}

/// Lets `request` through to `answer` when no users are configured or its credentials
/// are right; otherwise answers it with `401`, `429` or `503`.
pub fn admit(request: Request, state: &Arc<AppState>, method: Method, answer: Answer) {
    let Some(guard) = &state.guard else {
        return answer(request, state, method);
    };
    let authorization = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .map(|h| h.value.as_str());
    let peer = request.remote_addr().map(|a| a.ip());
    match guard.precheck(authorization, peer) {
        Precheck::Known => answer(request, state, method),
        Precheck::Missing => send(request, unauthorized(), state),
        Precheck::Throttled(wait) => {
            log::debug!(
                "{} is held off after too many wrong passwords",
                peer_name(&request)
            );
            let body = "too many wrong passwords from this address; try again later\n";
            let response = text(429, body.into())
                .with_header(header("Retry-After", &(wait.as_secs() + 1).to_string()));
            send(request, response, state)
        }
        Precheck::Verify(presented) => {
            verify_then_answer(request, state, presented, method, answer)
        }
    }
}

/// Verifies credentials seen for the first time on a thread of its own, so that a slow
/// hash (or the pause after a wrong one) never holds up the request threads.
fn verify_then_answer(
    request: Request,
    state: &Arc<AppState>,
    presented: Presented,
    method: Method,
    answer: Answer,
) {
    let Some(permit) = Permit::take(&VERIFYING, MAX_VERIFYING) else {
        let body = "busy checking passwords; try again in a moment\n";
        let response = text(503, body.into()).with_header(header("Retry-After", "1"));
        return send(request, response, state);
    };
    let state2 = state.clone();
    let spawned = thread::Builder::new()
        .name("auth".into())
        .stack_size(AUTH_STACK)
        .spawn(move || {
            let state = state2;
            let Some(guard) = &state.guard else { return };
            let peer = request.remote_addr().map(|a| a.ip());
            if guard.verify(&presented, peer) {
                drop(presented);
                drop(permit);
                return answer(request, &state, method);
            }
            drop(presented);
            drop(permit);
            log::warn!(
                "{} sent a wrong user name or password for {}",
                peer_name(&request),
                request.url()
            );
            // The pause does not hold a verification slot; past a bound on pauses
            // waiting at once, the refusal goes out at once.
            if let Some(_pausing) = Permit::take(&PAUSING, MAX_PAUSING) {
                thread::sleep(FAILURE_DELAY);
            }
            send(request, unauthorized(), &state);
        });
    if let Err(e) = spawned {
        log::error!("cannot start a thread to check a password: {e}");
    }
}

/// Password checks running now (see [`MAX_VERIFYING`]).
static VERIFYING: AtomicUsize = AtomicUsize::new(0);

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
