//! The API shared by `Queue`, `LifoQueue` and `PriorityQueue` (Python's `Queue` and its
//! subclasses), written once as a macro so the three stay identical. Examples in the
//! generated docs are run against each type.

macro_rules! joinable_queue {
    ($ty:ident, [$($bound:tt)*]) => {
        impl<T $($bound)*> $ty<T> {
            /// Creates a queue holding at most `maxsize` items; `0` means unbounded, as
            /// in Python's `Queue(maxsize=0)`.
            ///
            /// ```
            #[doc = concat!("use concur::queue::", stringify!($ty), ";")]
            #[doc = concat!("assert_eq!(", stringify!($ty), "::<u8>::new(3).maxsize(), 3);")]
            #[doc = concat!("assert_eq!(", stringify!($ty), "::<u8>::new(0).maxsize(), 0);")]
            /// ```
            #[must_use]
            pub fn new(maxsize: usize) -> Self {
                Self::from_cap((maxsize > 0).then_some(maxsize))
            }

            /// Creates a queue holding at most `cap` items.
            ///
            /// # Panics
            ///
            /// If `cap` is 0 (use [`unbounded`](Self::unbounded) or `new(0)`).
            ///
            /// ```
            #[doc = concat!("let q = concur::queue::", stringify!($ty), "::bounded(1);")]
            /// q.put(1).unwrap();
            /// assert!(q.full());
            /// ```
            #[must_use]
            #[track_caller]
            pub fn bounded(cap: usize) -> Self {
                assert!(cap > 0, "a bounded queue needs a capacity above 0");
                Self::from_cap(Some(cap))
            }

            /// Creates a queue with no bound: `put` never blocks.
            ///
            /// ```
            #[doc = concat!("let q = concur::queue::", stringify!($ty), "::unbounded();")]
            /// for i in 0..10_000 {
            ///     q.try_put(i).unwrap();
            /// }
            /// assert_eq!(q.qsize(), 10_000);
            /// ```
            #[must_use]
            pub fn unbounded() -> Self {
                Self::from_cap(None)
            }

            /// Puts `item`, blocking while the queue is full (Python's `put(item)`).
            ///
            /// Wakes one blocked getter, if any.
            ///
            /// # Errors
            ///
            /// [`ShutDown`] with the item if the queue is, or becomes while waiting,
            /// shut down.
            ///
            /// ```
            #[doc = concat!("let q = concur::queue::", stringify!($ty), "::bounded(1);")]
            /// q.put("x").unwrap();
            /// assert_eq!(q.get(), Ok("x"));
            /// ```
            #[inline]
            pub fn put(&self, item: T) -> Result<(), ShutDown<T>> {
                self.chan.put(item, Wait::Until(None)).map_err(|e| match e {
                    PutFail::ShutDown(t) | PutFail::Full(t) => ShutDown(t),
                })
            }

            /// Puts `item` if there is room right now, never blocking (Python's
            /// `put_nowait` / `put(item, block=False)`).
            ///
            /// # Errors
            ///
            /// [`TryPutError::Full`] or [`TryPutError::ShutDown`], with the item.
            ///
            /// ```
            #[doc = concat!("let q = concur::queue::", stringify!($ty), "::bounded(1);")]
            /// q.try_put(1).unwrap();
            /// assert!(q.try_put(2).unwrap_err().is_full());
            /// ```
            #[inline]
            pub fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
                self.chan.put(item, Wait::Never).map_err(|e| match e {
                    PutFail::Full(t) => TryPutError::Full(t),
                    PutFail::ShutDown(t) => TryPutError::ShutDown(t),
                })
            }

            /// Puts `item`, blocking at most `timeout` while the queue is full (Python's
            /// `put(item, timeout=t)`). A timeout too large to represent waits forever.
            ///
            /// # Errors
            ///
            /// [`PutTimeoutError::Full`] if still full at the end, or
            /// [`PutTimeoutError::ShutDown`]; both hand the item back.
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = concat!("let q = concur::queue::", stringify!($ty), "::bounded(1);")]
            /// q.put(1).unwrap();
            /// let e = q.put_timeout(2, Duration::from_millis(5)).unwrap_err();
            /// assert_eq!(e.into_inner(), 2);
            /// ```
            pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutTimeoutError<T>> {
                self.put_until(item, deadline_after(timeout))
            }

            /// Puts `item`, blocking until `deadline` at most while the queue is full.
            ///
            /// # Errors
            ///
            /// As [`put_timeout`](Self::put_timeout).
            ///
            /// ```
            /// use std::time::{Duration, Instant};
            #[doc = concat!("let q = concur::queue::", stringify!($ty), "::bounded(1);")]
            /// q.put_deadline(1, Instant::now() + Duration::from_secs(1)).unwrap();
            /// assert!(q.put_deadline(2, Instant::now()).is_err());
            /// ```
            pub fn put_deadline(&self, item: T, deadline: Instant) -> Result<(), PutTimeoutError<T>> {
                self.put_until(item, Some(deadline))
            }

            fn put_until(&self, item: T, deadline: Option<Instant>) -> Result<(), PutTimeoutError<T>> {
                self.chan.put(item, Wait::Until(deadline)).map_err(|e| match e {
                    PutFail::Full(t) => PutTimeoutError::Full(t),
                    PutFail::ShutDown(t) => PutTimeoutError::ShutDown(t),
                })
            }

            /// Takes the next item, blocking while the queue is empty (Python's `get()`).
            ///
            /// Wakes one blocked putter, if any. After a shutdown, items still queued
            /// are handed out first.
            ///
            /// # Errors
            ///
            /// [`ShutDown`] once the queue is shut down and drained (also when the
            /// shutdown happens while waiting).
            ///
            /// ```
            #[doc = concat!("let q = concur::queue::", stringify!($ty), "::unbounded();")]
            /// q.put(5).unwrap();
            /// q.shutdown(false);
            /// assert_eq!(q.get(), Ok(5));
            /// assert!(q.get().is_err());
            /// ```
            #[inline]
            pub fn get(&self) -> Result<T, ShutDown> {
                self.chan.get(Wait::Until(None)).map_err(|_| ShutDown(()))
            }

            /// Takes the next item if there is one, never blocking (Python's
            /// `get_nowait` / `get(block=False)`).
            ///
            /// # Errors
            ///
            /// [`TryGetError::Empty`], or [`TryGetError::ShutDown`] when shut down and
            /// drained.
            ///
            /// ```
            /// use concur::queue::TryGetError;
            #[doc = concat!("let q = concur::queue::", stringify!($ty), "::<u8>::unbounded();")]
            /// assert_eq!(q.try_get(), Err(TryGetError::Empty));
            /// ```
            #[inline]
            pub fn try_get(&self) -> Result<T, TryGetError> {
                self.chan.get(Wait::Never).map_err(|e| match e {
                    GetFail::Empty => TryGetError::Empty,
                    GetFail::ShutDown => TryGetError::ShutDown,
                })
            }

            /// Takes the next item, blocking at most `timeout` while the queue is empty
            /// (Python's `get(timeout=t)`). A timeout too large to represent waits
            /// forever.
            ///
            /// # Errors
            ///
            /// [`GetTimeoutError::Empty`] if still empty at the end, or
            /// [`GetTimeoutError::ShutDown`] when shut down and drained.
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = concat!("let q = concur::queue::", stringify!($ty), "::<u8>::bounded(4);")]
            /// assert!(q.get_timeout(Duration::from_millis(5)).unwrap_err().is_empty());
            /// ```
            pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
                self.get_until(deadline_after(timeout))
            }

            /// Takes the next item, blocking until `deadline` at most.
            ///
            /// # Errors
            ///
            /// As [`get_timeout`](Self::get_timeout).
            ///
            /// ```
            /// use std::time::Instant;
            #[doc = concat!("let q = concur::queue::", stringify!($ty), "::bounded(4);")]
            /// q.put(1).unwrap();
            /// assert_eq!(q.get_deadline(Instant::now()), Ok(1));
            /// ```
            pub fn get_deadline(&self, deadline: Instant) -> Result<T, GetTimeoutError> {
                self.get_until(Some(deadline))
            }

            fn get_until(&self, deadline: Option<Instant>) -> Result<T, GetTimeoutError> {
                self.chan.get(Wait::Until(deadline)).map_err(|e| match e {
                    GetFail::Empty => GetTimeoutError::Empty,
                    GetFail::ShutDown => GetTimeoutError::ShutDown,
                })
            }

            /// The number of items queued right now (Python's `qsize()`; only a
            /// snapshot when other threads are active). Never blocks.
            ///
            /// ```
            #[doc = concat!("let q = concur::queue::", stringify!($ty), "::unbounded();")]
            /// q.put(1).unwrap();
            /// assert_eq!(q.qsize(), 1);
            /// ```
            pub fn qsize(&self) -> usize {
                self.chan.len()
            }

            /// True if no item is queued right now (Python's `empty()`). Never blocks.
            ///
            /// ```
            #[doc = concat!("let q = concur::queue::", stringify!($ty), "::<u8>::unbounded();")]
            /// assert!(q.empty());
            /// ```
            pub fn empty(&self) -> bool {
                self.chan.is_empty()
            }

            /// True if the queue is bounded and has no room right now (Python's
            /// `full()`). Never blocks.
            ///
            /// ```
            #[doc = concat!("let q = concur::queue::", stringify!($ty), "::bounded(1);")]
            /// assert!(!q.full());
            /// q.put(1).unwrap();
            /// assert!(q.full());
            /// ```
            pub fn full(&self) -> bool {
                self.chan.is_full()
            }

            /// The bound given at creation, `0` for unbounded (Python's `maxsize`).
            ///
            /// ```
            #[doc = concat!("assert_eq!(concur::queue::", stringify!($ty), "::<u8>::bounded(8).maxsize(), 8);")]
            /// ```
            pub fn maxsize(&self) -> usize {
                self.chan.capacity().unwrap_or(0)
            }

            /// Marks one earlier-queued item as processed (Python's `task_done()`), so
            /// that [`join`](Self::join) can return once every put is matched. Never
            /// blocks; wakes the joiners when the last unfinished task completes.
            ///
            /// # Errors
            ///
            /// [`TaskDoneError`] if called more times than items were put.
            ///
            /// ```
            #[doc = concat!("let q = concur::queue::", stringify!($ty), "::unbounded();")]
            /// q.put(1).unwrap();
            /// q.get().unwrap();
            /// q.task_done().unwrap();
            /// assert!(q.task_done().is_err());
            /// ```
            #[inline]
            pub fn task_done(&self) -> Result<(), TaskDoneError> {
                self.chan.task_done()
            }

            /// Blocks until every item ever put has been matched by a
            /// [`task_done`](Self::task_done) (Python's `join()`). Items discarded by
            /// an immediate [`shutdown`](Self::shutdown) count as done.
            ///
            /// ```
            #[doc = concat!("let q = concur::queue::", stringify!($ty), "::bounded(4);")]
            /// let worker = std::thread::spawn({
            ///     let q = q.clone();
            ///     move || {
            ///         for _ in &q {
            ///             q.task_done().unwrap();
            ///         }
            ///     }
            /// });
            /// for i in 0..10 {
            ///     q.put(i).unwrap();
            /// }
            /// q.join();
            /// assert_eq!(q.qsize(), 0);
            /// q.shutdown(false);
            /// worker.join().unwrap();
            /// ```
            pub fn join(&self) {
                self.chan.join(None);
            }

            /// As [`join`](Self::join), giving up after `timeout`; true if every task
            /// was done. A timeout too large to represent waits forever.
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = concat!("let q = concur::queue::", stringify!($ty), "::unbounded();")]
            /// q.put(1).unwrap();
            /// assert!(!q.join_timeout(Duration::from_millis(5)));
            /// q.task_done().unwrap();
            /// assert!(q.join_timeout(Duration::from_millis(5)));
            /// ```
            pub fn join_timeout(&self, timeout: Duration) -> bool {
                self.chan.join(deadline_after(timeout))
            }

            /// As [`join`](Self::join), giving up at `deadline`; true if every task was
            /// done.
            ///
            /// ```
            /// use std::time::Instant;
            #[doc = concat!("let q = concur::queue::", stringify!($ty), "::<u8>::unbounded();")]
            /// assert!(q.join_deadline(Instant::now()));
            /// ```
            pub fn join_deadline(&self, deadline: Instant) -> bool {
                self.chan.join(Some(deadline))
            }

            /// Shuts the queue down (Python 3.13's `shutdown(immediate)`). Never blocks.
            ///
            /// Afterwards every `put` fails with `ShutDown`; `get` hands out what is
            /// left, then fails with `ShutDown`; blocked getters, putters and joiners
            /// wake. With `immediate`, the queued items are dropped at once and each
            /// counts as done for [`join`](Self::join) (items already taken still need
            /// their `task_done`). Calling it again is harmless, and may upgrade to
            /// `immediate`. A `put` running at the same moment may still succeed: it
            /// is then ordered before the shutdown (after an immediate one, its item
            /// is discarded like the others).
            ///
            /// ```
            #[doc = concat!("let q = concur::queue::", stringify!($ty), "::unbounded();")]
            /// q.put(1).unwrap();
            /// q.put(2).unwrap();
            /// q.shutdown(true);
            /// assert!(q.get().is_err());
            /// assert!(q.join_timeout(std::time::Duration::ZERO));
            /// ```
            pub fn shutdown(&self, immediate: bool) {
                self.chan.shutdown(immediate);
            }

            /// True once [`shutdown`](Self::shutdown) has been called (Python's
            /// `is_shutdown`).
            ///
            /// ```
            #[doc = concat!("let q = concur::queue::", stringify!($ty), "::<u8>::unbounded();")]
            /// q.shutdown(false);
            /// assert!(q.is_shutdown());
            /// ```
            pub fn is_shutdown(&self) -> bool {
                self.chan.is_shutdown()
            }

            /// A blocking iterator of [`get`](Self::get)s that ends once the queue is
            /// shut down and drained. Also `for item in &queue`.
            ///
            /// ```
            #[doc = concat!("let q = concur::queue::", stringify!($ty), "::unbounded();")]
            /// q.put(3).unwrap();
            /// q.shutdown(false);
            /// assert_eq!(q.iter().sum::<i32>(), 3);
            /// ```
            pub fn iter(&self) -> Iter<'_, T> {
                Iter { src: &*self.chan }
            }

            /// A non-blocking iterator of [`try_get`](Self::try_get)s that ends when
            /// the queue is empty.
            ///
            /// ```
            #[doc = concat!("let q = concur::queue::", stringify!($ty), "::unbounded();")]
            /// q.put(3).unwrap();
            /// assert_eq!(q.try_iter().count(), 1);
            /// ```
            pub fn try_iter(&self) -> TryIter<'_, T> {
                TryIter { src: &*self.chan }
            }
        }

        impl<T $($bound)*> Clone for $ty<T> {
            /// Another handle to the same queue.
            fn clone(&self) -> Self {
                $ty { chan: self.chan.clone() }
            }
        }

        impl<T $($bound)*> std::fmt::Debug for $ty<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("maxsize", &self.maxsize())
                    .field("qsize", &self.qsize())
                    .field("is_shutdown", &self.is_shutdown())
                    .finish()
            }
        }

        impl<'a, T $($bound)*> IntoIterator for &'a $ty<T> {
            type Item = T;
            type IntoIter = Iter<'a, T>;
            fn into_iter(self) -> Iter<'a, T> {
                self.iter()
            }
        }
    };
}

pub(crate) use joinable_queue;
