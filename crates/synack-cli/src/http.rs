//! A minimal HTTP/1.1 file server for `synack serve --http`: GET and HEAD of regular files
//! under one directory, `Content-Length`, persistent connections (RFC 9112 §9.3). Enough for
//! curl and a browser; not a web server.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

/// Longest request head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// One parsed request head.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub target: String,
    /// HTTP/1.1 keeps the connection open unless told to close; HTTP/1.0 the opposite.
    pub keep_alive: bool,
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
    for h in lines {
        let Some((name, value)) = h.split_once(':') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("connection") {
            for token in value.split(',') {
                let t = token.trim();
                if t.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if t.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        }
    }
    Ok(Request {
        method: method.to_string(),
        target: target.to_string(),
        keep_alive,
    })
}

/// The file under `root` that `target` names, refusing anything that would leave `root`.
pub fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next()?;
    let rel = Path::new(path.strip_prefix('/')?);
    let mut out = root.to_path_buf();
    for c in rel.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if out.is_dir() {
        out.push("index.html");
    }
    Some(out)
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
                tx += respond_error(s, 431, "Request Header Fields Too Large")?;
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
                tx += respond_error(s, 400, "Bad Request")?;
                return Ok((rx, tx));
            }
        };
        let head_only = match req.method.as_str() {
            "GET" => false,
            "HEAD" => true,
            _ => {
                tx += respond_error(s, 405, "Method Not Allowed")?;
                continue;
            }
        };
        let file = resolve(root, &req.target).and_then(|p| File::open(p).ok());
        let len = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len());
        let (Some(mut f), Some(len)) = (file, len) else {
            tx += respond_error(s, 404, "Not Found")?;
            if !req.keep_alive {
                return Ok((rx, tx));
            }
            continue;
        };
        let hdr = format!(
            "HTTP/1.1 200 OK\r\nServer: synack\r\nContent-Type: application/octet-stream\r\n\
             Content-Length: {len}\r\nConnection: {}\r\n\r\n",
            if req.keep_alive {
                "keep-alive"
            } else {
                "close"
            }
        );
        s.write_all(hdr.as_bytes())?;
        tx += hdr.len() as u64;
        if !head_only {
            let mut left = len;
            while left > 0 {
                let want = (left.min(buf.len() as u64)) as usize;
                let n = f.read(&mut buf[..want])?;
                if n == 0 {
                    break; // the file shrank; the client will see a short body
                }
                s.write_all(&buf[..n])?;
                left -= n as u64;
                tx += n as u64;
            }
        }
        if !req.keep_alive {
            return Ok((rx, tx));
        }
    }
}

fn respond_error<S: Write>(s: &mut S, code: u16, reason: &str) -> io::Result<u64> {
    let body = format!("{code} {reason}\n");
    let msg = format!(
        "HTTP/1.1 {code} {reason}\r\nServer: synack\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(msg.as_bytes())?;
    Ok(msg.len() as u64)
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
        assert_eq!(resolve(root, "/../etc/passwd"), None);
        assert_eq!(resolve(root, "/a/../../x"), None);
        assert_eq!(resolve(root, "relative"), None);
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

    #[test]
    fn pipelined_requests_on_one_connection() {
        let dir = std::env::temp_dir().join(format!("synack-http-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("f"), b"hello").unwrap();
        let mut p = Pipe {
            input: io::Cursor::new(
                b"GET /f HTTP/1.1\r\n\r\nHEAD /f HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            ),
            output: Vec::new(),
        };
        let mut buf = vec![0u8; 8192];
        serve_connection(&mut p, &dir, &mut buf).unwrap();
        let out = String::from_utf8(p.output).unwrap();
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
        assert_eq!(out.matches("Content-Length: 5\r\n").count(), 2, "{out}");
        assert_eq!(out.matches("hello").count(), 1, "{out}");
        assert!(out.ends_with("404 Not Found\n"), "{out}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
