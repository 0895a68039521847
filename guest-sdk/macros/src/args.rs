//! `#[derive(JobArgs)]`: a type's JSON Schema, written at compile time
//! from its fields and serde attributes.
//!
//! The schema must never be stricter than serde: the host refuses a job
//! whose args break it, so a schema that refuses what serde accepts would
//! refuse good jobs. So every serde attribute this does not follow makes
//! the part it touches accept anything (`{}`), and optionality follows
//! serde's own syntactic rules (a field whose type is written `Option<..>`
//! may be missing, as may one with `#[serde(default)]`).
//!
//! Field types are mapped by their last path segment (`Vec`, `Option`,
//! `HashMap`, ...), as serde's derive does for `Option`; any other type is
//! asked for its `JobArgs::SCHEMA`, joined in at compile time by const
//! functions, so nested argument types work without running code.

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Fields, GenericArgument, LitStr, PathArguments, Type};

/// One piece of the schema text: JSON written here, or another type's
/// schema filled in by the compiler.
enum Part {
    Text(String),
    Of(Type),
}

/// The schema as a list of parts, merging adjacent text.
#[derive(Default)]
struct Schema(Vec<Part>);

impl Schema {
    fn text(&mut self, s: &str) {
        if let Some(Part::Text(last)) = self.0.last_mut() {
            last.push_str(s);
        } else {
            self.0.push(Part::Text(s.to_owned()));
        }
    }

    fn of(&mut self, ty: &Type) {
        self.0.push(Part::Of(ty.clone()));
    }

    fn append(&mut self, other: Schema) {
        for part in other.0 {
            match part {
                Part::Text(t) => self.text(&t),
                Part::Of(ty) => self.of(&ty),
            }
        }
    }
}

/// A JSON string literal for `s`.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// serde's `rename_all` cases, applied to a field or variant name as
/// written in Rust (snake_case fields, PascalCase variants).
fn rename(name: &str, rule: &str, variant: bool) -> Option<String> {
    let words: Vec<String> = if variant {
        let mut words = Vec::new();
        let mut word = String::new();
        for c in name.chars() {
            if c.is_uppercase() && !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            word.push(c);
        }
        if !word.is_empty() {
            words.push(word);
        }
        words
    } else {
        name.split('_').map(str::to_owned).collect()
    };
    let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
    let capital = |w: &String| {
        let mut c = w.chars();
        c.next()
            .map(|f| f.to_uppercase().chain(c).collect::<String>())
            .unwrap_or_default()
    };
    Some(match rule {
        "lowercase" => {
            if variant {
                name.to_lowercase()
            } else {
                name.to_owned()
            }
        }
        "UPPERCASE" => name.to_uppercase(),
        "PascalCase" => lower.iter().map(capital).collect(),
        "camelCase" => {
            let mut out = String::new();
            for (i, w) in lower.iter().enumerate() {
                if i == 0 {
                    out.push_str(w);
                } else {
                    out.push_str(&capital(w));
                }
            }
            out
        }
        "snake_case" => lower.join("_"),
        "SCREAMING_SNAKE_CASE" => lower.join("_").to_uppercase(),
        "kebab-case" => lower.join("-"),
        "SCREAMING-KEBAB-CASE" => lower.join("-").to_uppercase(),
        _ => return None,
    })
}

/// What the serde attributes on one item say, as far as the schema cares.
#[derive(Default)]
struct Serde {
    rename: Option<String>,
    rename_all: Option<String>,
    aliases: Vec<String>,
    default: bool,
    skip: bool,
    deny_unknown: bool,
    flatten: bool,
    /// Something this does not follow: accept anything there.
    opaque: bool,
}

