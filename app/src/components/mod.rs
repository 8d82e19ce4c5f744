pub mod bulk;
pub mod changes;
pub mod first_run;
pub mod guidance;
pub mod live;
pub mod state;
pub mod theme;
pub mod tiles;
