//! The detector's state: the lock-order graph (lockdep-style) and the wait-for
//! relation (who owns which lock, who waits for which lock or thread).
//!
//! Everything here is plain data behind the one global `std::sync::Mutex` in `mod.rs`;
//! the methods never block and never call user code, and they return the reports to
//! publish once that mutex is released.
//!
//! Lock-order graph: an edge `H -> L` means "some thread acquired L (blocking) while
//! holding H". Before adding it, a breadth-first search looks for a path `L -> ... -> H`;
//! one means the two orders can deadlock: that is reported (once per lock pair) and the
//! edge is *not* added, so the graph stays acyclic and each search is bounded by the
//! part of the graph reachable from L.
//!
//! Wait-for relation: a thread waits for at most one lock or thread at a time; a lock
//! has an owner (the thread whose acquisition is the oldest not yet released). At each
//! new wait, the chain waits-for -> owner -> waits-for ... is followed; if it comes back
//! to the waiting thread, that is a cycle, an actual deadlock.

use super::report::{Report, ReportKind, push_unique};
use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::Location;
use std::sync::Arc;

/// What a thread blocks on.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// A lock, by id.
    Lock(u64),
    /// A thread's end (a join), by ident.
    Thread(u64),
}

/// The current thread, as the hooks describe it to the state.
#[derive(Clone, Debug)]
pub(crate) struct Me {
    pub(crate) ident: u64,
    pub(crate) name: Arc<str>,
}

#[derive(Debug)]
struct Edge {
    thread: Arc<str>,
    site: &'static Location<'static>,
}

#[derive(Debug)]
struct LockNode {
    label: Arc<str>,
    /// Acquisitions not yet released, oldest first (for a plain lock at most one, but a
    /// cross-thread `release` may be reported after the next acquisition, and a
    /// reentrant lock may report each level). The front is the owner.
    owners: VecDeque<u64>,
    /// Lock-order edges out of this lock: `self -> key`.
    out: HashMap<u64, Edge>,
    /// Locks with an edge into this one (to unlink on drop).
    inc: HashSet<u64>,
    /// Locks this one was already reported inverted with (symmetric).
    reported: HashSet<u64>,
}

#[derive(Debug)]
struct ThreadNode {
    name: Arc<str>,
    /// Locks this thread holds, in acquisition order (a lock may appear twice for a
    /// reentrant lock that reports each level).
    held: Vec<u64>,
    waits: Option<Wait>,
}

/// The whole detector state.
#[derive(Debug, Default)]
pub(crate) struct State {
    locks: HashMap<u64, LockNode>,
    threads: HashMap<u64, ThreadNode>,
}

/// The label of a lock in reports: its name, or `Kind@file:line:col`.
pub(crate) fn label_of(kind: &str, name: Option<&str>, site: &Location<'_>) -> Arc<str> {
    match name {
        Some(n) => Arc::from(n),
        None => Arc::from(format!("{kind}@{site}")),
    }
}

impl State {
    fn lock_node(&mut self, id: u64, label: impl FnOnce() -> Arc<str>) -> &mut LockNode {
        self.locks.entry(id).or_insert_with(|| LockNode {
            label: label(),
            owners: VecDeque::new(),
            out: HashMap::new(),
            inc: HashSet::new(),
            reported: HashSet::new(),
        })
    }

    fn thread_node(&mut self, me: &Me) -> &mut ThreadNode {
        self.threads.entry(me.ident).or_insert_with(|| ThreadNode {
            name: me.name.clone(),
            held: Vec::new(),
            waits: None,
        })
    }

    /// Forgets a thread that holds nothing and waits for nothing (bounds the map by the
    /// threads that do).
    fn gc_thread(&mut self, ident: u64) {
        if let Some(t) = self.threads.get(&ident)
            && t.held.is_empty()
            && t.waits.is_none()
        {
            self.threads.remove(&ident);
        }
    }

    fn lock_label(&self, id: u64) -> &str {
        self.locks.get(&id).map_or("<dropped lock>", |l| &l.label)
    }

    /// `me` is about to block on lock `id`. Adds lock-order edges from every lock `me`
    /// holds, looks for a wait-for cycle, and returns what to report. If `record_wait`
    /// is false the wait is checked but not recorded (panic mode when something was
    /// found: the thread will not block).
    pub(crate) fn before_acquire(
        &mut self,
        me: &Me,
        id: u64,
        label: impl FnOnce() -> Arc<str>,
        site: &'static Location<'static>,
        record_wait: bool,
    ) -> Vec<Report> {
        self.lock_node(id, label);
        let mut reports = Vec::new();
        let held = self
            .threads
            .get_mut(&me.ident)
            .map(|t| std::mem::take(&mut t.held));
        if let Some(held) = &held {
            for (i, &h) in held.iter().enumerate() {
                if h == id || held[..i].contains(&h) {
                    continue;
                }
                if let Some(r) = self.add_order_edge(me, h, id, site) {
                    reports.push(r);
                }
            }
        }
        if let (Some(held), Some(t)) = (held, self.threads.get_mut(&me.ident)) {
            t.held = held;
        }
        self.wait(me, Wait::Lock(id), record_wait, &mut reports);
        reports
    }

