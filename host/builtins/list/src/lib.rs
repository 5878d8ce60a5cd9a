//! # portcullis-builtins-list
//!
//! The one list of the built-in plugins. Everything that needs to know which plugins are
//! built in reads it here:
//!
//! * the build script of `portcullis-builtins` builds each [`Entry::package`] for
//!   `wasm32-wasip2` and embeds the component under [`Entry::name`];
//! * `portcullis-model` derives the default chain configuration from each entry's
//!   [`Role`], so the proxy needs no configuration file;
//! * the benchmark's native decider pairs each entry with the plugin crate's Rust code.
//!
//! It is plain data with no dependency, so reading it never builds a plugin: the runtime
//! and the model know the built-ins' names and roles without embedding their bytes.

/// One built-in plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The registry name the proxy loads it under and chains refer to.
    pub name: &'static str,
    /// The cargo package under `plugins/` that builds it.
    pub package: &'static str,
    /// What it does in the default chains.
    pub role: Role,
}

/// What a built-in plugin does when the operator configured no chains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A policy plugin, in each of these default chains (in list order).
    Policy(&'static [Chain]),
    /// The provider plugin of this provider profile name.
    Provider(&'static str),
}

/// A policy chain of the default configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chain {
    /// May this run use this connector at all.
    Access,
    /// May this MCP message pass.
    Request,
    /// Which tools this run may see and call.
    Tools,
}

pub const CONNECTOR_ACCESS: Entry = Entry {
    name: "connector-access",
    package: "portcullis-plugin-connector-access",
    role: Role::Policy(&[Chain::Access]),
};

pub const DECLARED_TOOLS: Entry = Entry {
    name: "declared-tools",
    package: "portcullis-plugin-declared-tools",
    role: Role::Policy(&[Chain::Request, Chain::Tools]),
};

pub const CONNECTOR_ALLOWLIST: Entry = Entry {
    name: "connector-allowlist",
    package: "portcullis-plugin-connector-allowlist",
    role: Role::Policy(&[Chain::Request, Chain::Tools]),
};

pub const PROVIDER_BEARER: Entry = Entry {
    name: "provider-bearer",
    package: "portcullis-plugin-provider-bearer",
    role: Role::Provider("bearer"),
};

pub const PROVIDER_SENTRY: Entry = Entry {
    name: "provider-sentry",
    package: "portcullis-plugin-provider-sentry",
    role: Role::Provider("sentry"),
};

pub const PROVIDER_GITHUB: Entry = Entry {
    name: "provider-github",
    package: "portcullis-plugin-provider-github",
    role: Role::Provider("github"),
};

pub const PROVIDER_SLACK: Entry = Entry {
    name: "provider-slack",
    package: "portcullis-plugin-provider-slack",
    role: Role::Provider("slack"),
};

pub const PROVIDER_NOTION: Entry = Entry {
    name: "provider-notion",
    package: "portcullis-plugin-provider-notion",
    role: Role::Provider("notion"),
};

pub const PROVIDER_SUPABASE: Entry = Entry {
    name: "provider-supabase",
    package: "portcullis-plugin-provider-supabase",
    role: Role::Provider("supabase"),
};

/// Every built-in plugin. A chain's default order is this order: `declared-tools` is asked
/// before `connector-allowlist`.
pub const LIST: [Entry; 9] = [
    CONNECTOR_ACCESS,
    DECLARED_TOOLS,
    CONNECTOR_ALLOWLIST,
    PROVIDER_BEARER,
    PROVIDER_SENTRY,
    PROVIDER_GITHUB,
    PROVIDER_SLACK,
    PROVIDER_NOTION,
    PROVIDER_SUPABASE,
];

/// The names of the built-in policies in `chain`, in list order.
pub fn policies_in(chain: Chain) -> impl Iterator<Item = &'static str> {
    LIST.iter().filter_map(move |entry| match entry.role {
        Role::Policy(chains) if chains.contains(&chain) => Some(entry.name),
        _ => None,
    })
}

/// `(provider profile, plugin name)` of every built-in provider.
pub fn providers() -> impl Iterator<Item = (&'static str, &'static str)> {
    LIST.iter().filter_map(|entry| match entry.role {
        Role::Provider(profile) => Some((profile, entry.name)),
        Role::Policy(_) => None,
    })
}

/// The entry named `name`, if it is a built-in.
pub fn entry(name: &str) -> Option<&'static Entry> {
    LIST.iter().find(|entry| entry.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_packages_are_unique_and_every_package_is_a_plugin_crate() {
        let plugins = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../plugins");
        for (i, entry) in LIST.iter().enumerate() {
            assert!(
                LIST[i + 1..]
                    .iter()
                    .all(|other| other.name != entry.name && other.package != entry.package),
                "{entry:?} is listed twice"
            );
            let manifest = plugins.join(entry.name).join("Cargo.toml");
            let text = std::fs::read_to_string(&manifest)
                .unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
            assert!(
                text.contains(&format!("name = \"{}\"", entry.package)),
                "{} does not build {}",
                manifest.display(),
                entry.package
            );
        }
    }

    #[test]
    fn the_default_chains_and_profiles() {
        assert_eq!(
            policies_in(Chain::Access).collect::<Vec<_>>(),
            ["connector-access"]
        );
        for chain in [Chain::Request, Chain::Tools] {
            assert_eq!(
                policies_in(chain).collect::<Vec<_>>(),
                ["declared-tools", "connector-allowlist"]
            );
        }
        assert_eq!(
            providers().collect::<Vec<_>>(),
            [
                ("bearer", "provider-bearer"),
                ("sentry", "provider-sentry"),
                ("github", "provider-github"),
                ("slack", "provider-slack"),
                ("notion", "provider-notion"),
                ("supabase", "provider-supabase")
            ]
        );
        assert_eq!(entry("declared-tools"), Some(&DECLARED_TOOLS));
        assert_eq!(entry("hostile"), None);
    }
}
