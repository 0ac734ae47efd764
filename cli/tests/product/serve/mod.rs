//! `videossm serve` end to end: the page in headless Chromium, and bad requests
//! from plain HTTP / WebSocket clients.
mod browser;
mod client;
mod page;
mod requests;
