//! The scenarios, one module each (two for the open and close pairs), and what they share.

mod half_open;
mod handshake;
mod keepalive;
mod loss;
mod old_syn;
mod reset;
mod simultaneous;
mod syn_flood;
mod time_wait;
mod zero_window;

use core::net::Ipv4Addr;

use super::Scenario;
pub(super) use super::lab::errno;
use super::lab::{Lab, PORT};
use crate::stack::SocketHandle;
use crate::tcp::Config;
use crate::time::Duration;

/// Every scenario, in the order a learner might take them.
pub(super) static ALL: &[Scenario] = &[
    handshake::SCENARIO,
    old_syn::SCENARIO,
    simultaneous::OPEN,
    simultaneous::CLOSE,
    half_open::SCENARIO,
    syn_flood::SCENARIO,
    keepalive::SCENARIO,
    loss::SCENARIO,
    time_wait::SCENARIO,
    zero_window::SCENARIO,
    reset::SCENARIO,
];

pub(super) const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub(super) const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

/// A client and a server (listening on port 80); returns the lab, the two host indexes and
/// the listener.
pub(super) fn client_server(
    seed: u64,
    client: Config,
    server: Config,
) -> Result<(Lab, usize, usize, SocketHandle), String> {
    client_server_on(Lab::new(seed), client, server)
}

/// [`client_server`] in `lab` (which may have links of its own, see [`Lab::set_link`]).
pub(super) fn client_server_on(
    mut lab: Lab,
    client: Config,
    server: Config,
) -> Result<(Lab, usize, usize, SocketHandle), String> {
    let c = lab.host("client", CLIENT_ADDR, client);
    let s = lab.host("server", SERVER_ADDR, server);
    let addr = lab.sock(s, PORT);
    let listener = lab.stack(s).listen(addr, 16).map_err(|e| e.to_string())?;
    Ok((lab, c, s, listener))
}

/// Host `h`'s application on connection `sock`: once the peer's FIN has arrived it waits
/// `pause` (it has other things to do), reads the end of the stream (`recv() = 0`) and, if
/// `close`, closes the socket.
pub(super) fn read_eof(
    lab: &mut Lab,
    h: usize,
    sock: SocketHandle,
    pause: Duration,
    close: bool,
) -> Result<(), String> {
    let fin = lab.run_until(Duration::from_secs(10), |lab| {
        lab.stack(h)
            .connection(sock)
            .is_some_and(|x| x.peer_closed())
    });
    if !fin {
        return Err("the peer's FIN did not arrive".into());
    }
    lab.run_for(pause);
    let now = lab.now;
    let mut buf = [0u8; 64];
    let eof = lab
        .stack(h)
        .recv(now, sock, &mut buf)
        .map_err(|e| e.to_string())?;
    lab.call(h, format!("recv() = {eof}"));
    if close {
        lab.stack(h).close(now, sock);
        lab.call(h, "close() = 0");
    }
    Ok(())
}

/// Host `c` connects to host `s`'s port 80 (from an ephemeral port) and the lab runs until
/// the connection is established and accepted; see [`finish_connect`].
pub(super) fn connect(
    lab: &mut Lab,
    c: usize,
    s: usize,
    listener: SocketHandle,
) -> Result<(SocketHandle, SocketHandle), String> {
    connect_to(lab, c, s, PORT, listener)
}

/// [`connect`] to `port`.
pub(super) fn connect_to(
    lab: &mut Lab,
    c: usize,
    s: usize,
    port: u16,
    listener: SocketHandle,
) -> Result<(SocketHandle, SocketHandle), String> {
    let to = lab.sock(s, port);
    let now = lab.now;
    let h = lab
        .stack(c)
        .connect(now, to, None)
        .map_err(|e| e.to_string())?;
    let a = finish_connect(lab, c, s, h, listener)?;
    Ok((h, a))
}

/// Runs until connection `h` of host `c` is established (recording `connect(…) = 0`) and
/// host `s` has accepted it from `listener` (recording `accept() = …`); returns the accepted
/// handle.
pub(super) fn finish_connect(
    lab: &mut Lab,
    c: usize,
    s: usize,
    h: SocketHandle,
    listener: SocketHandle,
) -> Result<SocketHandle, String> {
    let established = lab.run_until(Duration::from_secs(10), |lab| {
        lab.stack(c)
            .connection(h)
            .is_some_and(|x| x.state().is_synchronized())
    });
    let to = lab
        .stack(c)
        .connection(h)
        .map(|x| x.remote())
        .ok_or("the connection is gone")?;
    if !established {
        return Err(format!("no connection to {to} within 10 s"));
    }
    lab.call(c, format!("connect({to}) = 0"));
    let mut accepted = None;
    lab.run_until(Duration::from_secs(10), |lab| {
        accepted = lab.stack(s).accept(listener).ok().flatten();
        accepted.is_some()
    });
    let a = accepted.ok_or("the server accepted no connection")?;
    let peer = lab.stack(s).connection(a).map(|x| x.remote());
    if let Some(peer) = peer {
        lab.call(s, format!("accept() = {peer}"));
    }
    Ok(a)
}
