//! The desktop console (Tauri 2).

use crate::config::Settings;

pub fn run(_settings: Settings) -> anyhow::Result<()> {
    anyhow::bail!("the desktop console is not built yet")
}
