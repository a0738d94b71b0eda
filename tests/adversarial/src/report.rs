//! Counting what each attack class achieved, and the summary table the tests print.
//!
//! Per class: how many tampered or injected messages reached the receiver (attempts), how many
//! it accepted although it should not have (false accepts), how many panicked, the refusals by
//! error kind, the legitimate messages delivered during the attack (drop/reorder/delay classes
//! deliver the survivors exactly once), and whether a legitimate message still got through
//! afterwards. [`Tally::verdict`] lists every violation.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;

use mqseal::Error;

/// One attack class's counts.
#[derive(Debug, Clone, Default)]
pub struct ClassCounts {
    /// Tampered, forged or replayed messages presented to the receiver.
    pub attempts: u64,
    /// Of those, accepted although they should not have been.
    pub false_accepts: u64,
    /// Opens that panicked (caught).
    pub panics: u64,
    /// Refusals by error.
    pub refused: BTreeMap<u32, (Error, u64)>,
    /// Refusals with an error outside the expected set, as `error@where`.
    pub unexpected: Vec<String>,
    /// Legitimate messages delivered (exactly once each) while the attack ran.
    pub legit_delivered: u64,
    /// Legitimate messages the attack suppressed (dropped), as intended.
    pub suppressed: u64,
    /// Accepted messages the class documents as accepted (e.g. group-mac forgeries).
    pub documented_accepts: u64,
    /// Legitimate messages sent after the attack, and how many got through.
    pub after: (u64, u64),
}

/// The counts of every class, in the order they were first recorded.
#[derive(Debug, Default)]
pub struct Tally {
    title: String,
    order: Vec<String>,
    counts: BTreeMap<String, ClassCounts>,
}

impl Tally {
    /// An empty tally whose table is headed by `title`.
    pub fn new(title: &str) -> Tally {
        Tally {
            title: title.to_string(),
            order: Vec::new(),
            counts: BTreeMap::new(),
        }
    }

    /// The counts of `class` (created empty on first use).
    pub fn class(&mut self, class: &str) -> &mut ClassCounts {
        if !self.counts.contains_key(class) {
            self.order.push(class.to_string());
        }
        self.counts.entry(class.to_string()).or_default()
    }

    fn classes(&self) -> impl Iterator<Item = (&String, &ClassCounts)> {
        self.order
            .iter()
            .filter_map(|name| self.counts.get(name).map(|c| (name, c)))
    }

    /// Records a refusal of an attack message with `error`, checked against `expected`
    /// (`at` says where, for the failure message).
    pub fn refused(&mut self, class: &str, error: Error, expected: &[Error], at: &str) {
        let c = self.class(class);
        c.attempts += 1;
        c.refused.entry(error.code()).or_insert((error, 0)).1 += 1;
        if !expected.contains(&error) && c.unexpected.len() < 20 {
            let names: Vec<&str> = expected.iter().map(|e| e.name()).collect();
            c.unexpected.push(format!(
                "{} at {at} (expected {})",
                error.name(),
                names.join("|")
            ));
        }
    }

    /// Records an attack message the receiver accepted: a false accept.
    pub fn false_accept(&mut self, class: &str, at: &str) {
        let c = self.class(class);
        c.attempts += 1;
        c.false_accepts += 1;
        if c.unexpected.len() < 20 {
            c.unexpected.push(format!("ACCEPTED at {at}"));
        }
    }

    /// Records an attack message accepted as the spec documents (a weaker profile's limit).
    pub fn documented_accept(&mut self, class: &str) {
        let c = self.class(class);
        c.attempts += 1;
        c.documented_accepts += 1;
    }

    /// Records a violation that is not about one message (e.g. a count that does not match).
    pub fn note(&mut self, class: &str, what: &str) {
        self.class(class).unexpected.push(what.to_string());
    }

    /// Records a panic while opening an attack message.
    pub fn panicked(&mut self, class: &str, at: &str) {
        let c = self.class(class);
        c.attempts += 1;
        c.panics += 1;
        c.unexpected.push(format!("PANIC at {at}"));
    }

    /// Records the outcome of one attack message: `Ok(())` = accepted (a false accept).
    pub fn outcome(
        &mut self,
        class: &str,
        result: Result<(), Error>,
        expected: &[Error],
        at: &str,
    ) {
        match result {
            Ok(()) => self.false_accept(class, at),
            Err(e) => self.refused(class, e, expected, at),
        }
    }

