//! Inspect: what a component declares about itself, read from its bytes without running
//! it (compare `kwctl inspect`). A reviewer learns a plugin's authority from its imports:
//! a component can only ever call what it imports, and admission links only the `log`
//! import and WASI with an empty context.
//!
//! The component's type is decoded with `wit-parser` into the world it implements; every
//! import and export is listed with its functions as WIT signatures. Custom sections
//! (names, producers, the bindings' type information) are listed by name and size, from
//! the component and every module inside it; the `producers` section, which says which
//! toolchain built the component, is decoded.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};
use wit_parser::decoding::{DecodedWasm, decode};
use wit_parser::{Function, Handle, Resolve, Type, TypeDefKind, WorldItem, WorldKey};

/// The WIT package every Portcullis world belongs to, whatever its version.
const CONTRACT_PACKAGE: &str = "portcullis:plugin";

/// What a component's bytes say about it.
#[derive(Clone, Debug, Serialize)]
pub struct Inspection {
    pub size: usize,
    pub sha256: String,
    /// The Portcullis world it implements (`portcullis:plugin/policy-plugin`), if any.
    pub world: Option<String>,
    /// The version of the WIT package `portcullis:plugin` it was built against.
    pub wit_version: Option<String>,
    pub imports: Vec<InterfaceUse>,
    pub exports: Vec<InterfaceUse>,
    pub custom_sections: Vec<CustomSection>,
    /// The `producers` section: which language, tools and SDK built it.
    pub producers: BTreeMap<String, Vec<String>>,
}

