//! The CLI's error: one line saying what failed, why, and what to do.

use std::fmt;

/// A failure to report to the user (already phrased as "what: reason; fix").
#[derive(Debug)]
pub struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<mqseal_store::StoreError> for CliError {
    fn from(e: mqseal_store::StoreError) -> CliError {
        let hint = match &e {
            mqseal_store::StoreError::Missing { path, .. }
                if path.ends_with(mqseal_store::layout::IDENTITY_KEY) =>
            {
                " (create an identity with `mqseal keygen NAME --store DIR`)"
            }
            mqseal_store::StoreError::Locked { .. } => {
                " (another mqseal process uses this store; stop it or use another store)"
            }
            _ => "",
        };
        CliError(format!("{e}{hint}"))
    }
}

impl From<mqseal_rumqttc::Error> for CliError {
    fn from(e: mqseal_rumqttc::Error) -> CliError {
        CliError(e.to_string())
    }
}

impl From<mqseal::Error> for CliError {
    fn from(e: mqseal::Error) -> CliError {
        CliError(format!("{e} [{}]", e.name()))
    }
}

impl From<mqseal_rumqttc::ConnectFailure> for CliError {
    fn from(f: mqseal_rumqttc::ConnectFailure) -> CliError {
        CliError(format!("cannot connect: {}; fix: {}", f.reason, f.fix))
    }
}

/// Shorthand.
pub type Result<T> = std::result::Result<T, CliError>;

/// A `CliError` from any displayable cause, with context.
pub fn err(context: &str, cause: impl fmt::Display) -> CliError {
    CliError(format!("{context}: {cause}"))
}
