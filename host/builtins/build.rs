//! Builds every built-in plugin (`portcullis-builtins-list`) for wasm32-wasip2 and embeds
//! the components, so an ordinary `cargo build` or `cargo run` of the proxy needs no extra
//! step.

use std::path::{Path, PathBuf};

use portcullis_builtins_list::LIST;
use portcullis_wasm_build::{PluginBuild, PluginCrate, nested_target_dir, workspace_root};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = workspace_root(&manifest_dir).expect("host/builtins lives inside the workspace");
    for input in [
        "plugins",
        "sdk/src",
        "sdk/Cargo.toml",
        "wit",
        "Cargo.lock",
        "Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(input).display());
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    let crates: Vec<PluginCrate> = LIST.iter().map(|e| PluginCrate::new(e.package)).collect();
    let build = PluginBuild::new(root.join("Cargo.toml"), nested_target_dir(&root));
    let artifacts = match build.build(&crates) {
        Ok(paths) => paths,
        Err(error) => {
            eprintln!("error: building the built-in plugins failed: {error}");
            std::process::exit(1);
        }
    };

    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let mut table = String::from("pub static BUILTINS: &[Builtin] = &[\n");
    for (entry, artifact) in LIST.iter().zip(&artifacts) {
        let embedded = out_dir.join(format!("{}.wasm", entry.name));
        copy_if_changed(artifact, &embedded);
        table.push_str(&format!(
            "    Builtin {{ name: {:?}, wasm: include_bytes!({:?}) }},\n",
            entry.name,
            embedded.display().to_string()
        ));
    }
    table.push_str("];\n");
    std::fs::write(out_dir.join("builtins.rs"), table).expect("write builtins.rs");
}

fn copy_if_changed(from: &Path, to: &Path) {
    let bytes = std::fs::read(from).expect("read built plugin");
    if std::fs::read(to).ok().as_deref() != Some(bytes.as_slice()) {
        std::fs::write(to, bytes).expect("copy built plugin");
    }
}