/// One import or export: an interface with its functions, or a bare function.
#[derive(Clone, Debug, Serialize)]
pub struct InterfaceUse {
    pub name: String,
    /// WIT signatures, such as `access: func(ctx: decision-context) -> decision`.
    pub functions: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CustomSection {
    pub name: String,
    /// Bytes, over every section of that name.
    pub size: usize,
    /// How many sections of that name (one per module that has it).
    pub count: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("the bytes are not a readable WebAssembly component: {0}")]
pub struct InspectError(String);

/// Reads what `bytes` declare. Fails only for bytes that are not a component.
pub fn inspect(bytes: &[u8]) -> Result<Inspection, InspectError> {
    let (resolve, world) = match decode(bytes).map_err(|e| InspectError(format!("{e:#}")))? {
        DecodedWasm::Component(resolve, world) => (resolve, world),
        DecodedWasm::WitPackage(..) => {
            return Err(InspectError(
                "it is a WIT package, not a component".to_owned(),
            ));
        }
    };
    let world = &resolve.worlds[world];
    let imports = world
        .imports
        .iter()
        .map(|(key, item)| interface_use(&resolve, key, item))
        .collect();
    let exports: Vec<InterfaceUse> = world
        .exports
        .iter()
        .map(|(key, item)| interface_use(&resolve, key, item))
        .collect();
    let (world_name, wit_version) = portcullis_world(&exports);
    let (custom_sections, producers) = sections(bytes)?;
    Ok(Inspection {
        size: bytes.len(),
        sha256: hex::encode(Sha256::digest(bytes)),
        world: world_name,
        wit_version,
        imports,
        exports,
        custom_sections,
        producers,
    })
}

fn interface_use(resolve: &Resolve, key: &WorldKey, item: &WorldItem) -> InterfaceUse {
    let name = resolve.name_world_key(key);
    let functions = match item {
        WorldItem::Interface { id, .. } => resolve.interfaces[*id]
            .functions
            .values()
            .map(|f| signature(resolve, f))
            .collect(),
        WorldItem::Function(f) => vec![signature(resolve, f)],
        WorldItem::Type { .. } => Vec::new(),
    };
    InterfaceUse { name, functions }
}

/// The Portcullis world and contract version an export list implements: the world is
/// named after the interface it exports (`policy` → `policy-plugin`).
fn portcullis_world(exports: &[InterfaceUse]) -> (Option<String>, Option<String>) {
    let prefix = format!("{CONTRACT_PACKAGE}/");
    exports
        .iter()
        .find_map(|export| {
            let rest = export.name.strip_prefix(&prefix)?;
            let (interface, version) = rest.split_once('@')?;
            Some((
                Some(format!("{CONTRACT_PACKAGE}/{interface}-plugin")),
                Some(version.to_owned()),
            ))
        })
        .unwrap_or((None, None))
}

fn signature(resolve: &Resolve, function: &Function) -> String {
    let params: Vec<String> = function
        .params
        .iter()
        .map(|p| format!("{}: {}", p.name, type_name(resolve, &p.ty)))
        .collect();
    let result = function
        .result
        .as_ref()
        .map(|ty| format!(" -> {}", type_name(resolve, ty)))
        .unwrap_or_default();
    format!("{}: func({}){result}", function.name, params.join(", "))
}

/// A type as WIT writes it: named types by name, anonymous ones spelled out.
fn type_name(resolve: &Resolve, ty: &Type) -> String {
    let id = match ty {
        Type::Bool => return "bool".into(),
        Type::U8 => return "u8".into(),
        Type::U16 => return "u16".into(),
        Type::U32 => return "u32".into(),
        Type::U64 => return "u64".into(),
        Type::S8 => return "s8".into(),
        Type::S16 => return "s16".into(),
        Type::S32 => return "s32".into(),
        Type::S64 => return "s64".into(),
        Type::F32 => return "f32".into(),
        Type::F64 => return "f64".into(),
        Type::Char => return "char".into(),
        Type::String => return "string".into(),
        Type::ErrorContext => return "error-context".into(),
        Type::Id(id) => *id,
    };
    let def = &resolve.types[id];
    if let Some(name) = &def.name {
        return name.clone();
    }
    let inner = |ty: &Type| type_name(resolve, ty);
    let optional = |ty: &Option<Type>| ty.as_ref().map(inner).unwrap_or_else(|| "_".into());
    match &def.kind {
        TypeDefKind::Option(t) => format!("option<{}>", inner(t)),
        TypeDefKind::List(t) => format!("list<{}>", inner(t)),
        TypeDefKind::Map(k, v) => format!("map<{}, {}>", inner(k), inner(v)),
        TypeDefKind::FixedLengthList(t, n) => format!("list<{}, {n}>", inner(t)),
        TypeDefKind::Tuple(t) => {
            let types: Vec<String> = t.types.iter().map(inner).collect();
            format!("tuple<{}>", types.join(", "))
        }
        TypeDefKind::Result(r) => match (&r.ok, &r.err) {
            (None, None) => "result".into(),
            (ok, err) => format!("result<{}, {}>", optional(ok), optional(err)),
        },
        TypeDefKind::Handle(Handle::Own(t)) => inner(&Type::Id(*t)),
        TypeDefKind::Handle(Handle::Borrow(t)) => format!("borrow<{}>", inner(&Type::Id(*t))),
        TypeDefKind::Future(t) => format!("future<{}>", optional(t)),
        TypeDefKind::Stream(t) => format!("stream<{}>", optional(t)),
        TypeDefKind::Type(t) => inner(t),
        _ => "_".into(),
    }
}

type Sections = (Vec<CustomSection>, BTreeMap<String, Vec<String>>);

/// The custom sections of the component and of every module in it, and its producers.
fn sections(bytes: &[u8]) -> Result<Sections, InspectError> {
    let mut by_name: BTreeMap<String, CustomSection> = BTreeMap::new();
    let mut producers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| InspectError(e.to_string()))?;
        let wasmparser::Payload::CustomSection(section) = payload else {
            continue;
        };
        let entry = by_name
            .entry(section.name().to_owned())
            .or_insert_with(|| CustomSection {
                name: section.name().to_owned(),
                size: 0,
                count: 0,
            });
        entry.size += section.data().len();
        entry.count += 1;
        if let wasmparser::KnownCustom::Producers(reader) = section.as_known() {
            for field in reader.into_iter().flatten() {
                let values = producers.entry(field.name.to_owned()).or_default();
                for value in field.values.into_iter().flatten() {
                    let text = format!("{} {}", value.name, value.version)
                        .trim()
                        .to_owned();
                    if !values.contains(&text) {
                        values.push(text);
                    }
                }
            }
        }
    }
    Ok((by_name.into_values().collect(), producers))
}
