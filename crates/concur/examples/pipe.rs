//! Seed: `multiprocessing.Pipe` between a parent and a child process — objects both
//! ways, raw bytes, and end-of-file once the child is gone.
//!
//! Python:
//! ```python
//! from multiprocessing import Pipe, Process
//! def worker(conn):
//!     order = conn.recv()                       # any picklable object
//!     conn.send({"id": order["id"], "total": order["qty"] * order["price"]})
//!     conn.send_bytes(conn.recv_bytes()[::-1])
//!     conn.close()
//! if __name__ == "__main__":
//!     parent, child = Pipe()                    # duplex
//!     p = Process(target=worker, args=(child,)); p.start()
//!     child.close()                             # only the child holds its end now
//!     parent.send({"id": 7, "qty": 3, "price": 250})
//!     print(parent.recv())
//!     parent.send_bytes(b"hello"); print(parent.recv_bytes())
//!     p.join()
//!     parent.recv()                             # raises EOFError
//! ```
//! Rust: values are any serde type (here two structs); the `Connection` is passed to the
//! child as an argument (its socket travels with it). End-of-file is a typed error:
//! `ConnectionError::is_eof()`.
//!
//! Run: `cargo run --release -p concur --example pipe`

use concur::process::{Connection, Pipe, Process};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What the parent sends.
#[derive(Debug, Serialize, Deserialize)]
struct Order {
    id: u32,
    item: String,
    qty: u32,
    price_cents: u64,
}

/// What the child answers.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Invoice {
    id: u32,
    line: String,
    total_cents: u64,
    child_pid: u32,
}

/// Runs in the child: answers one order with an invoice, echoes one byte message
/// reversed, and returns how many messages it handled.
fn worker(conn: Connection) -> u32 {
    let order: Order = conn.recv().expect("an order");
    let invoice = Invoice {
        id: order.id,
        line: format!("{} x {}", order.qty, order.item),
        total_cents: u64::from(order.qty) * order.price_cents,
        child_pid: std::process::id(),
    };
    conn.send(&invoice).expect("send the invoice");
    let mut bytes = conn.recv_bytes().expect("a byte message");
    bytes.reverse();
    conn.send_bytes(&bytes).expect("send the bytes back");
    2
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (parent, child) = Pipe::duplex()?;
    let p = Process::spawn(worker, child)?; // `child` moves into the arguments: sent, then closed here
    let pid = p.pid().expect("started");

    parent.send(&Order {
        id: 7,
        item: "widget".to_owned(),
        qty: 3,
        price_cents: 250,
    })?;
    let invoice: Invoice = parent.recv_timeout(Duration::from_secs(30))?;
    assert_eq!(
        invoice,
        Invoice {
            id: 7,
            line: "3 x widget".to_owned(),
            total_cents: 750,
            child_pid: pid,
        }
    );
    println!("struct out, struct back: {invoice:?}");

    parent.send_bytes(b"hello")?;
    let reply = parent.recv_bytes_timeout(Duration::from_secs(30))?;
    assert_eq!(reply, b"olleh");
    println!(
        "bytes out, bytes back:   {:?}",
        String::from_utf8_lossy(&reply)
    );

    assert_eq!(p.join()?, 2, "the child handled both messages");
    // The child has exited and was the only holder of the other end: end of file.
    assert!(parent.poll(Duration::from_secs(5))?, "EOF is readable");
    let err = parent
        .recv::<Invoice>()
        .expect_err("nothing more can come: the other end is closed");
    assert!(err.is_eof(), "a typed end-of-file, not {err}");
    println!("after the child exited:  recv -> Err({err}); is_eof() = true");
    Ok(())
}
