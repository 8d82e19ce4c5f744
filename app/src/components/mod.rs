pub mod bulk;
pub mod first_run;
pub mod guidance;
pub mod live;
pub mod public_updates;
pub mod state;
pub mod theme;
pub mod tiles;
