//! What the manager tests share: raw clients speaking the manager's wire format by
//! hand (`manager/auth.rs`, `manager/protocol.rs`, mirrored), and finding the server
//! process through `/proc`.
#![allow(dead_code)] // each test binary uses a different part

use crate::common::{LIMIT, eventually};
use concur_process::Address;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

// ------------------------------------------------ raw clients

/// A raw stream to a manager's address (the default abstract name, a path or TCP),
/// as a `File` so that both socket kinds read and write alike; reads time out after
/// `timeout`.
pub(crate) fn raw_connect(address: &Address, timeout: Duration) -> File {
    let fd = match address {
        Address::Tcp(a) => {
            let s = TcpStream::connect(a).expect("tcp connect");
            s.set_read_timeout(Some(timeout)).expect("timeout");
            OwnedFd::from(s)
        }
        Address::Unix(p) => {
            let s = match p.to_str().and_then(|s| s.strip_prefix('@')) {
                Some(name) => {
                    use std::os::linux::net::SocketAddrExt;
                    let a = std::os::unix::net::SocketAddr::from_abstract_name(name)
                        .expect("abstract address");
                    UnixStream::connect_addr(&a).expect("unix connect")
                }
                None => UnixStream::connect(p).expect("unix connect"),
            };
            s.set_read_timeout(Some(timeout)).expect("timeout");
            OwnedFd::from(s)
        }
    };
    File::from(fd)
}

/// Reads until the server closes the connection (EOF or a reset); panics if the read
/// times out instead (the server kept the connection open). Returns the time taken.
pub(crate) fn expect_closed(s: &mut File, what: &str) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return start.elapsed(),
            Ok(_) => continue, // the challenge, an error reply: read on
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!(
                    "{what}: the server kept the connection open for {:?}",
                    start.elapsed()
                )
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return start.elapsed(), // ECONNRESET: closed with our bytes unread
        }
    }
}

/// A frame of the wire format: u32 LE length, u16 LE descriptor count, u16 flags, body.
pub(crate) fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + body.len());
    f.extend_from_slice(&(body.len() as u32).to_le_bytes());
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(body);
    f
}

pub(crate) fn read_frame(s: &mut File) -> Vec<u8> {
    let mut h = [0u8; 8];
    s.read_exact(&mut h).expect("frame header");
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    assert_eq!(&h[4..], &[0, 0, 0, 0], "no descriptors, no flags");
    assert!(len < 1 << 20, "a reply of {len} bytes");
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).expect("frame body");
    body
}

/// Deterministic noise (xorshift64*), so a failure can be replayed.
pub(crate) fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

// ---- the wire format of `manager/auth.rs` and `manager/protocol.rs`, mirrored

#[derive(Serialize, Deserialize, Debug)]
pub(crate) enum Msg {
    Challenge([u8; 32]),
    Answer(Vec<u8>),
    Welcome,
    Failure,
    /// Why the server will not go on: a `Refusal` by variant index.
    Refused(u32),
}

#[derive(Serialize)]
pub(crate) struct FakeIdentity {
    pub(crate) exe: [u64; 5],
    pub(crate) version: String,
    pub(crate) layout: [i64; 2],
}

#[derive(Serialize)]
pub(crate) struct Hello {
    pub(crate) identity: FakeIdentity,
}

#[derive(Serialize)]
pub(crate) enum Request {
    #[allow(dead_code, reason = "mirrors the server's enum: variant order matters")]
    Create {
        kind: u32,
        tag: String,
        init: Vec<u8>,
    },
    Attach {
        id: u64,
        tag: String,
    },
    Call {
        id: u64,
        op: Vec<u8>,
    },
}

/// The server's error kinds, by variant index (`manager/error.rs`).
pub(crate) const KIND_MISSING: u32 = 0;
pub(crate) const KIND_BAD_REQUEST: u32 = 5;
pub(crate) const KIND_OVERLOADED: u32 = 12;

/// `auth::Refusal` variants, by index.
pub(crate) const REFUSAL_TOO_MANY: u32 = 0;
pub(crate) const REFUSAL_OVERLOADED: u32 = 1;
pub(crate) const REFUSAL_HANDSHAKE_TIMEOUT: u32 = 2;

pub(crate) type Reply = Result<Vec<u8>, (u32, String)>;

pub(crate) fn hmac(key: &[u8], challenge: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    m.update(challenge);
    m.finalize().into_bytes().to_vec()
}

pub(crate) fn send(s: &mut File, body: &[u8]) {
    s.write_all(&frame(body)).expect("send");
}

pub(crate) fn recv_msg(s: &mut File) -> Msg {
    postcard::from_bytes(&read_frame(s)).expect("an auth message")
}

/// Authenticates a raw stream as a client does (answer the server's challenge, then
/// challenge it) and says hello as a process of another binary.
pub(crate) fn raw_authenticate(s: &mut File, key: &[u8]) {
    let Msg::Challenge(c) = recv_msg(s) else {
        panic!("the server did not challenge first")
    };
    raw_authenticate_challenged(s, key, c);
}

/// [`raw_authenticate`] once the server's challenge `c` has been read.
pub(crate) fn raw_authenticate_challenged(s: &mut File, key: &[u8], c: [u8; 32]) {
    send(
        s,
        &postcard::to_stdvec(&Msg::Answer(hmac(key, &c))).unwrap(),
    );
    assert!(
        matches!(recv_msg(s), Msg::Welcome),
        "our answer was refused"
    );
    let mine = [7u8; 32];
    send(s, &postcard::to_stdvec(&Msg::Challenge(mine)).unwrap());
    let Msg::Answer(a) = recv_msg(s) else {
        panic!("the server did not answer our challenge")
    };
    assert_eq!(a, hmac(key, &mine), "the server does not know the key");
    send(s, &postcard::to_stdvec(&Msg::Welcome).unwrap());
    let hello = Hello {
        identity: FakeIdentity {
            exe: [0; 5],
            version: "another binary".into(),
            layout: [0; 2],
        },
    };
    send(s, &postcard::to_stdvec(&hello).unwrap());
}

pub(crate) fn raw_reply(s: &mut File) -> Reply {
    postcard::from_bytes(&read_frame(s)).expect("a reply")
}

/// Peak virtual size of `pid` in KiB (`VmPeak`).
pub(crate) fn vm_peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmPeak:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmPeak")
}

/// The pid of the process listening on `address` (an abstract Unix name), found
/// through `/proc/net/unix` (its listening socket's inode) and the descriptor tables
/// of `/proc/*/fd`; only processes named `concur-manager` count. Polls (bounded): a
/// server just started may not have named itself yet.
pub(crate) fn server_pid(address: &Address) -> Option<u32> {
    let mut pid = None;
    eventually(LIMIT, || {
        pid = find_server_pid(address);
        pid.is_some()
    });
    pid
}

pub(crate) fn find_server_pid(address: &Address) -> Option<u32> {
    let name = address.to_string();
    let table = std::fs::read_to_string("/proc/net/unix").ok()?;
    // Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 = listening.
    let inode = table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 8 && f[3] == "00010000" && f[7] == name).then(|| f[6].to_owned())
    })?;
    let target = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() != "concur-manager" {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.to_str() == Some(target.as_str())) {
                return Some(pid);
            }
        }
    }
    None
}
