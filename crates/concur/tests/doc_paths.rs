//! The examples a user of `concur` reads use `concur::` paths: every code block in the
//! docs of concur-core, concur-process and concur-cluster (which `concur` shows inline)
//! names items as `concur::…`, `concur::process::…`, `concur::cluster::…`, never by the
//! inner crates' names, which a crate depending on `concur` cannot use (E0433). The
//! blocks are doctests compiled against `concur` (each inner crate has it as a
//! path-only dev-dependency), so a path that does not exist fails the doctests; this
//! checker catches the inner names, which would still compile there.

use std::path::{Path, PathBuf};

const INNER: [&str; 3] = ["concur_core::", "concur_process::", "concur_cluster::"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `(line number, line)` of every doc-code line naming an inner crate.
fn offenders(src: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut in_code = false;
    for (i, line) in src.lines().enumerate() {
        let t = line.trim_start();
        let doc = t
            .strip_prefix("///")
            .or_else(|| t.strip_prefix("//!"))
            .map(str::trim_start);
        // Docs assembled by macros: `#[doc = concat!("let q = concur_core::…")]`.
        let generated = t.starts_with("#[doc = concat!(");
        match doc {
            Some(d) if d.starts_with("```") => in_code = !in_code,
            Some(d) if in_code && INNER.iter().any(|n| d.contains(n)) => {
                found.push((i + 1, line.to_owned()));
            }
            None if generated && INNER.iter().any(|n| t.contains(n)) => {
                found.push((i + 1, line.to_owned()));
            }
            None if !t.starts_with("//") => in_code = false,
            _ => {}
        }
    }
    found
}

#[test]
fn doc_examples_use_the_paths_of_concur() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for c in ["concur-core", "concur-process", "concur-cluster", "concur"] {
        rust_files(&crates.join(c).join("src"), &mut files);
    }
    assert!(files.len() > 50, "found only {} source files", files.len());
    let mut bad = Vec::new();
    for f in &files {
        let src = std::fs::read_to_string(f).expect("read source");
        for (n, l) in offenders(&src) {
            bad.push(format!("{}:{n}: {}", f.display(), l.trim()));
        }
    }
    assert!(
        bad.is_empty(),
        "doc examples that a user of `concur` cannot paste (write concur::…):\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_checker_sees_an_inner_path_in_a_doc_block() {
    let src = "/// text concur_core::sync is prose\n/// ```\n/// use concur_core::sync::Lock;\n/// ```\nfn f() {}\n";
    assert_eq!(offenders(src).len(), 1);
    let generated = "#[doc = concat!(\"let q = concur_core::queue::\", stringify!($ty))]\n";
    assert_eq!(offenders(generated).len(), 1);
    assert!(offenders("/// ```\n/// use concur::sync::Lock;\n/// ```\n").is_empty());
}
