//! Client for the GLPI Network licensing server (work in progress: see issue 5).
pub use glpi_network_shared as shared;