    /// `me` is about to block joining thread `target`.
    pub(crate) fn before_join(&mut self, me: &Me, target: u64, record_wait: bool) -> Vec<Report> {
        let mut reports = Vec::new();
        self.wait(me, Wait::Thread(target), record_wait, &mut reports);
        reports
    }

    /// The wait announced by `before_acquire`/`before_join` is over (acquired, timed
    /// out, or joined).
    pub(crate) fn end_wait(&mut self, me: &Me) {
        if let Some(t) = self.threads.get_mut(&me.ident) {
            t.waits = None;
        }
        self.gc_thread(me.ident);
    }

    /// `me` now holds lock `id` (blocking or not).
    pub(crate) fn after_acquire(&mut self, me: &Me, id: u64, label: impl FnOnce() -> Arc<str>) {
        self.lock_node(id, label).owners.push_back(me.ident);
        let t = self.thread_node(me);
        t.waits = None;
        t.held.push(id);
    }

    /// Lock `id` was released, by whichever thread: its oldest acquisition ends.
    pub(crate) fn on_release(&mut self, id: u64) {
        let Some(owner) = self.locks.get_mut(&id).and_then(|l| l.owners.pop_front()) else {
            return; // acquired while detection was off: not tracked
        };
        if let Some(t) = self.threads.get_mut(&owner)
            && let Some(pos) = t.held.iter().rposition(|&h| h == id)
        {
            t.held.remove(pos);
        }
        self.gc_thread(owner);
    }

    /// Lock `id` no longer exists: forget its node and edges (it can take part in no
    /// future deadlock; paths through it no longer constrain anything).
    pub(crate) fn lock_dropped(&mut self, id: u64) {
        let Some(node) = self.locks.remove(&id) else {
            return;
        };
        for succ in node.out.keys() {
            if let Some(s) = self.locks.get_mut(succ) {
                s.inc.remove(&id);
            }
        }
        for pred in &node.inc {
            if let Some(p) = self.locks.get_mut(pred) {
                p.out.remove(&id);
            }
        }
        for other in &node.reported {
            if let Some(o) = self.locks.get_mut(other) {
                o.reported.remove(&id);
            }
        }
        for owner in node.owners {
            if let Some(t) = self.threads.get_mut(&owner) {
                t.held.retain(|&h| h != id);
            }
            self.gc_thread(owner);
        }
    }

    /// Forgets who holds and waits for what (kept: the lock-order graph). Used when
    /// detection is switched on again after being off, since releases were not seen.
    pub(crate) fn reset_runtime(&mut self) {
        self.threads.clear();
        for l in self.locks.values_mut() {
            l.owners.clear();
        }
    }

    #[cfg(test)]
    pub(crate) fn thread_count(&self) -> usize {
        self.threads.len()
    }

    #[cfg(test)]
    pub(crate) fn edge_count(&self) -> usize {
        self.locks.values().map(|l| l.out.len()).sum()
    }

    /// Adds `h -> l` unless it exists or inverts an existing path `l -> ... -> h`; in
    /// that case returns the inversion report (the first time for this pair).
    fn add_order_edge(
        &mut self,
        me: &Me,
        h: u64,
        l: u64,
        site: &'static Location<'static>,
    ) -> Option<Report> {
        let hn = self.locks.get(&h)?; // held lock already dropped: nothing to order
        if hn.out.contains_key(&l) || hn.reported.contains(&l) {
            return None;
        }
        if let Some(path) = self.find_path(l, h) {
            self.locks.get_mut(&h).map(|n| n.reported.insert(l));
            self.locks.get_mut(&l).map(|n| n.reported.insert(h));
            return Some(self.inversion_report(&path, me, h, l));
        }
        let edge = Edge {
            thread: me.name.clone(),
            site,
        };
        self.locks.get_mut(&h).map(|n| n.out.insert(l, edge));
        self.locks.get_mut(&l).map(|n| n.inc.insert(h));
        None
    }

