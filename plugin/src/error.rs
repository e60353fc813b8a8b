//! The plugin's failures as users read them: one line naming what went
//! wrong and what to do, optionally followed by a block to copy (the Role
//! to grant), and the exit code to leave with.

use std::fmt;

use netdiag_wire::exit;

#[derive(Debug)]
pub struct PluginError {
    pub message: String,
    /// Printed after the message line, e.g. a Role manifest.
    pub detail: Option<String>,
    pub code: u8,
}

impl PluginError {
    pub fn new(message: impl Into<String>) -> PluginError {
        PluginError {
            message: message.into(),
            detail: None,
            code: exit::FAILURE,
        }
    }

    pub fn with_detail(mut self, detail: String) -> PluginError {
        self.detail = Some(detail);
        self
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The text of a Kubernetes API error: the server's Status message when
/// there is one (that is what kubectl prints), else kube-rs's words.
pub fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        other => other.to_string(),
    }
}

/// The HTTP status code of an API error, if it has one.
pub fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}
