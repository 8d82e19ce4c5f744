pub mod live;
pub mod theme;
