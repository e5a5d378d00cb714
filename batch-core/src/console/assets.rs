//! The console's stylesheet and script, compiled into the binary so that it works
//! offline and loads nothing from elsewhere.

/// `/assets/console.css`.
pub(crate) const CSS: &str = include_str!("assets/console.css");

/// `/assets/console.js`: the live refresh of pages that show a running execution.
pub(crate) const JS: &str = include_str!("assets/console.js");
