//! The latchkey binary's library half: settings, start-up and the admin commands, so that
//! tests can build the same application the binary runs.

pub mod admin;
pub mod backchannel;
pub mod compare;
pub mod settings;
pub mod startup;

pub use settings::{Settings, SettingsArgs};
pub use startup::{Application, StartError};
