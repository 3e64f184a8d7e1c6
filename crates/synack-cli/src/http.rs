//! A small HTTP/1.1 file server for `synack serve --http` and `synack lab`: GET and HEAD of the
//! files under one directory, persistent connections (RFC 9112 §9.3), `index.html` or a
//! generated listing for a directory, `Content-Type` by file extension, and single byte ranges
//! (RFC 9110 §14), so a browser can look around and `curl -C -` can resume a download. Enough
//! for curl, wget and a browser; not a web server.
//!
//! What it answers:
//!
//! * a file: `200 OK` with `Accept-Ranges: bytes`, `Content-Type`, `Content-Length` and
//!   `Last-Modified`; with one satisfiable `Range: bytes=...`, `206 Partial Content` and
//!   `Content-Range: bytes FIRST-LAST/LENGTH` (§14.4); with an unsatisfiable one,
//!   `416 Range Not Satisfiable` and `Content-Range: bytes */LENGTH` (§15.5.17). Several ranges,
//!   another unit, a malformed header or an `If-Range` that does not match `Last-Modified` are
//!   ignored and the whole file is sent (§14.2, §13.1.5), as the RFC allows;
//! * a directory: its `index.html`, else an HTML list of its entries; a directory named
//!   without the trailing slash is redirected (`301`) to the name with it, so relative links in
//!   the page resolve;
//! * HEAD: the same status and headers as GET, no body;
//! * anything outside the directory (`..`), a missing file: `404`; another method: `405`.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest request head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// One parsed request head.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub target: String,
    /// HTTP/1.1 keeps the connection open unless told to close; HTTP/1.0 the opposite.
    pub keep_alive: bool,
    /// The `Range` header's value, if any.
    pub range: Option<String>,
    /// The `If-Range` header's value, if any.
    pub if_range: Option<String>,
}

/// Parses a request head (the bytes before the blank line).
pub fn parse_head(head: &[u8]) -> Result<Request, &'static str> {
    let text = std::str::from_utf8(head).map_err(|_| "request head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let line = lines.next().ok_or("empty request")?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed request line");
    };
    let mut keep_alive = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err("unsupported HTTP version"),
    };
    let (mut range, mut if_range) = (None, None);
    for h in lines {
        let Some((name, value)) = h.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',') {
                let t = token.trim();
                if t.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if t.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("range") {
            range = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("if-range") {
            if_range = Some(value.to_string());
        }
    }
    Ok(Request {
        method: method.to_string(),
        target: target.to_string(),
        keep_alive,
        range,
        if_range,
    })
}

/// Decodes `%XX` escapes; `None` for a bad escape or a result that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `%XX` for everything in a path segment but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// `&`, `<`, `>`, `"` and `'` as HTML entities.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The path under `root` that `target` names (percent-decoded, query and fragment dropped),
/// refusing anything that would leave `root`.
pub fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = percent_decode(target.split(['?', '#']).next()?)?;
    let rel = Path::new(path.strip_prefix('/')?);
    let mut out = root.to_path_buf();
    for c in rel.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// The media type for a file name, by extension (RFC 6838 registrations; text as UTF-8).
pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("txt" | "text" | "log" | "rs" | "toml" | "pkt" | "sh" | "c" | "h" | "py") => {
            "text/plain; charset=utf-8"
        }
        Some("md") => "text/markdown; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("csv") => "text/csv; charset=utf-8",
        Some("json") => "application/json",
        Some("xml") => "application/xml",
        Some("wasm") => "application/wasm",
        Some("pdf") => "application/pdf",
        Some("zip") => "application/zip",
        Some("gz") => "application/gzip",
        Some("tar") => "application/x-tar",
        Some("pcap") => "application/vnd.tcpdump.pcap",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("svg") => "image/svg+xml",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("mp4") => "video/mp4",
        _ => "application/octet-stream",
    }
}

/// What a `Range` header asks of a representation of `len` bytes (RFC 9110 §14.1.2).
#[derive(Debug, PartialEq, Eq)]
pub enum RangeAnswer {
    /// Send it all: no usable range (absent, another unit, several ranges, malformed).
    Whole,
    /// Send the bytes `first..=last`.
    Part { first: u64, last: u64 },
    /// None of it can be sent: 416.
    Unsatisfiable,
}

