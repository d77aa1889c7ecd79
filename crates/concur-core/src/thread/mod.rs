//! Python's `threading` threads: [`Builder`], join handles that return the closure's
//! value or its panic, `current_thread`, `enumerate`, `Timer`, `Local`...

mod ident;

pub use ident::get_ident;
