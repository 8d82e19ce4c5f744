//! Probing services: the network policy every outbound check passes before it connects, and the
//! confirmation state machine that turns results into probe states.

pub mod policy;
pub mod state;
