//! The `#[job]` attribute of `wasmcron-guest`. Use it through that crate,
//! which re-exports it; this crate exists only because attribute macros must
//! live in a `proc-macro` crate of their own.

use proc_macro::TokenStream;
use quote::quote;
use syn::{ItemFn, parse_macro_input, spanned::Spanned};

/// Marks the function a job plugin runs on every fire.
///
/// The function takes a `wasmcron_guest::Context` and returns
/// `Result<T, E>` where `T: wasmcron_guest::IntoOutput` and
/// `E: Into<wasmcron_guest::JobError>`. See the `wasmcron-guest` crate docs.
#[proc_macro_attribute]
pub fn job(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let attr = proc_macro2::TokenStream::from(attr);
        return syn::Error::new(attr.span(), "#[job] takes no arguments")
            .to_compile_error()
            .into();
    }
    let func = parse_macro_input!(item as ItemFn);
    if func.sig.inputs.len() != 1 {
        return syn::Error::new(
            func.sig.inputs.span(),
            "a #[job] function takes exactly one argument: `ctx: wasmcron_guest::Context`",
        )
        .to_compile_error()
        .into();
    }
    if func.sig.asyncness.is_some() {
        return syn::Error::new(func.sig.span(), "a #[job] function cannot be async")
            .to_compile_error()
            .into();
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
    if !attr.is_empty() {
        let attr = proc_macro2::TokenStream::from(attr);
        return syn::Error::new(attr.span(), "#[listener] takes no arguments")
            .to_compile_error()
            .into();
    }
    let func = parse_macro_input!(item as ItemFn);
    if func.sig.inputs.len() != 1 {
        return syn::Error::new(
            func.sig.inputs.span(),
            "a #[listener] function takes exactly one argument: `event: wasmcron_guest::Event`",
        )
        .to_compile_error()
        .into();
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
