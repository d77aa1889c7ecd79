//! temporary
use concur_process::{Process, StartMethod};
use std::time::Instant;
#[test]
fn timing() {
    for (m, n) in [
        (StartMethod::ForkServer, 500u32),
        (StartMethod::Fork { force: true }, 500),
        (StartMethod::Spawn, 200),
    ] {
        // warm up (starts the server)
        Process::builder()
            .start_method(m)
            .spawn(|x: u32| x, 1)
            .unwrap()
            .join()
            .unwrap();
        let mut v: Vec<f64> = Vec::new();
        let mut w: Vec<f64> = Vec::new();
        let t = Instant::now();
        for i in 0..n {
            let s = Instant::now();
            let p = Process::builder()
                .start_method(m)
                .spawn(|x: u32| x + 1, i)
                .unwrap();
            let st = s.elapsed().as_secs_f64() * 1e3;
            assert_eq!(p.join().unwrap(), i + 1);
            v.push(s.elapsed().as_secs_f64() * 1e3);
            w.push(st);
        }
        w.sort_by(|a, b| a.partial_cmp(b).unwrap());
        eprintln!("  start median {:.3}", w[w.len() / 2]);
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        eprintln!(
            "{m:?}: mean {:.3} ms, median {:.3} ms, p90 {:.3} ms (n={n})",
            t.elapsed().as_secs_f64() * 1e3 / n as f64,
            v[v.len() / 2],
            v[v.len() * 9 / 10]
        );
    }
}
