//! Requests a key holder could forge, sent through the crate's own client (which says
//! hello with this binary's real identity, as a replayed `Hello` would).

use super::Manager;
use super::client::Client;
use super::protocol::{Request, encode};

/// `DictOp` as a client of the previous protocol sent it (a function offset), and as
/// one now sends it (a table key): the variant order mirrors `objects/dict.rs`.
#[derive(serde::Serialize)]
#[allow(dead_code, reason = "mirrors the server's enum: variant order matters")]
enum ForgedDictOp {
    Get(Vec<u8>),
    Insert(Vec<u8>, Vec<u8>),
    Remove(Vec<u8>),
    Contains(Vec<u8>),
    Len,
    Keys,
    Values,
    Items,
    Clear,
    Update(Vec<u8>, String),
}

#[derive(serde::Serialize)]
#[allow(dead_code, reason = "mirrors the server's enum: variant order matters")]
enum OldDictOp {
    Get(Vec<u8>),
    Insert(Vec<u8>, Vec<u8>),
    Remove(Vec<u8>),
    Contains(Vec<u8>),
    Len,
    Keys,
    Values,
    Items,
    Clear,
    Update(Vec<u8>, i64),
}

fn bump(n: Option<u64>) -> u64 {
    n.unwrap_or(0) + 1
}

/// The issue-14 attack: a key holder replays a client's `Hello` (here the crate's own
/// client sends this binary's real identity) and names a function the server never
/// registered: a shifted key, a made-up one, and the old wire format's raw offset
/// (legitimate + 1 aborted the server before). Each gets a typed error; the server
/// keeps its state and serves another client throughout.
#[test]
fn a_forged_update_key_is_a_typed_error_and_the_server_goes_on() {
    let m = Manager::start().unwrap();
    let d = m.dict::<u8, u64>().unwrap();
    d.insert(1, 5).unwrap();
    let other = m.dict_by_id::<u8, u64>(d.id()).unwrap();
    let legit = super::objects::dict::update_key(bump);
    let c = Client::new(m.address().clone(), m.authkey().clone());
    let k = encode(&1u8).unwrap();
    let forged = [
        format!("{legit}x"),
        legit.replace("dict:", "value:"),
        "dict:core::ptr::drop_in_place:u64".to_owned(),
        String::new(),
    ];
    for f in forged {
        let op = encode(&ForgedDictOp::Update(k.clone(), f.clone())).unwrap();
        let e = c.request(&Request::Call { id: d.id(), op }).unwrap_err();
        assert!(e.is_remote(), "{f:?}: {e:?}");
        assert!(e.to_string().contains("no update function"), "{e}");
        assert!(
            other.update(1, bump).unwrap() > 5,
            "served during the attack"
        );
    }
    for offset in [1i64, -1, i64::MAX, 0x1000] {
        let op = encode(&OldDictOp::Update(k.clone(), offset)).unwrap();
        let e = c.request(&Request::Call { id: d.id(), op }).unwrap_err();
        assert!(e.is_bad_request() || e.is_remote(), "{offset}: {e:?}");
    }
    // The same connection still works, and so does the legitimate key.
    let op = encode(&ForgedDictOp::Update(k.clone(), legit)).unwrap();
    let new: u64 = super::protocol::decode(
        &super::protocol::decode::<Vec<u8>>(&c.request(&Request::Call { id: d.id(), op }).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(new, 10, "5, four bumps by the other client, then this one");
    assert_eq!(d.get(&1).unwrap(), Some(10), "the server lost its state");
    m.shutdown().unwrap();
}
