//! The `#[job]` attribute of `wasmcron-guest`. Use it through that crate,
//! which re-exports it; this crate exists only because attribute macros must
//! live in a `proc-macro` crate of their own.

use proc_macro::TokenStream;
use quote::quote;
use syn::{ItemFn, parse_macro_input, spanned::Spanned};

/// The shape both attributes require: no arguments to the attribute, one
/// parameter, not async.
fn check(attr: TokenStream, func: &ItemFn, what: &str, param: &str) -> syn::Result<()> {
    if !attr.is_empty() {
        let attr = proc_macro2::TokenStream::from(attr);
        return Err(syn::Error::new(
            attr.span(),
            format!("#[{what}] takes no arguments"),
        ));
    }
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

/// Marks the function a job plugin runs on every fire.
///
/// The function takes a `wasmcron_guest::Context` and returns
/// `Result<T, E>` where `T: wasmcron_guest::IntoOutput` and
/// `E: Into<wasmcron_guest::JobError>`. See the `wasmcron-guest` crate docs.
#[proc_macro_attribute]
pub fn job(attr: TokenStream, item: TokenStream) -> TokenStream {
    let func = parse_macro_input!(item as ItemFn);
    if let Err(e) = check(attr, &func, "job", "ctx: wasmcron_guest::Context") {
        return e.to_compile_error().into();
    }
    let name = &func.sig.ident;
    quote! {
        #func

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
    let func = parse_macro_input!(item as ItemFn);
    if let Err(e) = check(attr, &func, "listener", "event: wasmcron_guest::Event") {
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