/// Reads `bytes=FIRST-LAST`, `bytes=FIRST-` or `bytes=-SUFFIX` against a length.
pub fn byte_range(header: &str, len: u64) -> RangeAnswer {
    let Some((unit, set)) = header.split_once('=') else {
        return RangeAnswer::Whole;
    };
    // A range unit this server does not understand is ignored (§14.2).
    if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
        return RangeAnswer::Whole;
    }
    let Some((a, b)) = set.trim().split_once('-') else {
        return RangeAnswer::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        // More digits than a u64 holds: as large as can be (past any length).
        Some(s.parse().unwrap_or(u64::MAX))
    };
    match (a.trim(), b.trim()) {
        ("", suffix) => match number(suffix) {
            None => RangeAnswer::Whole,
            // §14.1.1: a suffix-range is satisfiable when its length is not zero; of an empty
            // representation there is nothing to cut, so it is sent whole (empty).
            Some(0) => RangeAnswer::Unsatisfiable,
            Some(_) if len == 0 => RangeAnswer::Whole,
            Some(n) => RangeAnswer::Part {
                first: len.saturating_sub(n),
                last: len - 1,
            },
        },
        (first, last) => {
            let Some(first) = number(first) else {
                return RangeAnswer::Whole;
            };
            let last = match last {
                "" => u64::MAX,
                l => match number(l) {
                    // last < first makes the range-spec invalid, so the header is ignored.
                    Some(l) if l >= first => l,
                    _ => return RangeAnswer::Whole,
                },
            };
            if first >= len {
                RangeAnswer::Unsatisfiable
            } else {
                RangeAnswer::Part {
                    first,
                    last: last.min(len - 1),
                }
            }
        }
    }
}

/// An HTTP-date (IMF-fixdate, RFC 9110 §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm, proleptic Gregorian).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A response: status line, headers, and what follows them.
pub struct Response {
    pub status: u16,
    pub reason: &'static str,
    /// Headers besides `Server`, `Content-Length` and `Connection`.
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

/// The bytes after the head.
pub enum Body {
    Bytes(Vec<u8>),
    /// The next `len` bytes of `file` (positioned at the first byte to send).
    File {
        file: File,
        len: u64,
    },
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
        }
    }
}

impl Response {
    fn text(status: u16, reason: &'static str) -> Response {
        Response {
            status,
            reason,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
            body: Body::Bytes(format!("{status} {reason}\n").into_bytes()),
        }
    }
}

/// What to answer to `req` from the files under `root` (GET and HEAD alike: the caller leaves
/// out the body of a HEAD).
pub fn respond(root: &Path, req: &Request) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        let mut r = Response::text(405, "Method Not Allowed");
        r.headers.push(("Allow", "GET, HEAD".into()));
        return r;
    }
    let Some(path) = resolve(root, &req.target) else {
        return Response::text(404, "Not Found");
    };
    if path.is_dir() {
        let (route, query) = match req.target.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (req.target.as_str(), None),
        };
        if !route.ends_with('/') {
            let mut r = Response::text(301, "Moved Permanently");
            let location = match query {
                Some(q) => format!("{route}/?{q}"),
                None => format!("{route}/"),
            };
            r.headers.push(("Location", location));
            return r;
        }
        let index = path.join("index.html");
        if !index.is_file() {
            return listing(&path, route);
        }
        return file(&index, req);
    }
    file(&path, req)
}

/// A regular file, whole or the one range asked for.
fn file(path: &Path, req: &Request) -> Response {
    let Ok(mut f) = File::open(path) else {
        return Response::text(404, "Not Found");
    };
    let Some(meta) = f.metadata().ok().filter(|m| m.is_file()) else {
        return Response::text(404, "Not Found");
    };
    let len = meta.len();
    let modified = meta.modified().ok().map(http_date);
    let mut headers = vec![
        ("Content-Type", content_type(path).to_string()),
        ("Accept-Ranges", "bytes".to_string()),
    ];
    if let Some(m) = &modified {
        headers.push(("Last-Modified", m.clone()));
    }
    // §13.1.5: a Range is followed only when If-Range (if any) matches the current validator;
    // Last-Modified is the only one this server has.
    let range_applies = match &req.if_range {
        None => true,
        Some(v) => modified.as_deref() == Some(v.as_str()),
    };
    let answer = match &req.range {
        Some(r) if range_applies => byte_range(r, len),
        _ => RangeAnswer::Whole,
    };
    let (status, reason, start, n) = match answer {
        RangeAnswer::Whole => (200, "OK", 0, len),
        RangeAnswer::Part { first, last } => {
            headers.push(("Content-Range", format!("bytes {first}-{last}/{len}")));
            (206, "Partial Content", first, last - first + 1)
        }
        RangeAnswer::Unsatisfiable => {
            let mut r = Response::text(416, "Range Not Satisfiable");
            r.headers.push(("Content-Range", format!("bytes */{len}")));
            return r;
        }
    };
    if start > 0 && f.seek(SeekFrom::Start(start)).is_err() {
        return Response::text(500, "Internal Server Error");
    }
    Response {
        status,
        reason,
        headers,
        body: Body::File { file: f, len: n },
    }
}

