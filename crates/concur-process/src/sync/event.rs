//! `Event`: Python's `multiprocessing.Event`, a flag processes can wait on, on a shared
//! futex word.
//!
//! # Shared state (`EventState`)
//!
//! `word` holds the flag in bit 0 and a generation count in bits 1..: every `set` that
//! raises the flag also bumps the generation, so a waiter that slept through a
//! `set` + `clear` pulse still notices it was set (and returns true, as
//! `concur::sync::Event` does). `clear` only drops bit 0. `waiters` counts
//! threads between "saw the flag down" and "done waiting"; `set` wakes the word only
//! if it is non-zero. The waiter increments `waiters` before its last look at `word`
//! and `set` changes `word` before looking at `waiters`, all `SeqCst` (a Dekker pair),
//! and the kernel re-checks the word before sleeping, so no wake-up is lost.
//!
//! Ordering: `set` is `SeqCst` (so `Release`) and every read of the flag is at least
//! `Acquire`: what a process wrote before `set` is visible to one that saw the flag.
//! A process dying mid-wait leaves `waiters` one too high: later `set`s make a
//! needless wake call, nothing worse.

use super::futex;
use super::shared::{Shared, SharedHandle, SharedState, Tag, kind, shared_serde};
use concur_core::time::{deadline_after, expired};
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const SET: u32 = 1;

/// The state of a process-shared event. See the module docs.
#[repr(C)]
pub(crate) struct EventState {
    tag: Tag,
    word: AtomicU32,
    waiters: AtomicU32,
}

// SAFETY: `repr(C)`, starts with the tag, atomics only; alignment 4.
unsafe impl SharedState for EventState {
    fn tag(&self) -> &Tag {
        &self.tag
    }
}

/// A flag processes can set, clear and wait for: Python's `multiprocessing.Event`, as a
/// cheaply cloneable, serializable handle.
///
/// Waiting comes in four forms ([`wait`](Event::wait), [`try_wait`](Event::try_wait),
/// [`wait_timeout`](Event::wait_timeout), [`wait_deadline`](Event::wait_deadline)),
/// each returning whether the flag was set.
///
/// ```
/// use concur::process::sync::Event;
/// let e = Event::new()?;
/// assert!(!e.is_set());
/// e.set();
/// assert!(e.wait()); // returns at once
/// e.clear();
/// assert!(!e.try_wait());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Event {
    shared: Shared<EventState>,
}

impl Event {
    /// Creates an event, initially clear, in a shared memory page of its own.
    ///
    /// # Errors
    /// The OS error if the page cannot be created or mapped.
    ///
    /// ```
    /// assert!(!concur::process::sync::Event::new()?.is_set());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> io::Result<Self> {
        Shared::create("concur-event", kind::EVENT, |_: &EventState| Ok(()))
            .map(|shared| Event { shared })
    }

    fn state(&self) -> &EventState {
        self.shared.get()
    }

    /// Whether the flag is set at this instant.
    ///
    /// ```
    /// let e = concur::process::sync::Event::new()?;
    /// e.set();
    /// assert!(e.is_set());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_set(&self) -> bool {
        self.state().word.load(Ordering::Acquire) & SET != 0
    }

    /// The non-blocking form of [`wait`](Event::wait): whether the flag is set.
    ///
    /// ```
    /// let e = concur::process::sync::Event::new()?;
    /// assert!(!e.try_wait());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_wait(&self) -> bool {
        self.is_set()
    }

    /// Sets the flag and wakes every waiter, in every process.
    ///
    /// ```
    /// let e = concur::process::sync::Event::new()?;
    /// let e2 = e.clone();
    /// let t = std::thread::spawn(move || e2.wait());
    /// e.set();
    /// assert!(t.join().unwrap());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set(&self) {
        let s = self.state();
        let mut w = s.word.load(Ordering::Relaxed);
        loop {
            if w & SET != 0 {
                return;
            }
            let next = w.wrapping_add(2) | SET;
            match s
                .word
                .compare_exchange_weak(w, next, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(x) => w = x,
            }
        }
        if s.waiters.load(Ordering::SeqCst) != 0 {
            futex::wake_all(&s.word);
        }
    }

    /// Clears the flag.
    ///
    /// ```
    /// let e = concur::process::sync::Event::new()?;
    /// e.set();
    /// e.clear();
    /// assert!(!e.is_set());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn clear(&self) {
        self.state().word.fetch_and(!SET, Ordering::SeqCst);
    }

    /// Blocks until the flag is set; returns true.
    ///
    /// ```
    /// let e = concur::process::sync::Event::new()?;
    /// e.set();
    /// assert!(e.wait());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait(&self) -> bool {
        self.wait_until(None)
    }

    /// Blocks for at most `timeout`; whether the flag was set (or set and cleared
    /// again while this thread waited). A timeout too large to represent waits forever.
    ///
    /// ```
    /// use std::time::Duration;
    /// let e = concur::process::sync::Event::new()?;
    /// assert!(!e.wait_timeout(Duration::from_millis(10)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(deadline_after(timeout))
    }

    /// Blocks until `deadline` at the latest; as [`wait_timeout`](Event::wait_timeout).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let e = concur::process::sync::Event::new()?;
    /// e.set();
    /// assert!(e.wait_deadline(Instant::now() + Duration::from_secs(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_deadline(&self, deadline: Instant) -> bool {
        self.wait_until(Some(deadline))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let s = self.state();
        let start = s.word.load(Ordering::Acquire);
        if start & SET != 0 {
            return true;
        }
        s.waiters.fetch_add(1, Ordering::SeqCst);
        let set = loop {
            let w = s.word.load(Ordering::SeqCst);
            if w & SET != 0 || w >> 1 != start >> 1 {
                break true; // set now, or set (and cleared) since we started
            }
            if expired(deadline) {
                break false;
            }
            futex::wait(&s.word, w, deadline);
        };
        s.waiters.fetch_sub(1, Ordering::SeqCst);
        set
    }

    /// True if both handles refer to the same event.
    ///
    /// ```
    /// let e = concur::process::sync::Event::new()?;
    /// assert!(e.ptr_eq(&e.clone()));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ptr_eq(&self, other: &Self) -> bool {
        self.shared.same(&other.shared)
    }
}

impl SharedHandle for Event {
    type State = EventState;
    const KIND: u32 = kind::EVENT;
    fn shared(&self) -> &Shared<EventState> {
        &self.shared
    }
    fn from_shared(shared: Shared<EventState>) -> Self {
        Event { shared }
    }
}

shared_serde!(Event);

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}
