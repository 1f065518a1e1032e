//! Maps a request's method and URL to what the server does with it.
//!
//! Pure functions of the request line, so that every path and query the server accepts
//! is listed, and tested, in one place. No path ever reaches the file system.

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/`: redirect to the page, as the classic script does.
    RedirectToPage,
    /// `/index.html`: the viewer page.
    Page,
    /// `/stream.mjpg` and aliases. `advance`: the browser-friendly wire format.
    Stream { advance: bool },
    /// `/stream.mp4`: the live fragmented MP4 (H.264).
    Mp4Stream,
    /// `/snapshot.jpg` and aliases: the newest frame.
    Snapshot,
    /// `/status`: JSON.
    Status,
    /// `/favicon.ico`: an empty answer rather than a logged 404 on every page load.
    Favicon,
    /// `/controls`: the camera's controls as JSON (`GET`), or changes to them (`POST`
    /// with a JSON object).
    Controls,
    /// `/controls/reset`: every control back to its default, the saved settings
    /// forgotten (`POST` only).
    ResetControls,
    /// `/option?name=value`: one control changed, in camera-streamer's form.
    SetOption,
    /// `/whep`: a WHEP client's SDP offer (`POST`, `application/sdp`) opens a WebRTC
    /// session.
    Whep,
    /// `/whep/ID`: a WebRTC session; `DELETE` ends it.
    WhepSession,
    /// `/webrtc`: camera-streamer's JSON signalling (`POST`); a browser's `GET` is sent
    /// to the page.
    WebrtcJson,
    /// Anything else.
    NotFound,
    /// `/?action=` with an action this server does not know.
    UnknownAction,
}

/// The request methods the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    /// Only where the route takes it ([`takes_post`]); elsewhere answered 405.
    Post,
    /// Only on a WebRTC session (`/whep/ID`), which it ends.
    Delete,
    /// Anything else: answered 405.
    Other,
}

/// Splits `url` into path and query, and finds the route.
pub fn route(url: &str) -> Route {
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, q),
        None => (url, ""),
    };
    match path {
        "/" => match query_value(query, "action") {
            None => Route::RedirectToPage,
            Some("stream") => Route::Stream {
                advance: wants_advance(query),
            },
            Some("snapshot") => Route::Snapshot,
            Some(_) => Route::UnknownAction,
        },
        "/index.html" => Route::Page,
        "/stream.mjpg" | "/stream" => Route::Stream {
            advance: wants_advance(query),
        },
        "/stream.mp4" => Route::Mp4Stream,
        "/snapshot.jpg" | "/snapshot" => Route::Snapshot,
        "/status" | "/status.json" => Route::Status,
        "/favicon.ico" => Route::Favicon,
        "/controls" => Route::Controls,
        "/controls/reset" => Route::ResetControls,
        "/option" => Route::SetOption,
        "/whep" => Route::Whep,
        "/webrtc" => Route::WebrtcJson,
        p if p
            .strip_prefix("/whep/")
            .is_some_and(|id| !id.is_empty() && !id.contains('/')) =>
        {
            Route::WhepSession
        }
        _ => Route::NotFound,
    }
}

/// Whether `route` answers `POST` (and reads its body).
pub fn takes_post(route: Route) -> bool {
    matches!(
        route,
        Route::Controls | Route::ResetControls | Route::SetOption | Route::Whep | Route::WebrtcJson
    )
}

/// Whether `method` is one `route` takes (else the answer is 405; see
/// [`allowed_methods`]).
pub fn takes(route: Route, method: Method) -> bool {
    match method {
        Method::Other => false,
        Method::Post => takes_post(route),
        // A DELETE names something to end: a path that names nothing is 404, as
        // for GET, not a method this path refuses.
        Method::Delete => matches!(route, Route::WhepSession | Route::NotFound),
        // What only changes takes no GET; a HEAD would change nothing, and answering
        // it without changing would say nothing of whether the change would be taken.
        Method::Get => !matches!(
            route,
            Route::ResetControls | Route::Whep | Route::WhepSession
        ),
        Method::Head => !matches!(
            route,
            Route::ResetControls | Route::SetOption | Route::Whep | Route::WhepSession
        ),
    }
}

/// The largest request body `route` reads; a longer one is answered 413. SDP offers
/// (`/whep`, `/webrtc`) run to a few kilobytes, and browsers with many codecs to more.
pub fn body_limit(route: Route) -> usize {
    match route {
        Route::Whep | Route::WebrtcJson => 64 * 1024,
        _ => super::controls::MAX_BODY,
    }
}

/// The methods `route` answers, as an `Allow` header lists them (a 405 names them):
/// `/controls/reset` only changes, so it takes only `POST`; `/option` takes no `HEAD`
/// (see [`changes_camera`]).
pub fn allowed_methods(route: Route) -> &'static str {
    match route {
        Route::ResetControls => "POST",
        Route::SetOption => "GET, POST",
        Route::Controls | Route::WebrtcJson => "GET, HEAD, POST",
        Route::Whep => "POST",
        Route::WhepSession => "DELETE",
        _ => "GET, HEAD",
    }
}

/// Whether `method` on `route` changes the camera: `POST /controls`,
/// `POST /controls/reset`, and `/option` by `GET` or `POST` (its `HEAD` is refused
/// before anything changes).
pub fn changes_camera(route: Route, method: Method) -> bool {
    match route {
        Route::Controls | Route::ResetControls => method == Method::Post,
        Route::SetOption => matches!(method, Method::Get | Method::Post),
        _ => false,
    }
}

/// True when a snapshot's query asks for a still at the camera's full resolution:
/// `full=1` (or `true`, `yes`, or the bare key).
pub fn wants_full(query: &str) -> bool {
    matches!(query_value(query, "full"), Some("1" | "true" | "yes" | ""))
}

/// True when the query asks for the advance-header stream format:
/// `advance_headers=1` (or `true`, `yes`, or the bare key).
fn wants_advance(query: &str) -> bool {
    matches!(
        query_value(query, "advance_headers"),
        Some("1" | "true" | "yes" | "")
    )
}

/// The value of `key` in an `a=b&c=d` query; a bare `key` yields `""`.
pub fn query_value<'q>(query: &'q str, key: &str) -> Option<&'q str> {
    query
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Reads a method name as sent in the request line.
pub fn method(name: &str) -> Method {
    match name {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "DELETE" => Method::Delete,
        _ => Method::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/"), Route::RedirectToPage);
        assert_eq!(route("/index.html"), Route::Page);
        assert_eq!(route("/stream.mjpg"), Route::Stream { advance: false });
        assert_eq!(
            route("/stream.mjpg?advance_headers=1"),
            Route::Stream { advance: true }
        );
        assert_eq!(
            route("/stream?x=1&advance_headers"),
            Route::Stream { advance: true }
        );
        assert_eq!(
            route("/stream.mjpg?advance_headers=0"),
            Route::Stream { advance: false }
        );
        assert_eq!(route("/stream.mp4"), Route::Mp4Stream);
        assert_eq!(route("/stream.mp4?t=1"), Route::Mp4Stream);
        assert_eq!(route("/?action=stream"), Route::Stream { advance: false });
        assert_eq!(route("/?action=snapshot"), Route::Snapshot);
        assert_eq!(route("/?action=reboot"), Route::UnknownAction);
        assert_eq!(route("/snapshot.jpg"), Route::Snapshot);
        assert_eq!(route("/snapshot?t=123"), Route::Snapshot);
        assert!(wants_full("full=1") && wants_full("t=5&full") && wants_full("full=yes"));
        assert!(!wants_full("full=0") && !wants_full("t=1") && !wants_full("fullness=1"));
        assert_eq!(route("/status"), Route::Status);
        assert_eq!(route("/controls"), Route::Controls);
        assert_eq!(route("/controls/reset"), Route::ResetControls);
        assert_eq!(route("/controls/reset?x=1"), Route::ResetControls);
        assert_eq!(route("/controls/reset/"), Route::NotFound);
        assert_eq!(allowed_methods(Route::ResetControls), "POST");
        assert_eq!(allowed_methods(Route::SetOption), "GET, POST");
        assert_eq!(allowed_methods(Route::Controls), "GET, HEAD, POST");
        assert_eq!(allowed_methods(Route::Snapshot), "GET, HEAD");
        // Every route that takes POST lists it.
        for r in [
            Route::Controls,
            Route::ResetControls,
            Route::SetOption,
            Route::Status,
        ] {
            assert_eq!(takes_post(r), allowed_methods(r).contains("POST"), "{r:?}");
        }
        assert!(takes_post(Route::ResetControls));
        assert_eq!(route("/option?brightness=10"), Route::SetOption);
        assert!(takes_post(Route::Controls) && takes_post(Route::SetOption));
        assert!(changes_camera(Route::Controls, Method::Post));
        assert!(!changes_camera(Route::Controls, Method::Get));
        assert!(changes_camera(Route::SetOption, Method::Get));
        assert!(!changes_camera(Route::SetOption, Method::Head));
        assert!(!changes_camera(Route::Status, Method::Post));
        assert!(changes_camera(Route::ResetControls, Method::Post));
        assert!(!takes_post(Route::Status) && !takes_post(Route::Snapshot));
        assert_eq!(route("/whep"), Route::Whep);
        assert_eq!(route("/whep/0123abcd"), Route::WhepSession);
        assert_eq!(route("/whep/"), Route::NotFound);
        assert_eq!(route("/whep/a/b"), Route::NotFound);
        assert_eq!(route("/webrtc"), Route::WebrtcJson);
        assert_eq!(method("DELETE"), Method::Delete);
        assert!(takes(Route::WhepSession, Method::Delete));
        assert!(!takes(Route::Whep, Method::Delete) && !takes(Route::Whep, Method::Get));
        assert!(takes(Route::Whep, Method::Post) && takes(Route::WebrtcJson, Method::Post));
        assert!(!takes(Route::Snapshot, Method::Delete));
        assert!(takes(route("/whep/../x"), Method::Delete));
        assert!(body_limit(Route::Whep) > body_limit(Route::Controls));
        // Every route's Allow header lists exactly the methods it takes.
        for r in [
            Route::Page,
            Route::Controls,
            Route::ResetControls,
            Route::SetOption,
            Route::Whep,
            Route::WhepSession,
            Route::WebrtcJson,
        ] {
            for (m, name) in [
                (Method::Get, "GET"),
                (Method::Head, "HEAD"),
                (Method::Post, "POST"),
                (Method::Delete, "DELETE"),
            ] {
                let listed = allowed_methods(r).split(", ").any(|a| a == name);
                assert_eq!(takes(r, m), listed, "{r:?} {name}");
            }
        }
        assert_eq!(route("/../etc/passwd"), Route::NotFound);
        assert_eq!(route("/index.html/"), Route::NotFound);
        assert_eq!(route(""), Route::NotFound);
    }

    #[test]
    fn methods_and_queries() {
        assert_eq!(method("GET"), Method::Get);
        assert_eq!(method("HEAD"), Method::Head);
        assert_eq!(method("POST"), Method::Post);
        assert_eq!(method("PUT"), Method::Other);
        assert_eq!(method("get"), Method::Other);
        assert_eq!(query_value("a=1&b=2", "b"), Some("2"));
        assert_eq!(query_value("a=1&b", "b"), Some(""));
        assert_eq!(query_value("", "b"), None);
    }
}
