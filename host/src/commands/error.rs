//! Why the engine refused or failed a command, in the engine's terms; the
//! HTTP layer maps each kind to a status (`api::error`).

/// A refused or failed command operation, with a message for the caller
/// that says what was wrong and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// The input is not valid (e.g. a time that does not parse).
    Invalid(String),
    /// No such command or pipeline for this tenant (another tenant's is
    /// "not found" too, so a tenant cannot learn what exists).
    NotFound(String),
    /// The command exists with another body, or is in a state that does
    /// not allow the operation.
    Conflict(String),
    /// The engine could not do it (a state store failed).
    Internal(String),
    /// A system the command depends on (the target) failed it.
    Upstream(String),
}

impl CommandError {
    /// The message.
    pub fn message(&self) -> &str {
        match self {
            CommandError::Invalid(m) | CommandError::NotFound(m) | CommandError::Conflict(m) | CommandError::Internal(m) | CommandError::Upstream(m) => m,
        }
    }
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for CommandError {}

/// A state store that fails is the engine's fault, with its reason.
impl From<crate::state::StateError> for CommandError {
    fn from(e: crate::state::StateError) -> Self {
        CommandError::Internal(e.to_string())
    }
}