/// An HTML list of the entries of `dir`, which the request called `route` (ending in `/`).
fn listing(dir: &Path, route: &str) -> Response {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Response::text(403, "Forbidden");
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| {
            let mut n = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() {
                n.push('/');
            }
            n
        })
        .collect();
    names.sort();
    let title = html_escape(&percent_decode(route).unwrap_or_else(|| route.to_string()));
    let mut page = format!(
        "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>Index of {title}</title>\
         </head>\n<body>\n<h1>Index of {title}</h1>\n<ul>\n"
    );
    if route != "/" {
        page.push_str("<li><a href=\"../\">../</a></li>\n");
    }
    for n in &names {
        let (stem, slash) = match n.strip_suffix('/') {
            Some(s) => (s, "/"),
            None => (n.as_str(), ""),
        };
        page.push_str(&format!(
            "<li><a href=\"{}{slash}\">{}</a></li>\n",
            percent_encode(stem),
            html_escape(n)
        ));
    }
    page.push_str("</ul>\n</body>\n</html>\n");
    Response {
        status: 200,
        reason: "OK",
        headers: vec![("Content-Type", "text/html; charset=utf-8".into())],
        body: Body::Bytes(page.into_bytes()),
    }
}

/// Writes `r` (without its body for HEAD). Returns the bytes written.
fn send<S: Write>(
    s: &mut S,
    r: Response,
    head_only: bool,
    keep_alive: bool,
    buf: &mut [u8],
) -> io::Result<u64> {
    let mut head = format!("HTTP/1.1 {} {}\r\nServer: synack\r\n", r.status, r.reason);
    for (name, value) in &r.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: {}\r\n\r\n",
        r.body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    ));
    s.write_all(head.as_bytes())?;
    let mut sent = head.len() as u64;
    if head_only {
        return Ok(sent);
    }
    match r.body {
        Body::Bytes(b) => {
            s.write_all(&b)?;
            sent += b.len() as u64;
        }
        Body::File { mut file, len } => {
            let mut left = len;
            while left > 0 {
                let want = left.min(buf.len() as u64) as usize;
                let n = file.read(&mut buf[..want])?;
                if n == 0 {
                    break; // the file shrank; the client will see a short body
                }
                s.write_all(&buf[..n])?;
                left -= n as u64;
                sent += n as u64;
            }
        }
    }
    Ok(sent)
}

