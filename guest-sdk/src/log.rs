//! Logging into the run's history.
//!
//! Use the macros: `log::info!("processed {n} files")`. Messages past the
//! run's log budget are dropped by the host and the truncation is marked;
//! logging never fails.

pub use crate::bindings::wasmcron::plugin::log::Level;

/// Log `message` at `level` with key/value `fields`.
pub fn log_with(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    crate::bindings::wasmcron::plugin::log::log(level, message, &fields);
}

/// Log `message` at `level`.
pub fn log(level: Level, message: &str) {
    crate::bindings::wasmcron::plugin::log::log(level, message, &[]);
}

/// Log at trace level, `format!` style.
#[macro_export]
macro_rules! __log_trace { ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Trace, &::std::format!($($arg)*)) }; }
/// Log at debug level, `format!` style.
#[macro_export]
macro_rules! __log_debug { ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Debug, &::std::format!($($arg)*)) }; }
/// Log at info level, `format!` style.
#[macro_export]
macro_rules! __log_info { ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Info, &::std::format!($($arg)*)) }; }
/// Log at warn level, `format!` style.
#[macro_export]
macro_rules! __log_warn { ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Warn, &::std::format!($($arg)*)) }; }
/// Log at error level, `format!` style.
#[macro_export]
macro_rules! __log_error { ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Error, &::std::format!($($arg)*)) }; }

#[doc(inline)]
pub use crate::{
    __log_debug as debug, __log_error as error, __log_info as info, __log_trace as trace,
    __log_warn as warn,
};
