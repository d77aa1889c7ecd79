//! Pipe and Connection behaviour, ported from CPython's
//! `Lib/test/_test_multiprocessing.py` (`_TestConnection`: `test_connection`,
//! `test_duplex_false`, `test_spawn_close`, `test_sendbytes`, `test_fd_transfer`), plus
//! framing cases of our own (boundaries, partial frames, limits, descriptors).

mod common;

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::{LIMIT, within};
use concur_process::{Connection, Pipe, Process};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Record {
    id: u64,
    name: String,
    tags: Vec<String>,
    score: Option<f64>,
}

fn record(i: u64) -> Record {
    Record {
        id: i,
        name: format!("record {i}"),
        tags: vec!["a".into(); (i % 4) as usize],
        score: i.is_multiple_of(2).then_some(i as f64 / 3.0),
    }
}

/// A raw peer: our connection on one end, a plain Unix stream on the other.
fn raw_pair() -> (Connection, UnixStream) {
    let (mine, theirs) = UnixStream::pair().unwrap();
    (Connection::from_fd(OwnedFd::from(mine)), theirs)
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_le_bytes().to_vec();
    v.extend_from_slice(&[0, 0, 0, 0]);
    v.extend_from_slice(body);
    v
}

#[test]
fn send_and_recv_keep_message_boundaries() {
    within(LIMIT, "boundaries", || {
        let (a, b) = Pipe::duplex().unwrap();
        let msgs: Vec<Vec<u8>> = (0..200).map(|i| vec![i as u8; i * 7 % 300]).collect();
        for m in &msgs {
            a.send_bytes(m).unwrap();
        }
        for m in &msgs {
            assert_eq!(&b.recv_bytes().unwrap(), m);
        }
        assert!(b.try_recv_bytes().unwrap_err().is_timeout());
    });
}

#[test]
fn structs_round_trip_both_ways() {
    within(LIMIT, "structs", || {
        let (a, b) = Pipe::duplex().unwrap();
        for i in 0..50 {
            a.send(&record(i)).unwrap();
            let got: Record = b.recv().unwrap();
            assert_eq!(got, record(i));
            b.send(&(i, got.name.clone())).unwrap();
            assert_eq!(a.recv::<(u64, String)>().unwrap(), (i, got.name));
        }
        // test_connection's `seq = [1, 2.25, None]`, as a tuple here.
        a.send(&(1i32, 2.25f64, None::<u8>)).unwrap();
        assert_eq!(b.recv::<(i32, f64, Option<u8>)>().unwrap(), (1, 2.25, None));
    });
}

#[test]
fn sending_bytes_like_test_sendbytes() {
    within(LIMIT, "sendbytes", || {
        let msg = b"abcdefghijklmnopqrstuvwxyz";
        let (a, b) = Pipe::duplex().unwrap();
        a.send_bytes(msg).unwrap();
        assert_eq!(b.recv_bytes().unwrap(), msg);
        a.send_bytes(&msg[5..]).unwrap();
        assert_eq!(b.recv_bytes().unwrap(), &msg[5..]);
        a.send_bytes(&msg[7..15]).unwrap();
        assert_eq!(b.recv_bytes().unwrap(), &msg[7..15]);
        a.send_bytes(&msg[26..]).unwrap();
        assert_eq!(b.recv_bytes().unwrap(), b"");
    });
}

#[test]
fn a_16_mib_message_arrives_whole() {
    within(LIMIT, "big message", || {
        let (a, b) = Pipe::duplex().unwrap();
        let big: Vec<u8> = (0..16 << 20).map(|i: u32| (i % 251) as u8).collect();
        let expect = big.clone();
        let t = std::thread::spawn(move || a.send_bytes(&big).map(|()| a));
        assert_eq!(b.recv_bytes().unwrap(), expect);
        let a = t.join().unwrap().unwrap();
        // The connection is fine for small messages afterwards.
        a.send(&5u8).unwrap();
        assert_eq!(b.recv::<u8>().unwrap(), 5);
        // And a big serde value too.
        let v: Vec<u64> = (0..1 << 20).collect();
        let w = v.clone();
        let t = std::thread::spawn(move || a.send(&w).unwrap());
        assert_eq!(b.recv::<Vec<u64>>().unwrap(), v);
        t.join().unwrap();
    });
}

