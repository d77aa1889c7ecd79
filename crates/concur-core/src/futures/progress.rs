//! [`Progress`]: how far a piece of work has got (a map's items, or the units a task
//! reports from inside itself).

/// How far work has got: told to a map's [progress hook](super::MapOptions::progress)
/// (items done), and what a task reports with [`progress`](super::progress) and its
/// future shows ([`Future::progress`](super::Future::progress)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Units done so far (for a map: items whose function has returned or panicked).
    pub done: usize,
    /// All units, when known (for a map: when the input's length is known up front,
    /// an exact `size_hint`).
    pub total: Option<usize>,
}
