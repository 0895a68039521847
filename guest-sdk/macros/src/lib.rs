//! The `#[job]` attribute and `#[derive(JobArgs)]` of `wasmcron-guest`.
//! Use them through that crate, which re-exports them; this crate exists
//! only because macros must live in a `proc-macro` crate of their own.

mod args;

use proc_macro::TokenStream;
use quote::quote;
use syn::{DeriveInput, ItemFn, parse_macro_input, spanned::Spanned};

/// The shape both attributes require: one parameter, not async.
fn check(func: &ItemFn, what: &str, param: &str) -> syn::Result<()> {
    if func.sig.inputs.len() != 1 {
        return Err(syn::Error::new(
            func.sig.inputs.span(),
            format!("a #[{what}] function takes exactly one argument: `{param}`"),
        ));
    }
    if func.sig.asyncness.is_some() {
        return Err(syn::Error::new(
            func.sig.span(),
            format!("a #[{what}] function cannot be async"),
        ));
    }
    Ok(())
}

/// `#[job]` takes nothing, or `args = T` to declare the type the job's
/// args deserialize to (its schema goes into the component).
fn job_args(attr: TokenStream) -> syn::Result<Option<syn::Type>> {
    let mut ty = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("args") {
            ty = Some(meta.value()?.parse::<syn::Type>()?);
            Ok(())
        } else {
            Err(meta.error(
                "#[job] takes nothing, or `args = T`: the type (deriving JobArgs) its args \
                 deserialize to",
            ))
        }
    });
    syn::parse::Parser::parse(parser, attr)?;
    Ok(ty)
}

/// Marks the function a job plugin runs on every fire.
///
/// The function takes a `wasmcron_guest::Context` and returns
/// `Result<T, E>` where `T: wasmcron_guest::IntoOutput` and
/// `E: Into<wasmcron_guest::JobError>`. `#[job(args = T)]`, with `T`
/// deriving `JobArgs`, declares the schema of the job's args in the
/// component, so the host refuses a job whose args break it when it is
/// added. See the `wasmcron-guest` crate docs.
#[proc_macro_attribute]
pub fn job(attr: TokenStream, item: TokenStream) -> TokenStream {
    let args = match job_args(attr) {
        Ok(args) => args,
        Err(e) => return e.to_compile_error().into(),
    };
    let func = parse_macro_input!(item as ItemFn);
    if let Err(e) = check(&func, "job", "ctx: wasmcron_guest::Context") {
        return e.to_compile_error().into();
    }
    let name = &func.sig.ident;
    let section = args.as_ref().map(args::section);
    quote! {
        #func

        #section

        #[doc(hidden)]
        struct __WasmcronJob;

        impl ::wasmcron_guest::__private::Runner for __WasmcronJob {
            fn run(
                ctx: ::wasmcron_guest::__private::RunContext,
            ) -> ::core::result::Result<
                ::std::string::String,
                ::wasmcron_guest::__private::WitJobError,
            > {
                ::wasmcron_guest::__private::dispatch(ctx, #name)
            }
        }

        ::wasmcron_guest::__export_job!(__WasmcronJob);
    }
    .into()
}

/// Marks the function an error-listener plugin runs for each event.
///
/// The function takes a `wasmcron_guest::Event` and returns
/// `Result<(), E>` where `E: Display`.
#[proc_macro_attribute]
pub fn listener(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let attr = proc_macro2::TokenStream::from(attr);
        return syn::Error::new(attr.span(), "#[listener] takes no arguments")
            .to_compile_error()
            .into();
    }
    let func = parse_macro_input!(item as ItemFn);
    if let Err(e) = check(&func, "listener", "event: wasmcron_guest::Event") {
        return e.to_compile_error().into();
    }
    let name = &func.sig.ident;
    quote! {
        #func

        #[doc(hidden)]
        struct __WasmcronListener;

        impl ::wasmcron_guest::__private::Handler for __WasmcronListener {
            fn on_event(
                event: ::wasmcron_guest::__private::WitJobEvent,
            ) -> ::core::result::Result<(), ::std::string::String> {
                ::wasmcron_guest::__private::dispatch_event(event, #name)
            }
        }

        ::wasmcron_guest::__export_listener!(__WasmcronListener);
    }
    .into()
}

/// Derives `wasmcron_guest::JobArgs`: the JSON Schema of the type's serde
/// representation, written at compile time. See `wasmcron_guest::args`
/// for what it understands; `#[args(any)]` on a field accepts any JSON
/// there.
#[proc_macro_derive(JobArgs, attributes(args))]
pub fn derive_job_args(item: TokenStream) -> TokenStream {
    let input = parse_macro_input!(item as DeriveInput);
    args::derive(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