#[test]
fn peer_closed_is_eof_after_the_last_message() {
    within(LIMIT, "eof", || {
        let (a, b) = Pipe::duplex().unwrap();
        a.send(&1u8).unwrap();
        a.send_bytes(b"last").unwrap();
        drop(a);
        assert!(b.readable() && b.writable());
        assert_eq!(b.recv::<u8>().unwrap(), 1);
        assert_eq!(b.recv_bytes().unwrap(), b"last");
        assert!(b.recv::<u8>().unwrap_err().is_eof());
        assert!(b.recv_bytes().unwrap_err().is_eof());
        assert!(b.try_recv_bytes().unwrap_err().is_eof());
        assert!(b.send(&1u8).unwrap_err().is_eof());
    });
}

#[test]
fn eof_in_the_middle_of_a_message_is_eof_not_a_hang() {
    within(LIMIT, "truncated", || {
        let (conn, mut raw) = raw_pair();
        let f = frame(b"0123456789");
        raw.write_all(&f[..12]).unwrap();
        drop(raw);
        let e = conn.recv_bytes().unwrap_err();
        assert!(e.is_eof(), "{e}");
        assert!(e.to_string().contains("middle"), "{e}");
    });
}

#[test]
fn one_way_pipe_like_test_duplex_false() {
    within(LIMIT, "duplex false", || {
        let (reader, writer) = Pipe::new(false).unwrap();
        writer.send(&1i32).unwrap();
        assert_eq!(reader.recv::<i32>().unwrap(), 1);
        assert!(reader.readable() && !reader.writable());
        assert!(!writer.readable() && writer.writable());
        assert!(reader.send(&2i32).unwrap_err().is_wrong_direction());
        assert!(writer.recv::<i32>().unwrap_err().is_wrong_direction());
        assert!(
            writer
                .poll(Duration::ZERO)
                .unwrap_err()
                .is_wrong_direction()
        );
        drop(writer);
        assert!(reader.recv::<i32>().unwrap_err().is_eof());
    });
}

#[test]
fn poll_with_timeout_like_test_connection() {
    within(LIMIT, "poll", || {
        let (a, b) = Pipe::duplex().unwrap();
        assert!(!b.poll(Duration::ZERO).unwrap());
        let t1 = Instant::now();
        assert!(!b.poll(Duration::from_millis(100)).unwrap());
        assert!(t1.elapsed() >= Duration::from_millis(100));
        a.send(&None::<u8>).unwrap();
        assert!(b.poll(Duration::from_secs(10)).unwrap());
        // Polling again does not consume it.
        assert!(b.poll(Duration::ZERO).unwrap());
        assert_eq!(b.recv::<Option<u8>>().unwrap(), None);
        assert!(!b.poll(Duration::ZERO).unwrap());
        // A message that arrives during the wait ends it.
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            a.send(&3u8).unwrap();
            a
        });
        assert!(b.poll(Duration::from_secs(10)).unwrap());
        assert_eq!(b.recv::<u8>().unwrap(), 3);
        drop(t.join().unwrap());
        assert!(b.poll(Duration::from_secs(10)).unwrap(), "EOF is ready too");
    });
}

#[test]
fn poll_is_false_until_a_frame_is_complete() {
    within(LIMIT, "poll partial", || {
        let (conn, mut raw) = raw_pair();
        let f = frame(b"hello");
        raw.write_all(&f[..6]).unwrap();
        assert!(!conn.poll(Duration::from_millis(20)).unwrap());
        raw.write_all(&f[6..]).unwrap();
        assert!(conn.poll(Duration::from_secs(10)).unwrap());
        assert_eq!(conn.recv_bytes().unwrap(), b"hello");
    });
}

#[test]
fn timeouts_keep_a_partial_message() {
    within(LIMIT, "partial", || {
        let (conn, mut raw) = raw_pair();
        let body: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let f = frame(&body);
        // Header and part of the body, then a timeout, then the rest.
        raw.write_all(&f[..5]).unwrap();
        assert!(conn.try_recv_bytes().unwrap_err().is_timeout());
        raw.write_all(&f[5..40_000]).unwrap();
        let t = Instant::now();
        let e = conn
            .recv_bytes_timeout(Duration::from_millis(30))
            .unwrap_err();
        assert!(e.is_timeout());
        assert!(t.elapsed() >= Duration::from_millis(30));
        let deadline = Instant::now() + Duration::from_millis(10);
        assert!(conn.recv_bytes_deadline(deadline).unwrap_err().is_timeout());
        raw.write_all(&f[40_000..]).unwrap();
        assert_eq!(
            conn.recv_bytes_timeout(Duration::from_secs(10)).unwrap(),
            body
        );
    });
}

