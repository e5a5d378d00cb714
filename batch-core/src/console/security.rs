//! Who may see the console and act on it.
//!
//! - It binds to loopback unless given a token; beyond loopback a token is required.
//! - With a token, actions (and pages, unless `--public-read`) need it: sent as
//!   `Authorization: Bearer TOKEN`, or given once as `?token=TOKEN`, which sets a
//!   same-site, http-only cookie and redirects to the URL without it. Without it: 403.
//! - Actions are POST only, carry a form field derived from the browser's session
//!   cookie with a secret of this process (a cross-site form cannot know it), and are
//!   refused when their Origin is another site. A request authenticated by its
//!   Authorization header needs no form field: browsers never add that header by
//!   themselves.
//! - `--read-only` refuses every POST with 405.
//! - Without a token, only requests addressed to a loopback name (`localhost`,
//!   `127.0.0.1`, `[::1]`) are served: a web page whose own host name an attacker
//!   rebinds to 127.0.0.1 (DNS rebinding) would otherwise read the pages and, being
//!   "same-site" by the Host it sends, take a form field and act.

use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use md5::{Digest, Md5};

use crate::console::{ConsoleConfig, ConsoleError};

const TOKEN_COOKIE: &str = "batch_console_token";
const SESSION_COOKIE: &str = "batch_console_session";

/// Refuses a configuration that would expose actions to whoever reaches the address.
pub(crate) fn check_config(config: &ConsoleConfig) -> Result<(), ConsoleError> {
    match &config.token {
        None if !config.bind.ip().is_loopback() => Err(ConsoleError::TokenNeeded(config.bind)),
        Some(token) if !usable_token(token) => Err(ConsoleError::BadToken),
        _ => Ok(()),
    }
}

fn usable_token(token: &str) -> bool {
    token.len() >= 8
        && token
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';' | b'\\'))
}

/// The rules of one console process, with its secrets.
pub(crate) struct Secrets {
    token: Option<String>,
    form_key: [u8; 16],
    read_only: bool,
    public_read: bool,
}

impl Secrets {
    pub(crate) fn new(config: &ConsoleConfig) -> Result<Self, ConsoleError> {
        let mut form_key = [0; 16];
        getrandom::fill(&mut form_key).map_err(|e| ConsoleError::Random(e.to_string()))?;
        Ok(Self {
            token: config.token.clone(),
            form_key,
            read_only: config.read_only,
            public_read: config.public_read,
        })
    }

    /// The form field that goes with a session: a keyed digest of its id.
    pub(crate) fn form_token(&self, session: &str) -> String {
        let mut hasher = Md5::new();
        hasher.update(self.form_key);
        hasher.update(session.as_bytes());
        hasher.update(self.form_key);
        hex(&hasher.finalize())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How a request proved it may act (an extension set by [`guard`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// No token is configured: loopback only.
    Open,
    /// `Authorization: Bearer TOKEN`.
    Bearer,
    /// The token cookie.
    Cookie,
    /// No token given (only pages with `--public-read`).
    Anonymous,
}

/// The browser's session id (an extension set by [`guard`]).
#[derive(Clone, Debug)]
pub(crate) struct Session(pub(crate) String);

fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Compares in time that does not depend on where the texts differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn access(secrets: &Secrets, headers: &HeaderMap) -> Access {
    let Some(token) = &secrets.token else {
        return Access::Open;
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer.is_some_and(|b| same(b.trim(), token)) {
        Access::Bearer
    } else if cookie(headers, TOKEN_COOKIE).is_some_and(|c| same(c, token)) {
        Access::Cookie
    } else {
        Access::Anonymous
    }
}

fn query_token(uri: &axum::http::Uri) -> Option<String> {
    let Query(mut query) =
        Query::<std::collections::HashMap<String, String>>::try_from_uri(uri).ok()?;
    query.remove("token")
}

fn without_token(path: &str, query: &str) -> String {
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("token="))
        .collect();
    if rest.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", rest.join("&"))
    }
}

fn refused(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

/// The site a request was sent to, as an Origin header spells it (`host[:port]`).
fn same_site(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        // Not a browser's cross-site form: browsers send Origin with every POST.
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// Whether the Host a request was addressed to names this machine's loopback
/// (`localhost`, `127.0.0.1`, `[::1]`, with any port). A request without a Host
/// header (HTTP/1.0, no browser) is let through: rebinding needs a browser's Host.
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST) else {
        return true;
    };
    let Ok(host) = host.to_str() else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                name
            } else {
                host
            }
        }),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The middleware in front of every route but `/health` and the assets.
