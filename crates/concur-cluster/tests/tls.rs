//! `rediss://`: an executor and a worker talking to a TLS-only `redis-server` (a
//! self-signed certificate made for the test with `openssl`), trusting its
//! certificate; without that trust, or in the clear, the connection is refused.
#![cfg(feature = "tls")]

mod support;

use std::process::Command;
use std::time::Duration;

use concur_cluster::{LocalExecutor, RedisExecutor, RedisServer, Worker};
use concur_core::futures::Executor;
use support::{pool, within};

fn double(x: u64) -> u64 {
    x * 2
}

#[test]
fn an_executor_and_a_worker_talk_over_tls() {
    within(Duration::from_secs(120), "tls", || {
        let dir = std::env::temp_dir().join(format!("concur-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (ca, ca_key) = (dir.join("ca.pem"), dir.join("ca.key"));
        let (cert, key, csr) = (
            dir.join("cert.pem"),
            dir.join("key.pem"),
            dir.join("req.csr"),
        );
        let ext = dir.join("ext.cnf");
        std::fs::write(
            &ext,
            "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let openssl = |args: &[&std::ffi::OsStr]| {
            let out = Command::new("openssl")
                .args(args)
                .output()
                .expect("openssl (Debian's openssl package)");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let os = |s: &'static str| std::ffi::OsStr::new(s);
        // A private CA, and a server certificate it signs for 127.0.0.1.
        openssl(&[
            os("req"),
            os("-x509"),
            os("-newkey"),
            os("rsa:2048"),
            os("-nodes"),
            os("-days"),
            os("1"),
            os("-subj"),
            os("/CN=concur test CA"),
            os("-keyout"),
            ca_key.as_os_str(),
            os("-out"),
            ca.as_os_str(),
        ]);
        openssl(&[
            os("req"),
            os("-newkey"),
            os("rsa:2048"),
            os("-nodes"),
            os("-subj"),
            os("/CN=127.0.0.1"),
            os("-keyout"),
            key.as_os_str(),
            os("-out"),
            csr.as_os_str(),
        ]);
        openssl(&[
            os("x509"),
            os("-req"),
            os("-in"),
            csr.as_os_str(),
            os("-CA"),
            ca.as_os_str(),
            os("-CAkey"),
            ca_key.as_os_str(),
            os("-CAcreateserial"),
            os("-days"),
            os("1"),
            os("-extfile"),
            ext.as_os_str(),
            os("-out"),
            cert.as_os_str(),
        ]);
        let pem = std::fs::read(&ca).unwrap();
        let redis = RedisServer::builder().tls(&cert, &key).start().unwrap();
        let url = redis.url();
        assert!(url.starts_with("rediss://"), "{url}");
        let p = pool("tls");
        // Not trusted: refused.
        let e = RedisExecutor::builder(&url, &p)
            .connect_timeout(Duration::from_secs(2))
            .connect()
            .unwrap_err();
        assert!(e.is_connection() || e.is_redis(), "{e}");
        // In the clear to a TLS port: refused.
        let clear = url.replacen("rediss://", "redis://", 1);
        assert!(
            RedisExecutor::builder(&clear, &p)
                .connect_timeout(Duration::from_secs(2))
                .connect()
                .is_err()
        );
        let w = Worker::builder(&url, &p)
            .slots(1)
            .local(LocalExecutor::Threads)
            .handle_sigterm(false)
            .tls_root_cert(pem.clone())
            .connect()
            .unwrap();
        let stop = w.stop_handle();
        let t = std::thread::spawn(move || w.run().unwrap());
        let ex = RedisExecutor::builder(&url, &p)
            .tls_root_cert(pem)
            .connect()
            .unwrap();
        assert_eq!(ex.call(double, 21).unwrap().result().unwrap(), 42);
        ex.shutdown(true, false).unwrap();
        stop.stop();
        assert_eq!(t.join().unwrap().completed, 1);
        drop(redis);
        let _ = std::fs::remove_dir_all(&dir);
    });
}