#[test]
fn recv_forms_deliver_values() {
    within(LIMIT, "recv forms", || {
        let (a, b) = Pipe::duplex().unwrap();
        for i in 0..4u32 {
            a.send(&i).unwrap();
        }
        assert_eq!(b.recv::<u32>().unwrap(), 0);
        assert_eq!(b.try_recv::<u32>().unwrap(), 1);
        assert_eq!(b.recv_timeout::<u32>(Duration::from_secs(5)).unwrap(), 2);
        let d = Instant::now() + Duration::from_secs(5);
        assert_eq!(b.recv_deadline::<u32>(d).unwrap(), 3);
        // A huge timeout means forever, and does not overflow.
        a.send(&9u32).unwrap();
        assert_eq!(b.recv_timeout::<u32>(Duration::MAX).unwrap(), 9);
        assert!(b.try_recv::<u32>().unwrap_err().is_timeout());
    });
}

#[test]
fn a_wrong_type_is_a_decode_error_and_the_stream_goes_on() {
    within(LIMIT, "decode", || {
        let (a, b) = Pipe::duplex().unwrap();
        a.send(&"not a number, a string").unwrap();
        a.send(&7u64).unwrap();
        a.send(&(1u8, 2u8)).unwrap();
        assert!(b.recv::<Record>().unwrap_err().is_decode());
        assert_eq!(b.recv::<u64>().unwrap(), 7);
        // Trailing bytes are not ignored: (1, 2) is not a u8.
        assert!(b.recv::<u8>().unwrap_err().is_decode());
    });
}

#[test]
fn max_frame_is_enforced_before_allocating() {
    within(LIMIT, "max frame", || {
        let (conn, mut raw) = raw_pair();
        conn.set_max_frame(1024);
        // Claims 4 GiB - 1; must fail at once, not allocate or wait for the bytes.
        raw.write_all(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])
            .unwrap();
        let e = conn.recv_bytes().unwrap_err();
        assert!(e.is_too_large(), "{e}");
        // The stream is no longer trusted: the error sticks.
        raw.write_all(&frame(b"ok")).unwrap();
        assert!(conn.recv_bytes().unwrap_err().is_too_large());
        assert!(conn.poll(Duration::ZERO).unwrap());
        // The sender side refuses too.
        let (a, _b) = Pipe::duplex().unwrap();
        a.set_max_frame(3);
        assert!(a.send(&"long string").unwrap_err().is_too_large());
        a.send_bytes(b"abc").unwrap();
    });
}

#[test]
fn malformed_headers_are_errors() {
    within(LIMIT, "malformed", || {
        // Nonzero reserved flags.
        let (conn, mut raw) = raw_pair();
        raw.write_all(&[1, 0, 0, 0, 0, 0, 0, 1, 9]).unwrap();
        assert!(conn.recv_bytes().unwrap_err().is_malformed());
        // Too many descriptors announced.
        let (conn, mut raw) = raw_pair();
        raw.write_all(&[0, 0, 0, 0, 0xff, 0, 0, 0]).unwrap();
        assert!(conn.recv::<()>().unwrap_err().is_malformed());
        // Descriptors announced that never came.
        let (conn, mut raw) = raw_pair();
        raw.write_all(&[0, 0, 0, 0, 2, 0, 0, 0]).unwrap();
        let e = conn.recv_bytes().unwrap_err();
        assert!(
            e.is_malformed() && e.to_string().contains("descriptors"),
            "{e}"
        );
    });
}

#[test]
fn concurrent_senders_never_interleave_messages() {
    within(LIMIT, "concurrent senders", || {
        let (a, b) = Pipe::duplex().unwrap();
        let a = std::sync::Arc::new(a);
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let a = a.clone();
                std::thread::spawn(move || {
                    for i in 0..200usize {
                        a.send_bytes(&vec![t; 1 + (i * 977) % 70_000]).unwrap();
                    }
                })
            })
            .collect();
        for _ in 0..800 {
            let m = b.recv_bytes().unwrap();
            assert!(m.iter().all(|&x| x == m[0]), "an interleaved message");
        }
        for t in threads {
            t.join().unwrap();
        }
    });
}

#[test]
fn a_connection_travels_inside_a_message_with_its_buffered_data() {
    within(LIMIT, "connection in a message", || {
        let (a, b) = Pipe::duplex().unwrap();
        let (x, y) = Pipe::duplex().unwrap();
        // y has two messages waiting; receive one so the other may sit in its buffer.
        x.send(&1u8).unwrap();
        x.send(&2u8).unwrap();
        assert_eq!(y.recv::<u8>().unwrap(), 1);
        a.send(&("here", &y)).unwrap();
        drop(y);
        let (label, y2): (String, Connection) = b.recv().unwrap();
        assert_eq!(label, "here");
        assert_eq!(y2.recv::<u8>().unwrap(), 2);
        x.send(&3u8).unwrap();
        assert_eq!(y2.recv::<u8>().unwrap(), 3);
        y2.send(&"back").unwrap();
        assert_eq!(x.recv::<String>().unwrap(), "back");
        drop(x);
        assert!(y2.recv::<u8>().unwrap_err().is_eof());
    });
}

