//! No import circles inside a module family: every folder of every crate of the
//! workspace reads top to bottom.
//!
//! For each crate under `crates/`, this reads the module tree from `lib.rs` /
//! `main.rs` (`mod x;` declarations, `#[path]` included, inline `mod x { .. }` blocks
//! too), and every path that names a module of the same crate: the `use crate::…`,
//! `use super::…`, `use self::…` (and child-relative `use x::…`) trees, and the same
//! paths written inline in code (`crate::a::f()`, `$crate::…` in macros). Each path is
//! resolved to the module that defines the item, following re-exports (`pub use`) on
//! the way. A path from a file under `folder/a` to an item under `folder/b` is an edge
//! `a → b` of `folder` (the crate root is a folder too). The test fails if any folder's
//! graph has a cycle (two siblings that import each other, directly or around a
//! circle), listing each edge of the cycle with the lines that make it.
//!
//! Run `cargo test -p concur --test module_layers -- --nocapture` to see every folder's
//! order, bottom first. Edges from a child to its parent folder's own file (a
//! `mod.rs` item) and from a parent into its children are the normal shape and are not
//! counted.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

// ---- a small Rust lexer: identifiers and punctuation, comments and literals dropped ----

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Punct(char),
    /// `::`
    Path,
}

fn lex(src: &str) -> Vec<(Tok, usize)> {
    let b: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < b.len() {
        let c = b[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && b.get(i + 1) == Some(&'/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && b.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if b[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if c == 'r' && (b.get(i + 1) == Some(&'"') || b.get(i + 1) == Some(&'#')) && {
            // A raw string: r"..", r#".."#.
            let mut j = i + 1;
            while b.get(j) == Some(&'#') {
                j += 1;
            }
            b.get(j) == Some(&'"')
        } {
            let mut j = i + 1;
            let mut hashes = 0;
            while b[j] == '#' {
                hashes += 1;
                j += 1;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '\n' {
                    line += 1;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
        } else if c == '"' || (c == 'b' && b.get(i + 1) == Some(&'"')) {
            let mut j = if c == 'b' { i + 2 } else { i + 1 };
            while j < b.len() && b[j] != '"' {
                if b[j] == '\\' {
                    j += 1;
                }
                if b.get(j) == Some(&'\n') {
                    line += 1;
                }
                j += 1;
            }
            i = j + 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if b.get(i + 1) == Some(&'\\') {
                let mut j = i + 2;
                while j < b.len() && b[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
            } else if b.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                    i += 1;
                }
            }
        } else if c.is_alphabetic() || c == '_' {
            let mut j = i;
            while j < b.len() && (b[j].is_alphanumeric() || b[j] == '_') {
                j += 1;
            }
            let mut word: String = b[i..j].iter().collect();
            if word == "r" && b.get(j) == Some(&'#') {
                // A raw identifier r#name.
                let mut k = j + 1;
                while k < b.len() && (b[k].is_alphanumeric() || b[k] == '_') {
                    k += 1;
                }
                word = b[j + 1..k].iter().collect();
                j = k;
            }
            out.push((Tok::Ident(word), line));
            i = j;
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_' || b[i] == '.') {
                i += 1;
            }
        } else if c == ':' && b.get(i + 1) == Some(&':') {
            out.push((Tok::Path, line));
            i += 2;
        } else {
            out.push((Tok::Punct(c), line));
            i += 1;
        }
    }
    out
}

// ---- the module tree and the paths each module writes ----------------------------------

type ModPath = Vec<String>;

#[derive(Default)]
struct Module {
    file: PathBuf,
    children: BTreeSet<String>,
    /// Names brought into this module by `use` (name → absolute path of the item,
    /// unresolved).
    names: HashMap<String, Raw>,
    /// Glob imports (`use x::*`), unresolved.
    globs: Vec<Raw>,
    /// Every path this module writes, with its line.
    paths: Vec<(Raw, usize)>,
}

/// A path as written, with the module it was written in.
#[derive(Clone, Debug)]
struct Raw {
    from: ModPath,
    segs: Vec<String>,
}

struct Crate {
    name: String,
    modules: BTreeMap<ModPath, Module>,
}

fn is_ident(t: Option<&(Tok, usize)>) -> Option<&str> {
    match t {
        Some((Tok::Ident(s), _)) => Some(s),
        _ => None,
    }
}

fn load_crate(name: &str, root: &Path) -> Crate {
    let mut c = Crate {
        name: name.to_owned(),
        modules: BTreeMap::new(),
    };
    load_file(&mut c, Vec::new(), root, true);
    c
}

/// Parses `file` as module `at`; `mod_rs` says whether its children live beside it
/// (`lib.rs`, `main.rs`, `mod.rs`, or a `#[path]` file) or in a folder of its name.
fn load_file(c: &mut Crate, at: ModPath, file: &Path, mod_rs: bool) {
    let src = fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let toks = lex(&src);
    let dir = if mod_rs {
        file.parent().unwrap().to_path_buf()
    } else {
        file.with_extension("")
    };
    c.modules.entry(at.clone()).or_default().file = file.to_path_buf();
    // Inline modules: (path, folder for their `mod x;`, brace depth at their `{`).
    let mut stack: Vec<(ModPath, PathBuf, usize)> = vec![(at.clone(), dir.clone(), 0)];
    let mut depth = 0usize;
    let mut pending_path: Option<String> = None;
    let mut i = 0;
    while i < toks.len() {
        let (cur, cur_dir, _) = stack.last().cloned().unwrap();
        match &toks[i].0 {
            Tok::Punct('#') => {
                // `#[path = "x.rs"]` before a `mod x;`
                if let (Some((Tok::Punct('['), _)), Some("path")) =
                    (toks.get(i + 1), is_ident(toks.get(i + 2)))
                {
                    let line = toks[i].1;
                    let text = src.lines().nth(line - 1).unwrap_or("");
                    if let Some(q) = text.split('"').nth(1) {
                        pending_path = Some(q.to_owned());
                    }
                }
                i += 1;
            }
            Tok::Punct('{') => {
                depth += 1;
                i += 1;
            }
            Tok::Punct('}') => {
                depth -= 1;
                if stack.len() > 1 && stack.last().unwrap().2 == depth {
                    stack.pop();
                }
                i += 1;
            }
            Tok::Ident(w) if w == "mod" => {
                let Some(name) = is_ident(toks.get(i + 1)).map(str::to_owned) else {
                    i += 1;
                    continue;
                };
                let mut child = cur.clone();
                child.push(name.clone());
                c.modules
                    .entry(cur.clone())
                    .or_default()
                    .children
                    .insert(name.clone());
                match toks.get(i + 2) {
                    Some((Tok::Punct(';'), _)) => {
                        let (f, beside) = match pending_path.take() {
                            Some(p) => (cur_dir.join(p), true),
                            None => {
                                let flat = cur_dir.join(format!("{name}.rs"));
                                if flat.exists() {
                                    (flat, false)
                                } else {
                                    (cur_dir.join(&name).join("mod.rs"), true)
                                }
                            }
                        };
                        if f.exists() {
                            load_file(c, child, &f, beside);
                        }
                        i += 3;
                    }
                    Some((Tok::Punct('{'), _)) => {
                        pending_path = None;
                        c.modules.entry(child.clone()).or_default().file = file.to_path_buf();
                        stack.push((child, cur_dir.join(&name), depth));
                        depth += 1;
                        i += 3;
                    }
                    _ => i += 2,
                }
            }
            Tok::Ident(w) if w == "use" => {
                let line = toks[i].1;
                let mut j = i + 1;
                let mut out = Vec::new();
                parse_tree(&toks, &mut j, Vec::new(), &mut out);
                let m = c.modules.entry(cur.clone()).or_default();
                for (segs, alias) in out {
                    let raw = Raw {
                        from: cur.clone(),
                        segs: segs.clone(),
                    };
                    match alias.as_deref() {
                        Some("*") => m.globs.push(raw.clone()),
                        Some("_") => {}
                        Some(a) => {
                            m.names.insert(a.to_owned(), raw.clone());
                        }
                        None => {
                            let last = segs.last().cloned().unwrap_or_default();
                            let name = if last == "self" && segs.len() > 1 {
                                segs[segs.len() - 2].clone()
                            } else {
                                last
                            };
                            m.names.insert(name, raw.clone());
                        }
                    }
                    m.paths.push((raw, line));
                }
                i = j;
            }
            Tok::Ident(w) if w == "crate" || w == "super" || w == "self" => {
                // An inline path (`crate::a::b`, `super::x`), not the tail of another
                // path (`pub(crate)` has no `::` after it).
                let after_path = i > 0 && toks[i - 1].0 == Tok::Path;
                if after_path || toks.get(i + 1).map(|t| &t.0) != Some(&Tok::Path) {
                    i += 1;
                    continue;
                }
                let line = toks[i].1;
                let mut segs = vec![w.clone()];
                let mut j = i + 1;
                while toks.get(j).map(|t| &t.0) == Some(&Tok::Path) {
                    match is_ident(toks.get(j + 1)) {
                        Some(s) => {
                            segs.push(s.to_owned());
                            j += 2;
                        }
                        None => break,
                    }
                }
                c.modules.entry(cur.clone()).or_default().paths.push((
                    Raw {
                        from: cur.clone(),
                        segs,
                    },
                    line,
                ));
                i = j;
            }
            _ => i += 1,
        }
    }
}

/// Parses a use tree at `toks[*j]` (after `use`), pushing every leaf path with its
/// alias (`Some("*")` for a glob).
fn parse_tree(
    toks: &[(Tok, usize)],
    j: &mut usize,
    prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    let mut segs = prefix;
    if toks.get(*j).map(|t| &t.0) == Some(&Tok::Path) {
        *j += 1; // a leading `::`
    }
    loop {
        match toks.get(*j) {
            Some((Tok::Ident(s), _)) => {
                segs.push(s.clone());
                *j += 1;
                if is_ident(toks.get(*j)) == Some("as") {
                    let alias = is_ident(toks.get(*j + 1)).map(str::to_owned);
                    *j += 2;
                    out.push((segs, alias));
                    break;
                }
                if toks.get(*j).map(|t| &t.0) == Some(&Tok::Path) {
                    *j += 1;
                    continue;
                }
                out.push((segs, None));
                break;
            }
            Some((Tok::Punct('*'), _)) => {
                *j += 1;
                out.push((segs, Some("*".to_owned())));
                break;
            }
            Some((Tok::Punct('{'), _)) => {
                *j += 1;
                loop {
                    match toks.get(*j) {
                        Some((Tok::Punct('}'), _)) => {
                            *j += 1;
                            break;
                        }
                        Some((Tok::Punct(','), _)) => *j += 1,
                        None => break,
                        _ => parse_tree(toks, j, segs.clone(), out),
                    }
                }
                break;
            }
            _ => break,
        }
    }
    if toks.get(*j).map(|t| &t.0) == Some(&Tok::Punct(';')) {
        *j += 1;
    }
}

impl Crate {
    /// The module that defines the item `raw` names (the deepest module reached,
    /// re-exports followed); `None` for a path outside the crate.
    fn resolve(&self, raw: &Raw, hops: usize) -> Option<ModPath> {
        if hops > 16 {
            return None;
        }
        let mut segs = raw.segs.iter().map(String::as_str).peekable();
        let mut at: ModPath = match *segs.peek()? {
            "crate" | "$crate" => {
                segs.next();
                Vec::new()
            }
            "self" => {
                segs.next();
                raw.from.clone()
            }
            "super" => {
                let mut m = raw.from.clone();
                while segs.peek() == Some(&"super") {
                    segs.next();
                    m.pop()?;
                }
                m
            }
            first => {
                // 2018 paths: a child module, or a name imported into this module.
                let here = self.modules.get(&raw.from)?;
                if here.children.contains(first) {
                    raw.from.clone()
                } else if let Some(r) = here.names.get(first) {
                    if r.segs.len() == raw.segs.len()
                        && r.segs.last().map(String::as_str) == Some(first)
                    {
                        return self.resolve(r, hops + 1);
                    }
                    let mut s = r.segs.clone();
                    s.extend(raw.segs[1..].iter().cloned());
                    return self.resolve(
                        &Raw {
                            from: r.from.clone(),
                            segs: s,
                        },
                        hops + 1,
                    );
                } else {
                    return None;
                }
            }
        };
        let rest: Vec<&str> = segs.collect();
        for (k, seg) in rest.iter().enumerate() {
            let m = self.modules.get(&at)?;
            if m.children.contains(*seg) {
                at.push((*seg).to_owned());
                continue;
            }
            if let Some(r) = m.names.get(*seg) {
                // Re-exported here: follow it, with the rest of the path.
                let mut s = r.segs.clone();
                s.extend(rest[k + 1..].iter().map(|x| (*x).to_owned()));
                return self
                    .resolve(
                        &Raw {
                            from: r.from.clone(),
                            segs: s,
                        },
                        hops + 1,
                    )
                    .or(Some(at));
            }
            break;
        }
        Some(at)
    }
}

/// Strongly connected components of more than one node (Tarjan's algorithm).
fn cycles(
    nodes: &BTreeSet<String>,
    edges: &BTreeMap<(String, String), Vec<String>>,
) -> Vec<Vec<String>> {
    struct T<'a> {
        adj: BTreeMap<&'a str, Vec<&'a str>>,
        index: HashMap<&'a str, usize>,
        low: HashMap<&'a str, usize>,
        on: BTreeSet<&'a str>,
        stack: Vec<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        t.index.insert(v, t.next);
        t.low.insert(v, t.next);
        t.next += 1;
        t.stack.push(v);
        t.on.insert(v);
        for w in t.adj.get(v).cloned().unwrap_or_default() {
            if !t.index.contains_key(w) {
                visit(t, w);
                let l = t.low[v].min(t.low[w]);
                t.low.insert(v, l);
            } else if t.on.contains(w) {
                let l = t.low[v].min(t.index[w]);
                t.low.insert(v, l);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = t.stack.pop().unwrap();
                t.on.remove(w);
                comp.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        adj: BTreeMap::new(),
        index: HashMap::new(),
        low: HashMap::new(),
        on: BTreeSet::new(),
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for (a, b) in edges.keys() {
        t.adj.entry(a.as_str()).or_default().push(b.as_str());
    }
    for n in nodes {
        if !t.index.contains_key(n.as_str()) {
            visit(&mut t, n.as_str());
        }
    }
    t.out
}

/// A folder's siblings in dependency order, bottom first (ties by name).
fn order(nodes: &BTreeSet<String>, edges: &BTreeMap<(String, String), Vec<String>>) -> Vec<String> {
    let mut left: BTreeSet<String> = nodes.clone();
    let mut out = Vec::new();
    while !left.is_empty() {
        let ready: Vec<String> = left
            .iter()
            .filter(|n| {
                !edges
                    .keys()
                    .any(|(a, b)| a == *n && left.contains(b) && b != *n)
            })
            .cloned()
            .collect();
        if ready.is_empty() {
            out.push(format!(
                "(cycle: {})",
                left.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
            break;
        }
        for n in ready {
            left.remove(&n);
            out.push(n);
        }
    }
    out
}

#[test]
fn no_module_imports_a_sibling_that_imports_it_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut crates: Vec<(String, PathBuf)> = Vec::new();
    for e in fs::read_dir(&root).unwrap() {
        let dir = e.unwrap().path();
        for entry in ["src/lib.rs", "src/main.rs"] {
            if dir.join(entry).exists() {
                let name = dir.file_name().unwrap().to_string_lossy().into_owned();
                crates.push((name, dir.join(entry)));
            }
        }
    }
    crates.sort();
    assert!(
        crates.len() >= 4,
        "found only {crates:?} under {}",
        root.display()
    );
    let mut problems = Vec::new();
    for (name, lib) in &crates {
        let c = load_crate(name, lib);
        // folder → (edge → the lines that make it)
        let mut folders: BTreeMap<ModPath, BTreeMap<(String, String), Vec<String>>> =
            BTreeMap::new();
        for (at, m) in &c.modules {
            for (raw, line) in &m.paths {
                let Some(target) = c.resolve(raw, 0) else {
                    continue;
                };
                let common = at.iter().zip(&target).take_while(|(a, b)| a == b).count();
                if common >= at.len() || common >= target.len() {
                    continue; // into a child, or up to an ancestor (or itself)
                }
                let folder = at[..common].to_vec();
                let edge = (at[common].clone(), target[common].clone());
                let file = m
                    .file
                    .strip_prefix(&root)
                    .unwrap_or(&m.file)
                    .display()
                    .to_string();
                folders
                    .entry(folder)
                    .or_default()
                    .entry(edge)
                    .or_default()
                    .push(format!("{file}:{line}: {}", raw.segs.join("::")));
            }
        }
        for (folder, m) in &c.modules {
            if m.children.is_empty() {
                continue;
            }
            let edges = folders.remove(folder).unwrap_or_default();
            let shown = if folder.is_empty() {
                format!("{} (crate root)", c.name)
            } else {
                format!("{}::{}", c.name, folder.join("::"))
            };
            println!("{shown}: {}", order(&m.children, &edges).join(" < "));
            for comp in cycles(&m.children, &edges) {
                let mut msg = format!("{shown}: an import circle between {}:", comp.join(", "));
                for ((a, b), lines) in &edges {
                    if comp.contains(a) && comp.contains(b) {
                        msg.push_str(&format!("\n    {a} -> {b}"));
                        for l in lines.iter().take(3) {
                            msg.push_str(&format!("\n        {l}"));
                        }
                        if lines.len() > 3 {
                            msg.push_str(&format!("\n        ... and {} more", lines.len() - 3));
                        }
                    }
                }
                problems.push(msg);
            }
        }
    }
    assert!(
        problems.is_empty(),
        "modules that import each other (move the shared names down a level):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_checker_sees_a_circle() {
    // Two siblings that name each other, through a re-export and an inline path.
    let dir = std::env::temp_dir().join(format!("concur-layers-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("a")).unwrap();
    fs::write(dir.join("lib.rs"), "mod a;\nmod b;\npub use b::Thing;\n").unwrap();
    fs::write(dir.join("a.rs"), "mod inner;\n").unwrap();
    fs::write(
        dir.join("a/inner.rs"),
        "use crate::Thing; // via the root's re-export\n",
    )
    .unwrap();
    fs::write(
        dir.join("b.rs"),
        "pub struct Thing;\nfn f() { let _ = \"crate::x\"; crate::a::inner::g(); }\n",
    )
    .unwrap();
    let c = load_crate("demo", &dir.join("lib.rs"));
    let _ = fs::remove_dir_all(&dir);
    let mut edges = BTreeMap::new();
    for (at, m) in &c.modules {
        for (raw, _) in &m.paths {
            if let Some(t) = c.resolve(raw, 0)
                && !at.is_empty()
                && !t.is_empty()
                && at[0] != t[0]
            {
                edges.insert((at[0].clone(), t[0].clone()), vec![]);
            }
        }
    }
    let found = cycles(&c.modules[&Vec::new()].children, &edges);
    assert_eq!(found, vec![vec!["a".to_owned(), "b".to_owned()]]);
}