    /// Records a legitimate message delivered during the attack.
    pub fn legit(&mut self, class: &str, n: u64) {
        self.class(class).legit_delivered += n;
    }

    /// Records legitimate messages the attack dropped.
    pub fn suppressed(&mut self, class: &str, n: u64) {
        self.class(class).suppressed += n;
    }

    /// Records legitimate messages sent after the attack: `sent`, of which `ok` got through.
    pub fn after(&mut self, class: &str, sent: u64, ok: u64) {
        let c = self.class(class);
        c.after.0 += sent;
        c.after.1 += ok;
    }

    /// Total attack messages over all classes.
    pub fn attempts(&self) -> u64 {
        self.counts.values().map(|c| c.attempts).sum()
    }

    /// The summary table.
    pub fn table(&self) -> String {
        let mut out = format!("\n== {} ==\n", self.title);
        let _ = writeln!(
            out,
            "{:<54} {:>8} {:>6} {:>6} {:>6}  {:<9} refused by error",
            "attack class", "attempts", "false", "panic", "legit", "after ok"
        );
        for (name, c) in self.classes() {
            let refused: Vec<String> = c
                .refused
                .values()
                .map(|(e, n)| format!("{}={n}", e.name()))
                .collect();
            let mut extra = refused.join(" ");
            if c.documented_accepts > 0 {
                let _ = write!(extra, " accepted-as-documented={}", c.documented_accepts);
            }
            if c.suppressed > 0 {
                let _ = write!(extra, " dropped={}", c.suppressed);
            }
            let _ = writeln!(
                out,
                "{:<54} {:>8} {:>6} {:>6} {:>6}  {:<9} {}",
                name,
                c.attempts,
                c.false_accepts,
                c.panics,
                c.legit_delivered,
                format!("{}/{}", c.after.1, c.after.0),
                extra.trim()
            );
        }
        let _ = writeln!(
            out,
            "total: {} attack messages, {} false accepts, {} panics",
            self.attempts(),
            self.counts.values().map(|c| c.false_accepts).sum::<u64>(),
            self.counts.values().map(|c| c.panics).sum::<u64>()
        );
        out
    }

    /// Every violation: false accepts, panics, unexpected errors, a class without any attempt,
    /// or legitimate traffic that did not get through afterwards. Empty when all is well.
    pub fn violations(&self) -> Vec<String> {
        let mut v = Vec::new();
        for (name, c) in self.classes() {
            if c.attempts == 0 && c.suppressed == 0 && c.legit_delivered == 0 {
                v.push(format!("{name}: no attack message was presented"));
            }
            for u in &c.unexpected {
                v.push(format!("{name}: {u}"));
            }
            if c.after.0 == 0 || c.after.1 != c.after.0 {
                v.push(format!(
                    "{name}: legitimate traffic afterwards: {}/{} delivered",
                    c.after.1, c.after.0
                ));
            }
        }
        v
    }

    /// Prints the table (to the process's stderr directly, so it shows in `cargo test` output
    /// even when the test passes) and panics with the table and the violations if any.
    // Test support: failing the test loudly is its job.
    #[allow(clippy::panic)]
    pub fn verdict(&self) {
        let table = self.table();
        let _ = std::io::stderr().lock().write_all(table.as_bytes());
        let violations = self.violations();
        if !violations.is_empty() {
            std::panic::panic_any(format!(
                "{table}\nviolations:\n  {}",
                violations.join("\n  ")
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn violations_catch_false_accepts_unexpected_errors_and_missing_follow_up() {
        let mut t = Tally::new("t");
        t.refused("a", Error::Replay, &[Error::Replay], "m0");
        t.after("a", 1, 1);
        assert!(t.violations().is_empty(), "{:?}", t.violations());
        t.outcome("b", Ok(()), &[Error::Replay], "m1");
        t.refused("b", Error::Malformed, &[Error::Replay], "m2");
        t.after("b", 1, 0);
        let v = t.violations();
        assert_eq!(v.len(), 3, "{v:?}");
        assert!(t.table().contains("replay=1"));
        assert!(std::panic::catch_unwind(|| t.verdict()).is_err());
    }
}
