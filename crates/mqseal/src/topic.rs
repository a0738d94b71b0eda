//! MQTT topic names and the key filters that keys are issued for.

use alloc::string::{String, ToString};
use core::fmt;

use crate::error::{Error, Result};

/// Longest topic or filter MQTT can carry (its length is a 16-bit field).
pub const MAX_TOPIC_LEN: usize = 65_535;

/// Most levels a topic name may have (spec section 1): bounds the key derivation one message
/// can cost a receiver.
pub const MAX_TOPIC_LEVELS: usize = 32;

/// Checks that `topic` can be published to and sealed for: 1 to 65535 bytes of UTF-8 without
/// NUL, `+` or `#`, with at most [`MAX_TOPIC_LEVELS`] levels.
///
/// ```
/// assert!(mqseal::validate_topic("plant/7/temp").is_ok());
/// assert!(mqseal::validate_topic("plant/+/temp").is_err());
/// assert!(mqseal::validate_topic(&"a/".repeat(32)).is_err()); // 33 levels
/// ```
pub fn validate_topic(topic: &str) -> Result<()> {
    if topic.is_empty() || topic.len() > MAX_TOPIC_LEN {
        return Err(Error::InvalidTopic);
    }
    // One pass in 64-byte chunks without early exits inside a chunk, so the compiler vectorizes
    // it: a receiver checks every topic of every message, junk included (a 65 535-byte topic
    // took 56 us with a short-circuiting scan, ~2 us this way).
    let mut slashes = 0usize;
    for chunk in topic.as_bytes().chunks(64) {
        let mut bad = false;
        let mut n = 0u8;
        for &b in chunk {
            bad |= (b == 0) | (b == b'+') | (b == b'#');
            n += u8::from(b == b'/');
        }
        slashes += usize::from(n);
        if bad || slashes >= MAX_TOPIC_LEVELS {
            return Err(Error::InvalidTopic);
        }
    }
    Ok(())
}

/// The shape of a [`KeyFilter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FilterKind {
    /// `prefix/#` (or `#`): the prefix topic itself and every topic below it.
    Subtree,
    /// One exact topic, nothing below it.
    Exact,
}

/// What a key covers: `#`, `prefix/#`, or an exact topic (no `+`: a single key cannot follow a
/// single-level wildcard; subscribe with `+` using a subtree key instead).
///
/// ```
/// use mqseal::KeyFilter;
/// let f = KeyFilter::parse("plant/7/#").unwrap();
/// assert!(f.covers("plant/7"));
/// assert!(f.covers("plant/7/temp"));
/// assert!(!f.covers("plant/70/temp"));
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyFilter {
    text: String,
    kind: FilterKind,
}

impl KeyFilter {
    /// Parses a filter. Fails with [`Error::InvalidFilter`] on `+`, a `#` that is not the whole
    /// last level, NUL, an empty string or more than 65535 bytes.
    pub fn parse(filter: &str) -> Result<KeyFilter> {
        if filter.is_empty() || filter.len() > MAX_TOPIC_LEN || filter.contains(['\0', '+']) {
            return Err(Error::InvalidFilter);
        }
        let (prefix, kind) = if filter == "#" {
            ("", FilterKind::Subtree)
        } else if let Some(prefix) = filter.strip_suffix("/#") {
            (prefix, FilterKind::Subtree)
        } else {
            (filter, FilterKind::Exact)
        };
        if prefix.contains('#') {
            return Err(Error::InvalidFilter);
        }
        Ok(KeyFilter {
            text: filter.to_string(),
            kind,
        })
    }

    /// The root filter `#`: every topic.
    pub fn root() -> KeyFilter {
        KeyFilter {
            text: "#".to_string(),
            kind: FilterKind::Subtree,
        }
    }

    /// The filter as written, e.g. `plant/7/#`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Subtree or exact topic.
    pub fn kind(&self) -> FilterKind {
        self.kind
    }

    /// The topic levels the key sits at: for `a/b/#` and for exact `a/b` that is `a/b`; for `#`
    /// it is the root (no level).
    pub fn prefix(&self) -> Option<&str> {
        match self.kind {
            FilterKind::Exact => Some(&self.text),
            FilterKind::Subtree if self.text == "#" => None,
            FilterKind::Subtree => self.text.strip_suffix("/#"),
        }
    }

