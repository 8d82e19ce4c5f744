pub mod live;
pub mod state;
pub mod theme;
