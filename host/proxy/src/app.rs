//! Wiring: the shared state every handler gets, and the router.

pub struct AppState {}