    /// A shortest path of lock-order edges `from -> ... -> to`, as the list of nodes.
    fn find_path(&self, from: u64, to: u64) -> Option<Vec<u64>> {
        let mut parent: HashMap<u64, u64> = HashMap::new();
        let mut queue = VecDeque::from([from]);
        parent.insert(from, from);
        while let Some(n) = queue.pop_front() {
            if n == to {
                let mut path = vec![to];
                let mut cur = to;
                while cur != from {
                    cur = parent[&cur];
                    path.push(cur);
                }
                path.reverse();
                return Some(path);
            }
            if let Some(node) = self.locks.get(&n) {
                for &next in node.out.keys() {
                    if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(next) {
                        e.insert(n);
                        queue.push_back(next);
                    }
                }
            }
        }
        None
    }

    fn inversion_report(&self, path: &[u64], me: &Me, h: u64, l: u64) -> Report {
        let mut threads = Vec::new();
        let mut locks = Vec::new();
        let mut parts = Vec::new();
        for w in path.windows(2) {
            let (a, b) = (w[0], w[1]);
            let edge = &self.locks[&a].out[&b];
            let (la, lb) = (self.lock_label(a), self.lock_label(b));
            push_unique(&mut locks, la);
            push_unique(&mut locks, lb);
            push_unique(&mut threads, &edge.thread);
            parts.push(format!("{la} -> {lb} in thread {}", edge.thread));
        }
        let (lh, ll) = (self.lock_label(h), self.lock_label(l));
        push_unique(&mut threads, &me.name);
        parts.push(format!("{lh} -> {ll} in thread {}", me.name));
        let sites: Vec<String> = path
            .windows(2)
            .map(|w| format!("{}", self.locks[&w[0]].out[&w[1]].site))
            .collect();
        tracing::debug!(target: "concur::deadlock", ?sites, "first acquisitions of the existing order");
        Report {
            kind: ReportKind::LockOrderInversion,
            threads,
            locks,
            message: format!("lock order inversion: {}", parts.join(", ")),
        }
    }

    /// Checks the new wait `w` of `me` for a cycle (pushing the report), and records it
    /// if `record` (or if nothing was found).
    fn wait(&mut self, me: &Me, w: Wait, record: bool, reports: &mut Vec<Report>) {
        if let Some(cycle) = self.find_cycle(me.ident, w) {
            reports.push(self.cycle_report(me, &cycle));
        }
        if record || reports.is_empty() {
            self.thread_node(me).waits = Some(w);
        }
    }

    /// Follows waits-for -> owner -> waits-for ... from `me`'s new wait `first`; returns
    /// the steps (thread, what it waits for), starting with `me`, if it comes back.
    fn find_cycle(&self, me: u64, first: Wait) -> Option<Vec<(u64, Wait)>> {
        let mut steps = vec![(me, first)];
        let mut w = first;
        // Every thread on a cycle is in `threads`; a longer walk loops elsewhere.
        for _ in 0..=self.threads.len() {
            let next = match w {
                Wait::Lock(l) => *self.locks.get(&l)?.owners.front()?,
                Wait::Thread(u) => u,
            };
            if next == me {
                return Some(steps);
            }
            w = self.threads.get(&next)?.waits?;
            steps.push((next, w));
        }
        None
    }

    fn cycle_report(&self, me: &Me, cycle: &[(u64, Wait)]) -> Report {
        let mut threads = Vec::new();
        let mut locks = Vec::new();
        let mut parts = Vec::new();
        let name = |ident: u64| -> String {
            if ident == me.ident {
                return me.name.to_string();
            }
            self.threads
                .get(&ident)
                .map_or_else(|| format!("Thread-{ident}"), |t| t.name.to_string())
        };
        for (i, &(t, w)) in cycle.iter().enumerate() {
            let tname = name(t);
            push_unique(&mut threads, &tname);
            // What this thread holds that the previous one on the cycle waits for.
            let prev = cycle[(i + cycle.len() - 1) % cycle.len()].1;
            let holds = match prev {
                Wait::Lock(l) => {
                    let lb = self.lock_label(l);
                    push_unique(&mut locks, lb);
                    format!(" holds {lb} and")
                }
                Wait::Thread(_) => String::new(),
            };
            let target = match w {
                Wait::Lock(l) => {
                    let lb = self.lock_label(l);
                    push_unique(&mut locks, lb);
                    lb.to_owned()
                }
                Wait::Thread(u) => format!("thread {} to finish", name(u)),
            };
            parts.push(format!("thread {tname}{holds} waits for {target}"));
        }
        Report {
            kind: ReportKind::WaitForCycle,
            threads,
            locks,
            message: format!("deadlock: {}", parts.join("; ")),
        }
    }
}

#[cfg(test)]
mod tests;
