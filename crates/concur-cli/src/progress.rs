//! Progress bars on stderr, shared by `tour` and `bench`.
//!
//! Bars are drawn through indicatif's stderr draw target, which hides itself when
//! stderr is not a terminal; with `--json` every bar is hidden outright so that a
//! machine reading the output sees nothing but the document.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Makes progress bars that are either drawn on stderr (when it is a terminal) or hidden.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bars {
    hidden: bool,
}

impl Bars {
    /// Bars drawn on stderr if it is a terminal, unless `hidden`.
    pub(crate) fn new(hidden: bool) -> Self {
        Bars { hidden }
    }

    /// A bar of `len` units labelled `label`; call `finish_and_clear` when done.
    pub(crate) fn bar(&self, len: u64, label: &str) -> ProgressBar {
        let target = if self.hidden {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(len), target);
        let style = ProgressStyle::with_template(
            "{prefix:>18.bold} [{bar:32.cyan/blue}] {percent:>3}% {msg} ({elapsed})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(label.to_owned());
        bar
    }
}
