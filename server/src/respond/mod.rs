//! Incident response: incidents with their timelines, key times and live rooms (`incidents`), the
//! guided debugging checklists picked from the live signal (`guidance`), and postmortems
//! written from resolved incidents (`postmortems`), notifications that tell people about all of
//! it (`notify`), public status pages with the updates commanders post for the outside
//! (`status_pages`), and the probe file's rules and maintenance windows beside its probes
//! (`declared`). Their Markdown is rendered by `app::markdown`.

pub mod declared;
pub mod guidance;
pub mod incidents;
pub mod notify;
pub mod postmortems;
pub mod status_pages;
