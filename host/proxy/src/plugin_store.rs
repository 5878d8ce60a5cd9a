//! Keeps the plugins operators install, so they survive a restart.
//!
//! Each installed plugin is one file in `<data-dir>/plugins/`: `<name>.wasm` is the
//! version serving, `<name>.previous.wasm` the one a rollback returns to. A built-in
//! plugin has no file until an operator replaces it; rolling back to the built-in removes
//! the file again. Files are reached through a cap-std `Dir`, so no plugin name can reach
//! outside the directory (names are also limited to `a-z0-9-` by the runtime), and written
//! to a temporary name first, then renamed, so a crash never leaves half a component.
//!
//! At start the proxy loads the built-ins, then every `<name>.wasm` over them; a chain may
//! name an installed plugin. The previous version is kept in memory by the runtime only
//! after an install, so a rollback right after a restart reports that there is none.

use std::io::ErrorKind;

use cap_std::fs::Dir;

const DIRECTORY: &str = "plugins";
const CURRENT: &str = ".wasm";
const PREVIOUS: &str = ".previous.wasm";

#[derive(Debug, thiserror::Error)]
#[error("the installed-plugins directory failed at {file}: {detail}")]
pub struct PluginStoreError {
    file: String,
    detail: String,
}

pub struct PluginStore {
    dir: Dir,
    /// Held across an install or rollback and its file changes, so two admin calls on
    /// the same plugin cannot interleave their renames.
    writer: tokio::sync::Mutex<()>,
}

fn error(file: &str) -> impl FnOnce(std::io::Error) -> PluginStoreError + '_ {
    move |e| PluginStoreError {
        file: format!("{DIRECTORY}/{file}"),
        detail: e.to_string(),
    }
}

impl PluginStore {
    /// Opens (creating it if needed) the plugins directory inside the data directory.
    pub fn open(data_dir: &Dir) -> Result<Self, PluginStoreError> {
        match data_dir.create_dir(DIRECTORY) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(error("")(e)),
        }
        let dir = data_dir.open_dir(DIRECTORY).map_err(error(""))?;
        Ok(Self {
            dir,
            writer: tokio::sync::Mutex::new(()),
        })
    }

    /// Every installed plugin's serving version, by name.
    pub fn installed(&self) -> Result<Vec<(String, Vec<u8>)>, PluginStoreError> {
        let mut plugins = Vec::new();
        for entry in self.dir.entries().map_err(error(""))? {
            let entry = entry.map_err(error(""))?;
            let file = entry.file_name().to_string_lossy().into_owned();
            let Some(name) = file.strip_suffix(CURRENT) else {
                continue;
            };
            if file.ends_with(PREVIOUS) {
                continue;
            }
            let bytes = self.dir.read(&file).map_err(error(&file))?;
            plugins.push((name.to_owned(), bytes));
        }
        plugins.sort();
        Ok(plugins)
    }

    /// Serializes changes to installed plugins; hold it across the runtime's swap and
    /// the matching [`PluginStore::installed_new`] or [`PluginStore::rolled_back`].
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writer.lock().await
    }

    /// Records that `bytes` now serve as `name`; the version it replaced becomes the
    /// previous one.
    pub fn installed_new(&self, name: &str, bytes: &[u8]) -> Result<(), PluginStoreError> {
        let (current, previous, temporary) = files(name);
        if self.dir.exists(&current) {
            self.dir
                .rename(&current, &self.dir, &previous)
                .map_err(error(&current))?;
        } else {
            self.remove(&previous)?;
        }
        self.dir
            .write(&temporary, bytes)
            .map_err(error(&temporary))?;
        self.dir
            .rename(&temporary, &self.dir, &current)
            .map_err(error(&temporary))
    }

    /// Records a rollback of `name`: the current and previous files trade places (either
    /// may be absent, meaning the built-in).
    pub fn rolled_back(&self, name: &str) -> Result<(), PluginStoreError> {
        let (current, previous, temporary) = files(name);
        let rename = |from: &str, to: &str| {
            if self.dir.exists(from) {
                self.dir.rename(from, &self.dir, to).map_err(error(from))
            } else {
                self.remove(to)
            }
        };
        rename(&current, &temporary)?;
        rename(&previous, &current)?;
        rename(&temporary, &previous)
    }

    fn remove(&self, file: &str) -> Result<(), PluginStoreError> {
        match self.dir.remove_file(file) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(error(file)(e)),
        }
    }
}

fn files(name: &str) -> (String, String, String) {
    (
        format!("{name}{CURRENT}"),
        format!("{name}{PREVIOUS}"),
        format!("{name}.partial"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, PluginStore) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        (tmp, PluginStore::open(&dir).unwrap())
    }

    #[test]
    fn installs_and_rollbacks_keep_current_and_previous() {
        let (_tmp, store) = store();
        assert!(store.installed().unwrap().is_empty());
        store.installed_new("declared-tools", b"v1").unwrap();
        store.installed_new("declared-tools", b"v2").unwrap();
        assert_eq!(
            store.installed().unwrap(),
            [("declared-tools".to_owned(), b"v2".to_vec())]
        );
        store.rolled_back("declared-tools").unwrap();
        assert_eq!(
            store.installed().unwrap(),
            [("declared-tools".to_owned(), b"v1".to_vec())]
        );
        store.rolled_back("declared-tools").unwrap();
        assert_eq!(
            store.installed().unwrap(),
            [("declared-tools".to_owned(), b"v2".to_vec())]
        );
    }

    #[test]
    fn rolling_back_a_first_install_returns_to_the_built_in() {
        let (_tmp, store) = store();
        store.installed_new("no-deletes", b"v1").unwrap();
        store.rolled_back("no-deletes").unwrap();
        assert!(store.installed().unwrap().is_empty());
        store.rolled_back("no-deletes").unwrap();
        assert_eq!(
            store.installed().unwrap(),
            [("no-deletes".to_owned(), b"v1".to_vec())]
        );
    }
}
