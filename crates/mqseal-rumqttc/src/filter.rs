//! Topic filters are checked before they reach rumqttc, which refuses a bad one with an error
//! that reads like a closed client, and would encode one over 65535 bytes with a wrong length.

use crate::error::Error;

/// Checks a subscription filter (MQTT 3.1.1 and 5, section 4.7): not empty, at most 65535 bytes,
/// no NUL, `#` only as the last level and `+` only as a whole level. The clients' `subscribe`
/// run it first; [`Error::InvalidFilter`] names the filter and the problem.
pub fn check_filter(filter: &str) -> Result<(), Error> {
    let reason = if filter.is_empty() {
        "it is empty"
    } else if filter.len() > usize::from(u16::MAX) {
        "it is longer than 65535 bytes"
    } else if filter.contains('\0') {
        "it contains a NUL character"
    } else if !rumqttc::valid_filter(filter) {
        "'#' must be the last level and '+' a whole level (e.g. a/+/c, a/#)"
    } else {
        return Ok(());
    };
    Err(Error::InvalidFilter {
        filter: shorten(filter),
        reason,
    })
}

/// The filter for messages: at most 64 characters, then its length.
fn shorten(filter: &str) -> String {
    if filter.chars().count() <= 64 {
        return filter.to_string();
    }
    let head: String = filter.chars().take(48).collect();
    format!("{head}… ({} bytes)", filter.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_filters_are_named_with_the_reason() {
        for ok in ["#", "a/#", "a/+/c", "+", "a/b", "+/+/#"] {
            assert!(check_filter(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(70_000);
        for (bad, why) in [
            ("", "empty"),
            ("a/#/b", "'#' must be"),
            ("a/b#", "'#' must be"),
            ("a/b+/c", "'+' a whole level"),
            ("a/\0", "NUL"),
            (long.as_str(), "65535"),
        ] {
            let e = check_filter(bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(why), "{bad:.20}: {e}");
            assert!(e.len() < 200, "{e}");
        }
    }
}