/// Reads `#[serde(...)]` attributes. `rename(deserialize = "..")` forms
/// count for deserializing only, as serde does.
fn serde_attrs(attrs: &[Attribute]) -> syn::Result<Serde> {
    let mut out = Serde::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| {
            let key = meta
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            // `key = "value"` or `key(deserialize = "value", ...)`.
            let value = || -> syn::Result<Option<String>> {
                if meta.input.peek(syn::Token![=]) {
                    let lit: LitStr = meta.value()?.parse()?;
                    return Ok(Some(lit.value()));
                }
                if meta.input.peek(syn::token::Paren) {
                    let mut found = None;
                    meta.parse_nested_meta(|inner| {
                        let v: LitStr = inner.value()?.parse()?;
                        if inner.path.is_ident("deserialize") {
                            found = Some(v.value());
                        }
                        Ok(())
                    })?;
                    return Ok(found);
                }
                Ok(None)
            };
            match key.as_str() {
                "rename" => out.rename = value()?.or(out.rename.take()),
                "rename_all" => out.rename_all = value()?.or(out.rename_all.take()),
                "alias" => out.aliases.extend(value()?),
                "default" => {
                    let _ = value()?;
                    out.default = true;
                }
                "skip" | "skip_deserializing" => out.skip = true,
                "deny_unknown_fields" => out.deny_unknown = true,
                "flatten" => out.flatten = true,
                // Serializing only, or no effect on what deserializes.
                "skip_serializing"
                | "skip_serializing_if"
                | "serialize_with"
                | "bound"
                | "crate"
                | "expecting"
                | "into"
                | "borrow"
                | "getter" => {
                    let _ = value()?;
                }
                _ => {
                    let _ = value()?;
                    out.opaque = true;
                }
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// Whether `#[args(any)]` is on the field; any other `#[args(..)]` is an
/// error.
fn args_any(attrs: &[Attribute]) -> syn::Result<bool> {
    let mut any = false;
    for attr in attrs.iter().filter(|a| a.path().is_ident("args")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("any") {
                any = true;
                Ok(())
            } else {
                Err(meta.error("#[args(..)] knows only `any`: accept any JSON for this field"))
            }
        })?;
    }
    Ok(any)
}

/// The doc comment, lines joined, trimmed; `None` when there is none.
fn doc(attrs: &[Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value().trim().to_owned()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let text = lines.join(" ").trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// The last segment of a path type and its generic type arguments.
fn last_segment(ty: &Type) -> Option<(String, Vec<&Type>)> {
    let Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    let seg = p.path.segments.last()?;
    let args = match &seg.arguments {
        PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|g| match g {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Some((seg.ident.to_string(), args))
}

/// The schema of a field's type.
fn type_schema(ty: &Type) -> Schema {
    let mut s = Schema::default();
    match ty {
        Type::Reference(r) => return type_schema(&r.elem),
        Type::Paren(p) => return type_schema(&p.elem),
        Type::Group(g) => return type_schema(&g.elem),
        Type::Array(a) => {
            let n = match &a.len {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Int(n),
                    ..
                }) => Some(n.base10_digits().to_owned()),
                _ => None,
            };
            s.text(r#"{"type":"array","items":"#);
            s.append(type_schema(&a.elem));
            if let Some(n) = n {
                s.text(&format!(r#","minItems":{n},"maxItems":{n}"#));
            }
            s.text("}");
            return s;
        }
        Type::Tuple(t) if t.elems.is_empty() => {
            s.text(r#"{"type":"null"}"#);
            return s;
        }
        Type::Tuple(t) => {
            s.text(r#"{"type":"array","prefixItems":["#);
            for (i, elem) in t.elems.iter().enumerate() {
                if i > 0 {
                    s.text(",");
                }
                s.append(type_schema(elem));
            }
            let n = t.elems.len();
            s.text(&format!(r#"],"minItems":{n},"maxItems":{n}}}"#));
            return s;
        }
        _ => {}
    }
    match last_segment(ty) {
        Some((name, args)) => match (name.as_str(), args.as_slice()) {
            ("Option", [inner]) => {
                s.text(r#"{"anyOf":["#);
                s.append(type_schema(inner));
                s.text(r#",{"type":"null"}]}"#);
            }
            ("Box" | "Rc" | "Arc" | "Cow", [inner]) => s.append(type_schema(inner)),
            (
                "Vec" | "VecDeque" | "LinkedList" | "HashSet" | "BTreeSet" | "BinaryHeap",
                [inner],
            ) => {
                s.text(r#"{"type":"array","items":"#);
                s.append(type_schema(inner));
                s.text("}");
            }
            ("HashMap" | "BTreeMap", [_, value]) => {
                s.text(r#"{"type":"object","additionalProperties":"#);
                s.append(type_schema(value));
                s.text("}");
            }
            ("Value", []) => s.text("{}"),
            _ => s.of(ty),
        },
        None => s.text("{}"),
    }
    s
}

/// Whether serde lets the field be missing by its type alone (written
/// `Option<..>`, as serde's derive decides it).
fn is_option(ty: &Type) -> bool {
    matches!(last_segment(ty), Some((name, args)) if name == "Option" && args.len() == 1)
}

/// The schema of a struct with named fields.
fn named_struct(
    fields: &syn::FieldsNamed,
    container: &Serde,
    desc: Option<&str>,
) -> syn::Result<Schema> {
    let mut s = Schema::default();
    s.text(r#"{"type":"object""#);
    if let Some(d) = desc {
        s.text(&format!(r#","description":{}"#, json_string(d)));
    }
    s.text(r#","properties":{"#);
    let mut required = Vec::new();
    let mut first = true;
    let mut open = !container.deny_unknown;
    for field in &fields.named {
        let attrs = serde_attrs(&field.attrs)?;
        if attrs.skip {
            continue;
        }
        if attrs.flatten {
            // Its fields sit beside ours: what they are is not followed.
            open = true;
            continue;
        }
        let ident = field
            .ident
            .as_ref()
            .map(|i| i.to_string().trim_start_matches("r#").to_owned())
            .unwrap_or_default();
        let name = match (&attrs.rename, &container.rename_all) {
            (Some(r), _) => r.clone(),
            (None, Some(rule)) => rename(&ident, rule, false).ok_or_else(|| {
                syn::Error::new(
                    field.span(),
                    format!("unknown serde rename_all rule {rule:?}"),
                )
            })?,
            (None, None) => ident,
        };
        let any = args_any(&field.attrs)? || attrs.opaque;
        let mut field_schema = Schema::default();
        let desc = doc(&field.attrs);
        if any {
            match &desc {
                Some(d) => field_schema.text(&format!(r#"{{"description":{}}}"#, json_string(d))),
                None => field_schema.text("{}"),
            }
        } else if let Some(d) = &desc {
            // {"description": .., "allOf": [type]}: the type's schema may
            // come from elsewhere, so it is wrapped rather than edited.
            field_schema.text(&format!(r#"{{"description":{},"allOf":["#, json_string(d)));
            field_schema.append(type_schema(&field.ty));
            field_schema.text("]}");
        } else {
            field_schema.append(type_schema(&field.ty));
        }
        let optional = container.default
            || attrs.default
            || is_option(&field.ty)
            || any
            || !attrs.aliases.is_empty();
        for key in std::iter::once(&name).chain(&attrs.aliases) {
            if !first {
                s.text(",");
            }
            first = false;
            s.text(&json_string(key));
            s.text(":");
            // Each name gets the same schema; the parts are cheap to repeat.
            let mut copy = Schema::default();
            for part in &field_schema.0 {
                match part {
                    Part::Text(t) => copy.text(t),
                    Part::Of(ty) => copy.of(ty),
                }
            }
            s.append(copy);
        }
        if !optional {
            required.push(json_string(&name));
        }
    }
    s.text("}");
    if !required.is_empty() {
        s.text(&format!(r#","required":[{}]"#, required.join(",")));
    }
    if !open {
        s.text(r#","additionalProperties":false"#);
    }
    s.text("}");
    Ok(s)
}

/// The schema of an enum: the names of its unit variants; anything else
/// (data in a variant, a tag, `untagged`, `other`) accepts anything.
fn unit_enum(data: &syn::DataEnum, container: &Serde) -> syn::Result<Schema> {
    let mut s = Schema::default();
    let mut names = Vec::new();
    for variant in &data.variants {
        let attrs = serde_attrs(&variant.attrs)?;
        if attrs.opaque || !matches!(variant.fields, Fields::Unit) {
            s.text("{}");
            return Ok(s);
        }
        if attrs.skip {
            continue;
        }
        let ident = variant.ident.to_string();
        let name = match (&attrs.rename, &container.rename_all) {
            (Some(r), _) => r.clone(),
            (None, Some(rule)) => rename(&ident, rule, true).ok_or_else(|| {
                syn::Error::new(
                    variant.span(),
                    format!("unknown serde rename_all rule {rule:?}"),
                )
            })?,
            (None, None) => ident,
        };
        names.push(json_string(&name));
        names.extend(attrs.aliases.iter().map(|a| json_string(a)));
    }
    s.text(&format!(r#"{{"enum":[{}]}}"#, names.join(",")));
    Ok(s)
}

/// `#[derive(JobArgs)]`.
pub fn derive(input: &DeriveInput) -> syn::Result<TokenStream> {
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new(
            input.generics.span(),
            "#[derive(JobArgs)] does not support generic types; mark the field that holds \
             this type #[args(any)] instead",
        ));
    }
    let container = serde_attrs(&input.attrs)?;
    let desc = doc(&input.attrs);
    let schema = if container.opaque {
        let mut s = Schema::default();
        s.text("{}");
        s
    } else {
        match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => named_struct(named, &container, desc.as_deref())?,
                // A newtype deserializes as what it wraps.
                Fields::Unnamed(u) if u.unnamed.len() == 1 => type_schema(&u.unnamed[0].ty),
                Fields::Unit => {
                    let mut s = Schema::default();
                    s.text(r#"{"type":"null"}"#);
                    s
                }
                Fields::Unnamed(_) => {
                    let mut s = Schema::default();
                    s.text(r#"{"type":"array"}"#);
                    s
                }
            },
            Data::Enum(data) => unit_enum(data, &container)?,
            Data::Union(_) => {
                return Err(syn::Error::new(
                    input.span(),
                    "#[derive(JobArgs)] does not support unions",
                ));
            }
        }
    };
    let parts = schema.0.iter().map(|p| match p {
        Part::Text(t) => quote! { #t },
        Part::Of(ty) => quote! { <#ty as ::wasmcron_guest::JobArgs>::SCHEMA },
    });
    let name = &input.ident;
    Ok(quote! {
        impl ::wasmcron_guest::JobArgs for #name {
            const SCHEMA: &'static str = {
                const PARTS: &[&str] = &[#(#parts),*];
                const LEN: usize = ::wasmcron_guest::__private::args::total_len(PARTS);
                const BYTES: [u8; LEN] = ::wasmcron_guest::__private::args::concat::<LEN>(PARTS);
                ::wasmcron_guest::__private::args::as_str(&BYTES)
            };
        }
    })
}

/// What `#[job(args = T)]` adds: `T`'s schema as the component's custom
/// section `wasmcron:args-schema` (on wasm targets only; elsewhere a
/// `link_section` would need the platform's section syntax).
pub fn section(ty: &Type) -> TokenStream {
    quote! {
        #[cfg(target_family = "wasm")]
        const _: () = {
            const SCHEMA: &str = <#ty as ::wasmcron_guest::JobArgs>::SCHEMA;
            #[used]
            #[unsafe(link_section = "wasmcron:args-schema")]
            static ARGS_SCHEMA: [u8; SCHEMA.len()] =
                ::wasmcron_guest::__private::args::concat::<{ SCHEMA.len() }>(&[SCHEMA]);
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_rules_follow_serde() {
        assert_eq!(rename("max_items", "camelCase", false).unwrap(), "maxItems");
        assert_eq!(
            rename("max_items", "kebab-case", false).unwrap(),
            "max-items"
        );
        assert_eq!(
            rename("max_items", "PascalCase", false).unwrap(),
            "MaxItems"
        );
        assert_eq!(
            rename("max_items", "SCREAMING_SNAKE_CASE", false).unwrap(),
            "MAX_ITEMS"
        );
        assert_eq!(rename("DryRun", "snake_case", true).unwrap(), "dry_run");
        assert_eq!(rename("DryRun", "lowercase", true).unwrap(), "dryrun");
        assert_eq!(rename("DryRun", "camelCase", true).unwrap(), "dryRun");
        assert!(rename("x", "Title Case", false).is_none());
    }

    #[test]
    fn strings_are_escaped_as_json() {
        assert_eq!(json_string("a\"b\\c\n"), r#""a\"b\\c\n""#);
    }
}