/// Serves requests on one connection until the client closes or asks to. Returns (bytes
/// received, bytes sent).
pub fn serve_connection<S: Read + Write>(
    s: &mut S,
    root: &Path,
    buf: &mut [u8],
) -> io::Result<(u64, u64)> {
    let mut head = Vec::with_capacity(1024);
    let (mut rx, mut tx) = (0u64, 0u64);
    let mut pending: Vec<u8> = Vec::new();
    loop {
        // Read until the end of the head ("\r\n\r\n"); bytes after it start the next request.
        head.clear();
        head.extend_from_slice(&pending);
        pending.clear();
        let end = loop {
            if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if head.len() > MAX_HEAD {
                let r = Response::text(431, "Request Header Fields Too Large");
                tx += send(s, r, false, false, buf)?;
                return Ok((rx, tx));
            }
            let n = s.read(&mut buf[..4096])?;
            if n == 0 {
                return Ok((rx, tx)); // the client closed between requests
            }
            rx += n as u64;
            head.extend_from_slice(&buf[..n]);
        };
        pending.extend_from_slice(&head[end + 4..]);
        let req = match parse_head(&head[..end]) {
            Ok(r) => r,
            Err(_) => {
                tx += send(s, Response::text(400, "Bad Request"), false, false, buf)?;
                return Ok((rx, tx));
            }
        };
        let response = respond(root, &req);
        tx += send(s, response, req.method == "HEAD", req.keep_alive, buf)?;
        if !req.keep_alive {
            return Ok((rx, tx));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_with_keep_alive_rules() {
        let r = parse_head(b"GET /a HTTP/1.1\r\nHost: x").unwrap();
        assert_eq!(
            (r.method.as_str(), r.target.as_str(), r.keep_alive),
            ("GET", "/a", true)
        );
        let r = parse_head(b"GET /a HTTP/1.1\r\nConnection: close").unwrap();
        assert!(!r.keep_alive);
        let r = parse_head(b"GET /a HTTP/1.0").unwrap();
        assert!(!r.keep_alive);
        let r = parse_head(b"GET /a HTTP/1.0\r\nconnection: Keep-Alive").unwrap();
        assert!(r.keep_alive);
        let r = parse_head(b"GET /a HTTP/1.1\r\nrange:  bytes=1-2 \r\nIf-Range: x").unwrap();
        assert_eq!(r.range.as_deref(), Some("bytes=1-2"));
        assert_eq!(r.if_range.as_deref(), Some("x"));
        assert!(parse_head(b"GET /a").is_err());
        assert!(parse_head(b"GET /a HTTP/2").is_err());
        assert!(parse_head(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn paths_stay_under_the_root() {
        let root = Path::new("/srv");
        assert_eq!(
            resolve(root, "/a/b.txt?x=1"),
            Some(PathBuf::from("/srv/a/b.txt"))
        );
        assert_eq!(
            resolve(root, "/my%20file.txt"),
            Some(PathBuf::from("/srv/my file.txt"))
        );
        assert_eq!(resolve(root, "/"), Some(PathBuf::from("/srv")));
        assert_eq!(resolve(root, "/../etc/passwd"), None);
        assert_eq!(resolve(root, "/a/../../x"), None);
        assert_eq!(resolve(root, "/%2e%2e/etc/passwd"), None);
        assert_eq!(resolve(root, "/%zz"), None);
        assert_eq!(resolve(root, "relative"), None);
    }

    /// RFC 9110 §14.1.2's forms against a 10000-byte representation, and its examples.
    #[test]
    fn byte_ranges_as_rfc_9110_reads_them() {
        use RangeAnswer::*;
        let part = |first, last| Part { first, last };
        let r = |h| byte_range(h, 10_000);
        // §14.1.2: "the first 500 bytes", "the second 500 bytes", "the final 500 bytes".
        assert_eq!(r("bytes=0-499"), part(0, 499));
        assert_eq!(r("bytes=500-999"), part(500, 999));
        assert_eq!(r("bytes=-500"), part(9500, 9999));
        assert_eq!(r("bytes=9500-"), part(9500, 9999));
        assert_eq!(r("bytes=0-0"), part(0, 0));
        assert_eq!(r("bytes=-1"), part(9999, 9999));
        assert_eq!(r("BYTES = 5-"), part(5, 9999));
        // A last-pos past the end, a suffix longer than the whole: cut to what there is.
        assert_eq!(r("bytes=9000-20000"), part(9000, 9999));
        assert_eq!(r("bytes=9000-99999999999999999999999"), part(9000, 9999));
        assert_eq!(r("bytes=-20000"), part(0, 9999));
        // Nothing of it can be sent.
        assert_eq!(r("bytes=10000-"), Unsatisfiable);
        assert_eq!(r("bytes=10000-10005"), Unsatisfiable);
        assert_eq!(r("bytes=99999999999999999999999-"), Unsatisfiable);
        assert_eq!(r("bytes=-0"), Unsatisfiable);
        assert_eq!(byte_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(byte_range("bytes=-5", 0), Whole);
        // Ignored: several ranges, another unit, malformed, last before first.
        for h in [
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=abc",
            "bytes=1-x",
            "bytes=-",
            "bytes=5-4",
            "0-1",
            "bytes=+1-2",
        ] {
            assert_eq!(r(h), Whole, "{h}");
        }
    }

    #[test]
    fn http_dates_are_imf_fixdates() {
        let at = |s| http_date(UNIX_EPOCH + std::time::Duration::from_secs(s));
        assert_eq!(at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        // RFC 9110 §5.6.7's example.
        assert_eq!(at(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(at(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(at(4_102_444_799), "Thu, 31 Dec 2099 23:59:59 GMT");
    }

    #[test]
    fn content_types_by_extension() {
        for (name, t) in [
            ("index.html", "text/html; charset=utf-8"),
            ("README.md", "text/markdown; charset=utf-8"),
            ("a.TXT", "text/plain; charset=utf-8"),
            ("style.css", "text/css; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("data.json", "application/json"),
            ("x.png", "image/png"),
            ("x.JPG", "image/jpeg"),
            ("x.svg", "image/svg+xml"),
            ("demo.pcap", "application/vnd.tcpdump.pcap"),
            ("file.bin", "application/octet-stream"),
            ("Makefile", "application/octet-stream"),
        ] {
            assert_eq!(content_type(Path::new(name)), t, "{name}");
        }
    }

    /// A connection whose input is fixed and whose output is collected.
    struct Pipe {
        input: io::Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Pipe {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            self.input.read(b)
        }
    }

    impl Write for Pipe {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.output.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A scratch directory for one test, removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str) -> Dir {
            let d = std::env::temp_dir().join(format!("synack-http-{}-{tag}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            Dir(d)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The requests, one connection, the responses as text.
    fn exchange(root: &Path, requests: &str) -> String {
        let mut p = Pipe {
            input: io::Cursor::new(requests.as_bytes().to_vec()),
            output: Vec::new(),
        };
        let mut buf = vec![0u8; 8192];
        serve_connection(&mut p, root, &mut buf).unwrap();
        String::from_utf8(p.output).unwrap()
    }

    fn last_modified(p: &Path) -> String {
        http_date(std::fs::metadata(p).unwrap().modified().unwrap())
    }

    #[test]
    fn pipelined_requests_on_one_connection() {
        let dir = Dir::new("pipe");
        std::fs::write(dir.0.join("f"), b"hello").unwrap();
        let out = exchange(
            &dir.0,
            "GET /f HTTP/1.1\r\n\r\nHEAD /f HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
        assert_eq!(out.matches("Content-Length: 5\r\n").count(), 2, "{out}");
        assert_eq!(out.matches("hello").count(), 1, "{out}");
        assert!(out.ends_with("404 Not Found\n"), "{out}");
    }

    /// A whole file, a range of it (206), a range past its end (416) and HEAD of a range, each
    /// response exact.
    #[test]
    fn files_whole_and_in_ranges() {
        let dir = Dir::new("range");
        let f = dir.0.join("data.txt");
        std::fs::write(&f, b"0123456789abcdefghij").unwrap();
        let lm = last_modified(&f);
        let head = |status: &str, extra: &str, len: usize, conn: &str| {
            format!(
                "HTTP/1.1 {status}\r\nServer: synack\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Accept-Ranges: bytes\r\nLast-Modified: {lm}\r\n{extra}Content-Length: {len}\r\n\
                 Connection: {conn}\r\n\r\n"
            )
        };
        let out = exchange(
            &dir.0,
            "GET /data.txt HTTP/1.1\r\n\r\n\
             GET /data.txt HTTP/1.1\r\nRange: bytes=5-9\r\n\r\n\
             GET /data.txt HTTP/1.1\r\nRange: bytes=-3\r\n\r\n\
             GET /data.txt HTTP/1.1\r\nRange: bytes=15-\r\n\r\n\
             HEAD /data.txt HTTP/1.1\r\nRange: bytes=0-1\r\n\r\n\
             GET /data.txt HTTP/1.1\r\nRange: bytes=20-\r\nConnection: close\r\n\r\n",
        );
        let want = [
            head("200 OK", "", 20, "keep-alive") + "0123456789abcdefghij",
            head(
                "206 Partial Content",
                "Content-Range: bytes 5-9/20\r\n",
                5,
                "keep-alive",
            ) + "56789",
            head(
                "206 Partial Content",
                "Content-Range: bytes 17-19/20\r\n",
                3,
                "keep-alive",
            ) + "hij",
            head(
                "206 Partial Content",
                "Content-Range: bytes 15-19/20\r\n",
                5,
                "keep-alive",
            ) + "fghij",
            head(
                "206 Partial Content",
                "Content-Range: bytes 0-1/20\r\n",
                2,
                "keep-alive",
            ),
            "HTTP/1.1 416 Range Not Satisfiable\r\nServer: synack\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Range: bytes */20\r\n\
             Content-Length: 26\r\nConnection: close\r\n\r\n416 Range Not Satisfiable\n"
                .to_string(),
        ]
        .concat();
        assert_eq!(out, want);
    }

    /// `If-Range` with the file's own Last-Modified keeps the range; anything else (an old
    /// date, an entity tag) gets the whole file (RFC 9110 §13.1.5).
    #[test]
    fn if_range_decides_whether_the_range_applies() {
        let dir = Dir::new("ifrange");
        let f = dir.0.join("d.bin");
        std::fs::write(&f, b"abcdef").unwrap();
        let lm = last_modified(&f);
        let ask = |if_range: &str| {
            exchange(
                &dir.0,
                &format!(
                    "GET /d.bin HTTP/1.1\r\nRange: bytes=2-3\r\nIf-Range: {if_range}\r\n\
                     Connection: close\r\n\r\n"
                ),
            )
        };
        let same = ask(&lm);
        assert!(
            same.starts_with("HTTP/1.1 206 Partial Content\r\n"),
            "{same}"
        );
        assert!(same.ends_with("\r\n\r\ncd"), "{same}");
        for other in ["Thu, 01 Jan 1970 00:00:00 GMT", "\"some-etag\""] {
            let whole = ask(other);
            assert!(whole.starts_with("HTTP/1.1 200 OK\r\n"), "{whole}");
            assert!(whole.ends_with("\r\n\r\nabcdef"), "{whole}");
            assert!(!whole.contains("Content-Range"), "{whole}");
        }
    }

    /// `/` is index.html when there is one, else a listing of the directory; a directory named
    /// without its slash is redirected to it.
    #[test]
    fn directories_serve_index_html_or_a_listing() {
        let dir = Dir::new("dirs");
        std::fs::write(dir.0.join("b <&>.txt"), b"x").unwrap();
        std::fs::write(dir.0.join("a.bin"), b"y").unwrap();
        std::fs::create_dir(dir.0.join("sub dir")).unwrap();
        std::fs::write(dir.0.join("sub dir/index.html"), b"<p>hi</p>").unwrap();
        let out = exchange(&dir.0, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
        let body = "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>Index of /</title>\
                    </head>\n<body>\n<h1>Index of /</h1>\n<ul>\n\
                    <li><a href=\"a.bin\">a.bin</a></li>\n\
                    <li><a href=\"b%20%3C%26%3E.txt\">b &lt;&amp;&gt;.txt</a></li>\n\
                    <li><a href=\"sub%20dir/\">sub dir/</a></li>\n\
                    </ul>\n</body>\n</html>\n";
        assert_eq!(
            out,
            format!(
                "HTTP/1.1 200 OK\r\nServer: synack\r\nContent-Type: text/html; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        );
        let out = exchange(
            &dir.0,
            "GET /sub%20dir HTTP/1.1\r\n\r\nGET /sub%20dir/ HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert!(
            out.starts_with("HTTP/1.1 301 Moved Permanently\r\n")
                && out.contains("\r\nLocation: /sub%20dir/\r\n"),
            "{out}"
        );
        let second = &out[out.find("HTTP/1.1 200 OK").expect("the index")..];
        assert!(
            second.contains("Content-Type: text/html; charset=utf-8\r\n")
                && second.ends_with("\r\n\r\n<p>hi</p>"),
            "{second}"
        );
        // A listing below the root links back up.
        std::fs::remove_file(dir.0.join("sub dir/index.html")).unwrap();
        let out = exchange(
            &dir.0,
            "GET /sub%20dir/ HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert!(out.contains("<title>Index of /sub dir/</title>"), "{out}");
        assert!(out.contains("<li><a href=\"../\">../</a></li>"), "{out}");
    }

    #[test]
    fn other_methods_are_not_allowed() {
        let dir = Dir::new("methods");
        let out = exchange(&dir.0, "POST / HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(
            out.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{out}"
        );
        assert!(out.contains("\r\nAllow: GET, HEAD\r\n"), "{out}");
    }
}