pub(crate) async fn guard(
    State(secrets): State<Arc<Secrets>>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    if path == "/health" || path.starts_with("/assets/") {
        return next.run(request).await;
    }
    if secrets.token.is_none() && !loopback_host(request.headers()) {
        return refused(
            StatusCode::FORBIDDEN,
            "403 Forbidden: a console without a token answers only to a loopback address (localhost, 127.0.0.1, [::1]); start it with --token to reach it by another name",
        );
    }
    let query = request.uri().query().unwrap_or_default().to_owned();
    if let (Some(given), Some(token)) = (query_token(request.uri()), &secrets.token) {
        if !same(&given, token) {
            return refused(StatusCode::FORBIDDEN, "403 Forbidden: wrong token");
        }
        let mut response = Redirect::to(&without_token(&path, &query)).into_response();
        if let Ok(value) = HeaderValue::from_str(&format!(
            "{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
        )) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        return response;
    }
    let access = access(&secrets, request.headers());
    let is_post = request.method() == Method::POST;
    if is_post {
        if secrets.read_only {
            return refused(
                StatusCode::METHOD_NOT_ALLOWED,
                "405 Method Not Allowed: this console is read-only",
            );
        }
        if access == Access::Anonymous {
            return refused(
                StatusCode::FORBIDDEN,
                "403 Forbidden: actions need the console's token (Authorization: Bearer TOKEN, or open a page once with ?token=TOKEN)",
            );
        }
        if !same_site(request.headers()) {
            return refused(
                StatusCode::FORBIDDEN,
                "403 Forbidden: the request comes from another site (Origin)",
            );
        }
    } else if access == Access::Anonymous && !secrets.public_read {
        return refused(
            StatusCode::FORBIDDEN,
            "403 Forbidden: this console needs its token (Authorization: Bearer TOKEN, or open it once with ?token=TOKEN)",
        );
    }
    let existing = cookie(request.headers(), SESSION_COOKIE)
        .filter(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned);
    let (session, new) = match existing {
        Some(s) => (s, false),
        None => {
            let mut id = [0; 16];
            if getrandom::fill(&mut id).is_err() {
                return refused(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "500: no random bytes for a session id",
                );
            }
            (hex(&id), true)
        }
    };
    request.extensions_mut().insert(access);
    request.extensions_mut().insert(Session(session.clone()));
    let mut response = next.run(request).await;
    if new
        && let Ok(value) = HeaderValue::from_str(&format!(
            "{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict"
        ))
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Whether a POST's form field is the one of its session (not needed with a bearer
/// token).
pub(crate) fn form_allowed(
    secrets: &Secrets,
    access: &Access,
    session: &Session,
    field: Option<&str>,
) -> bool {
    *access == Access::Bearer || field.is_some_and(|f| same(f, &secrets.form_token(&session.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beyond_loopback_a_token_is_required() {
        let mut config = ConsoleConfig {
            bind: "0.0.0.0:8080".parse().unwrap(),
            ..ConsoleConfig::default()
        };
        let e = check_config(&config).unwrap_err();
        assert!(e.to_string().contains("--token"), "{e}");
        config.token = Some("short".into());
        assert!(matches!(check_config(&config), Err(ConsoleError::BadToken)));
        config.token = Some("a-long-enough-token".into());
        assert!(check_config(&config).is_ok());
        assert!(check_config(&ConsoleConfig::default()).is_ok());
    }

    #[test]
    fn the_token_leaves_the_url_and_the_rest_stays() {
        assert_eq!(without_token("/x", "token=abc"), "/x");
        assert_eq!(without_token("/x", "job=a&token=abc&b=1"), "/x?job=a&b=1");
        let uri: axum::http::Uri = "/x?job=a&token=a%26b%3D".parse().unwrap();
        assert_eq!(query_token(&uri).as_deref(), Some("a&b="));
    }

    fn with_host(host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        headers
    }

    #[test]
    fn only_loopback_names_are_loopback_hosts() {
        for host in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.1.2.3:1",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(loopback_host(&with_host(host)), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.evil.example:8080",
            "10.0.0.1:8080",
            "[::2]:8080",
            "",
        ] {
            assert!(!loopback_host(&with_host(host)), "{host}");
        }
        assert!(loopback_host(&HeaderMap::new()));
    }
}
