//! The integration suite: the real server on port 0 over real sockets, against SQLite and
//! PostgreSQL (each test runs on both), plus end-to-end tests of the built binary.

mod helpers;

mod alerts;
mod auth;
mod authz;
mod bad_input;
mod bypass;
mod chat;
mod cli;
mod compliance;
mod e2e;
mod faults;
mod fuzz;
mod hostile;
mod mailbox;
mod managers;
mod public_surface;
mod queue_options;
mod queues;