#[test]
fn descriptors_queued_behind_a_message_are_not_lost() {
    within(LIMIT, "fd queue", || {
        // Several messages with descriptors, sent before any is received, so one read
        // may take in the next message's header with its descriptors.
        let (a, b) = Pipe::duplex().unwrap();
        let mut keep = Vec::new();
        for i in 0..20u32 {
            let (x, y) = Pipe::duplex().unwrap();
            a.send(&(i, x)).unwrap();
            keep.push(y);
        }
        for (i, y) in keep.iter().enumerate() {
            let (j, x): (u32, Connection) = b.recv().unwrap();
            assert_eq!(j as usize, i);
            x.send(&j).unwrap();
            assert_eq!(y.recv::<u32>().unwrap(), j);
        }
    });
}

#[test]
fn plain_postcard_refuses_a_connection() {
    let (a, _b) = Pipe::duplex().unwrap();
    assert!(postcard::to_stdvec(&a).is_err());
}

#[test]
fn as_fd_is_the_socket() {
    let (a, _b) = Pipe::duplex().unwrap();
    assert!(rustix::fs::fstat(a.as_fd()).is_ok());
    assert!(format!("{a:?}").contains("readable: true"));
}

fn echo(conn: Connection) -> u32 {
    let mut n = 0;
    loop {
        match conn.recv_bytes() {
            Ok(m) if m == b"SENTINEL" => return n,
            Ok(m) => {
                conn.send_bytes(&m).unwrap();
                n += 1;
            }
            Err(e) => panic!("echo child: {e}"),
        }
    }
}

#[test]
fn test_connection_with_an_echo_child() {
    within(LIMIT, "echo child", || {
        let (conn, child_conn) = Pipe::duplex().unwrap();
        let p = Process::builder()
            .daemon(true)
            .spawn(echo, child_conn)
            .unwrap();
        // test_spawn_close: the parent's copy may go right after the start.
        conn.send(&(1i32, 2.25f64, None::<u8>)).unwrap();
        let bytes = conn.recv_bytes().unwrap();
        assert_eq!(
            postcard::from_bytes::<(i32, f64, Option<u8>)>(&bytes).unwrap(),
            (1, 2.25, None)
        );
        conn.send_bytes(b"hello world").unwrap();
        assert_eq!(conn.recv_bytes().unwrap(), b"hello world");
        assert!(!conn.poll(Duration::ZERO).unwrap());
        let big = vec![b'X'; 16 << 20];
        conn.send_bytes(&big).unwrap();
        assert_eq!(conn.recv_bytes().unwrap(), big);
        conn.send_bytes(b"SENTINEL").unwrap();
        assert_eq!(p.join().unwrap(), 3);
        assert!(conn.recv_bytes().unwrap_err().is_eof());
    });
}

/// A value of `n` bytes that counts how many of them were encoded.
struct Counted {
    n: u64,
    encoded: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Serialize for Counted {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.n as usize))?;
        for _ in 0..self.n {
            self.encoded
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            seq.serialize_element(&0xA5u8)?;
        }
        seq.end()
    }
}

/// Issue 14: a value over the limit is refused as soon as its encoding passes the
/// limit, not after all of it is encoded (a 256 MiB value against 1 MiB encodes about
/// 1 MiB); nothing reaches the peer and the connection goes on.
#[test]
fn an_oversized_value_is_refused_when_its_encoding_passes_the_limit() {
    within(LIMIT, "capped send", || {
        let (a, b) = Pipe::duplex().unwrap();
        a.set_max_frame(1 << 20);
        let encoded = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let big = Counted {
            n: 256 << 20,
            encoded: encoded.clone(),
        };
        let t0 = Instant::now();
        let e = a.send(&big).unwrap_err();
        let took = t0.elapsed();
        assert!(e.is_too_large(), "{e:?}");
        let n = encoded.load(std::sync::atomic::Ordering::Relaxed);
        println!("refused a 256 MiB value after encoding {n} bytes in {took:?}");
        assert!(
            n <= (1 << 20) + 16,
            "{n} bytes encoded before the 1 MiB limit was noticed"
        );
        assert!(
            b.try_recv_bytes().unwrap_err().is_timeout(),
            "something was sent"
        );
        a.send(&7u8).unwrap();
        assert_eq!(b.recv::<u8>().unwrap(), 7);
    });
}
