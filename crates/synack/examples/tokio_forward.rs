//! A forwarder's TCP decisions in async code, on SimNet: a client host connects to several
//! addresses that belong to nobody; the gateway host, in forwarder mode, holds each SYN and
//! decides through `synack::tokio::ForwardListener` — what a tun2socks-style proxy does
//! after trying the original destination upstream. Port 80 is accepted (and answered in
//! upper case, where a proxy would copy bytes to the upstream socket), port 443 refused with
//! a RST, anything else with ICMP host unreachable. Exits 0 when every client saw the
//! outcome it should.
//!
//! ```sh
//! cargo run -p synack --example tokio_forward
//! ```

use std::io;
use std::process::ExitCode;

use synack::net::Runtime;
use synack::stack::{ForwardConfig, Refusal, Unreachable};
use synack::tokio::{ForwardListener, TcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokio_forward: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> io::Result<()> {
    let rt = Runtime::builder()
        .host("client", "198.18.0.1/24")
        .host("gateway", "198.18.0.2/24")
        .build_tokio()?;
    let (client, gateway) = (rt.host("client").unwrap(), rt.host("gateway").unwrap());
    let cfg = ForwardConfig {
        prefixes: vec!["198.18.0.0/24".parse().map_err(io::Error::other)?],
        ..ForwardConfig::default()
    };
    let flows = ForwardListener::bind_on(&gateway, cfg).await?;
    tokio::spawn(async move {
        while let Ok(flow) = flows.accept().await {
            let (src, dst) = (flow.source(), flow.destination());
            let r = match dst.port() {
                80 => {
                    println!("{src} -> {dst}: accept");
                    match flow.accept().await {
                        Ok(s) => {
                            tokio::spawn(upper_case(s));
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                }
                443 => {
                    println!("{src} -> {dst}: refuse (RST)");
                    flow.refuse(Refusal::Reset).await
                }
                _ => {
                    println!("{src} -> {dst}: refuse (ICMP host unreachable)");
                    flow.refuse(Refusal::Unreachable(Unreachable::Host)).await
                }
            };
            if let Err(e) = r {
                eprintln!("{src} -> {dst}: {e}");
            }
        }
    });

    let mut web = TcpStream::connect_on(&client, "198.18.0.80:80").await?;
    web.write_all(b"hello through the forwarder").await?;
    web.shutdown().await?;
    let mut back = Vec::new();
    web.read_to_end(&mut back).await?;
    println!("client read: {:?}", String::from_utf8_lossy(&back));
    if back != b"HELLO THROUGH THE FORWARDER" {
        return Err(io::Error::other(
            "the accepted flow's bytes came back wrong",
        ));
    }
    for (to, want) in [
        ("198.18.0.81:443", io::ErrorKind::ConnectionRefused),
        ("198.18.0.82:22", io::ErrorKind::HostUnreachable),
    ] {
        match TcpStream::connect_on(&client, to).await {
            Err(e) if e.kind() == want => println!("client's connect to {to}: {e}"),
            Err(e) => return Err(io::Error::other(format!("{to}: {e}, expected {want}"))),
            Ok(_) => {
                return Err(io::Error::other(format!(
                    "{to}: connected, expected {want}"
                )));
            }
        }
    }
    Ok(())
}

/// The accepted flow's "upstream": its bytes back in upper case, until the client's FIN.
async fn upper_case(mut s: TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return s.shutdown().await;
        }
        s.write_all(&buf[..n].to_ascii_uppercase()).await?;
    }
}