    /// The levels of `topic` below this filter's prefix, if the filter covers `topic`.
    ///
    /// `Some(None)` means the topic is the prefix itself.
    pub(crate) fn levels_below<'t>(&self, topic: &'t str) -> Option<Option<&'t str>> {
        match (self.kind, self.prefix()) {
            (FilterKind::Exact, Some(p)) => (topic == p).then_some(None),
            (FilterKind::Subtree, None) => Some(Some(topic)),
            (FilterKind::Subtree, Some(p)) => {
                let rest = topic.strip_prefix(p)?;
                if rest.is_empty() {
                    Some(None)
                } else {
                    rest.strip_prefix('/').map(Some)
                }
            }
            (FilterKind::Exact, None) => None,
        }
    }

    /// Whether `topic` (a topic name, not a filter) is covered by this filter.
    pub fn covers(&self, topic: &str) -> bool {
        self.levels_below(topic).is_some()
    }

    /// Whether every topic `other` covers is covered by this filter too, so that a key for
    /// `other` lies inside this filter's part of the tree (spec 8.1, issuer scope): `#` contains
    /// every filter; `P/#` contains itself, the exact topic `P` and every filter below `P`; an
    /// exact topic contains only itself.
    ///
    /// ```
    /// use mqseal::KeyFilter;
    /// let lab = KeyFilter::parse("lab/#").unwrap();
    /// assert!(lab.contains(&KeyFilter::parse("lab/7/temp").unwrap()));
    /// assert!(lab.contains(&KeyFilter::parse("lab").unwrap()));
    /// assert!(!lab.contains(&KeyFilter::parse("plant/7/temp").unwrap()));
    /// assert!(!lab.contains(&KeyFilter::parse("#").unwrap()));
    /// ```
    pub fn contains(&self, other: &KeyFilter) -> bool {
        match (self.kind, other.prefix()) {
            (FilterKind::Exact, _) => self == other,
            // Only the root contains the root.
            (FilterKind::Subtree, None) => self.prefix().is_none(),
            (FilterKind::Subtree, Some(p)) => self.covers(p),
        }
    }

    /// How many levels deep the prefix sits (`#` is 0), used to prefer specific keys.
    pub(crate) fn depth(&self) -> usize {
        self.prefix().map_or(0, |p| p.split('/').count())
    }
}

impl fmt::Display for KeyFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for KeyFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyFilter({:?})", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics() {
        assert!(validate_topic("a").is_ok());
        assert!(validate_topic("/a//b/").is_ok());
        assert!(validate_topic("$SYS/x").is_ok());
        for bad in ["", "a/#", "a/+/b", "a\0b"] {
            assert_eq!(validate_topic(bad), Err(Error::InvalidTopic), "{bad:?}");
        }
        let long = "x".repeat(MAX_TOPIC_LEN + 1);
        assert_eq!(validate_topic(&long), Err(Error::InvalidTopic));
        assert!(validate_topic(&long[1..]).is_ok());
        let deepest = alloc::vec!["l"; MAX_TOPIC_LEVELS].join("/");
        assert!(validate_topic(&deepest).is_ok());
        assert_eq!(
            validate_topic(&alloc::format!("{deepest}/l")),
            Err(Error::InvalidTopic)
        );
        assert_eq!(validate_topic(&"/".repeat(32)), Err(Error::InvalidTopic));
        assert!(validate_topic(&"/".repeat(31)).is_ok());
        // Forbidden bytes and the level count at chunk edges and in the last, partial chunk.
        for at in [0, 63, 64, 65, 127, 200] {
            let mut t = alloc::vec![b'x'; 201];
            for bad in [0u8, b'+', b'#'] {
                t[at] = bad;
                let t = core::str::from_utf8(&t).unwrap();
                assert_eq!(validate_topic(t), Err(Error::InvalidTopic), "{at} {bad}");
            }
        }
        let spread: String = (0..MAX_TOPIC_LEVELS)
            .map(|i| "y".repeat(i * 7))
            .collect::<alloc::vec::Vec<_>>()
            .join("/");
        assert!(validate_topic(&spread).is_ok());
        assert_eq!(
            validate_topic(&alloc::format!("{spread}/")),
            Err(Error::InvalidTopic)
        );
    }

    #[test]
    fn filters() {
        for bad in ["", "a/+/#", "a#", "a/#/b", "#/a", "a/b#", "a\0/#"] {
            assert_eq!(KeyFilter::parse(bad), Err(Error::InvalidFilter), "{bad:?}");
        }
        let root = KeyFilter::parse("#").unwrap();
        assert_eq!(root.prefix(), None);
        assert!(root.covers("anything/at/all"));
        let sub = KeyFilter::parse("a/b/#").unwrap();
        assert_eq!(sub.levels_below("a/b"), Some(None));
        assert_eq!(sub.levels_below("a/b/c/d"), Some(Some("c/d")));
        assert_eq!(sub.levels_below("a/bc"), None);
        assert_eq!(sub.levels_below("a"), None);
        assert_eq!(sub.depth(), 2);
        let exact = KeyFilter::parse("a/b").unwrap();
        assert!(exact.covers("a/b"));
        assert!(!exact.covers("a/b/c"));
        let f = |s| KeyFilter::parse(s).unwrap();
        assert!(f("#").contains(&f("#")));
        assert!(f("#").contains(&f("a")));
        assert!(f("a/#").contains(&f("a/#")));
        assert!(f("a/#").contains(&f("a")));
        assert!(f("a/#").contains(&f("a/b/#")));
        assert!(!f("a/#").contains(&f("ab/#")));
        assert!(!f("a/#").contains(&f("#")));
        assert!(!f("a/#").contains(&f("/#")));
        assert!(f("a").contains(&f("a")));
        assert!(!f("a").contains(&f("a/#")));
        assert!(!f("a").contains(&f("a/b")));
        assert!(f("/#").contains(&f("/")));
        assert!(!f("/#").contains(&f("a")));
        let empty_level = KeyFilter::parse("/#").unwrap();
        assert_eq!(empty_level.levels_below("/x"), Some(Some("x")));
        assert_eq!(empty_level.levels_below("x"), None);
    }
}
