//! Integration tests of the client and the `glpi-network` CLI: against the real server run
//! in-process, and against hostile servers written here.

mod cli;
mod cli_instances;
mod cli_probe;
mod cli_tls;
mod helpers;
mod hostile;
mod hostile_server;
mod keys;
mod kinds;
mod lifecycle;
