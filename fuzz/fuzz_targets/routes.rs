//! Request routing and query parsing against arbitrary request lines.
//!
//! Input: a request line, `METHOD URL [VERSION]`, as a client could send it. Checked:
//!
//! * nothing panics;
//! * only `GET` and `HEAD` are answered, `POST` on the routes that take it
//!   (`/controls`, `/controls/reset`, `/option`, `/whep`, `/webrtc`) and `DELETE` on a
//!   WebRTC session (`/whep/ID`) or a path that names nothing (404); every other method
//!   gets 405, and a reset and a WHEP offer are answered to `POST` only;
//! * every URL maps to one of the known routes only through one of the known paths, and
//!   to 404 otherwise (so no path is ever looked up anywhere);
//! * the route depends on the path and on the `action` and `advance_headers` query
//!   parameters only: other parameters, added anywhere, change nothing;
//! * `query_value` returns a part of the query it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use picam_stream::http::routes::{method, query_value, route, takes, takes_post, Method, Route};

/// Every path the server answers, and the routes each may give.
fn expected_for_path(path: &str, query: &str) -> Option<Route> {
    let advance = matches!(
        query_value(query, "advance_headers"),
        Some("1" | "true" | "yes" | "")
    );
    Some(match path {
        "/" => match query_value(query, "action") {
            None => Route::RedirectToPage,
            Some("stream") => Route::Stream { advance },
            Some("snapshot") => Route::Snapshot,
            Some(_) => Route::UnknownAction,
        },
        "/index.html" => Route::Page,
        "/stream.mjpg" | "/stream" => Route::Stream { advance },
        "/stream.mp4" => Route::Mp4Stream,
        "/snapshot.jpg" | "/snapshot" => Route::Snapshot,
        "/status" | "/status.json" => Route::Status,
        "/favicon.ico" => Route::Favicon,
        "/controls" => Route::Controls,
        "/controls/reset" => Route::ResetControls,
        "/option" => Route::SetOption,
        "/whep" => Route::Whep,
        "/webrtc" => Route::WebrtcJson,
        // A session: one non-empty segment after /whep/.
        p if p.len() > "/whep/".len() && p.starts_with("/whep/") && p.matches('/').count() == 2 => {
            Route::WhepSession
        }
        _ => return None,
    })
}

/// The HTTP status the server answers a method and route with, before any state (a
/// missing frame, the client limit) is considered.
fn status(m: Method, r: Route) -> u16 {
    match (m, r) {
        (Method::Other, _) => 405,
        (Method::Post, r) if !takes_post(r) => 405,
        (Method::Delete, Route::WhepSession | Route::NotFound) => 404,
        (Method::Delete, _) => 405,
        (Method::Head, Route::SetOption) => 405,
        (Method::Get | Method::Head, Route::ResetControls | Route::Whep | Route::WhepSession) => {
            405
        }
        (_, Route::RedirectToPage) => 301,
        (_, Route::Favicon) => 204,
        (_, Route::NotFound | Route::UnknownAction) => 404,
        _ => 200,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let mut words = line.split(' ');
    let name = words.next().unwrap_or("");
    let url = words.next().unwrap_or("");

    let m = method(name);
    assert_eq!(m == Method::Get, name == "GET");
    assert_eq!(m == Method::Head, name == "HEAD");
    assert_eq!(m == Method::Post, name == "POST");
    assert_eq!(m == Method::Delete, name == "DELETE");

    let r = route(url);
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    match expected_for_path(path, query) {
        Some(want) => assert_eq!(r, want, "{url:?}"),
        None => assert_eq!(r, Route::NotFound, "{url:?} reached a route"),
    }
    let code = status(m, r);
    assert_eq!(code == 405, !takes(r, m), "{name} {url:?}");
    assert!(matches!(code, 200 | 204 | 301 | 404 | 405));

    // Other parameters, before or after the query, do not matter.
    let mut noise = String::from("x");
    for w in words {
        noise.push_str(w);
    }
    let noise: String = noise.chars().filter(|c| !"&=?".contains(*c)).collect();
    if noise != "action" && noise != "advance_headers" && query_value(query, &noise).is_none() {
        let other = format!("{noise}=1");
        let before = format!("{path}?{other}&{query}");
        let after = format!("{path}?{query}&{other}");
        assert_eq!(route(&before), r, "{before:?}");
        if url.contains('?') {
            assert_eq!(route(&after), r, "{after:?}");
        }
    }

    for key in ["action", "advance_headers", "", name] {
        if let Some(v) = query_value(query, key).filter(|v| !v.is_empty()) {
            let start = (v.as_ptr() as usize).wrapping_sub(query.as_ptr() as usize);
            assert!(
                start <= query.len() && query[start..].starts_with(v),
                "{v:?} is not a part of {query:?}"
            );
            assert!(query[..start].ends_with('='), "{v:?} does not follow a '='");
        }
    }
});
