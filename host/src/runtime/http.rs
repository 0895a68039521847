//! Bounds on the `wasi:http` resources a run may create.
//!
//! `wasi:http` is linked for every plugin, so adding a grant never needs a
//! different linker. The constructors that make the host hold memory for
//! the guest (`fields` and their headers, requests, responses, request
//! options) are wrapped here, in the same linker, to check the run's grant
//! and charge a per-run budget before delegating to wasmtime-wasi-http:
//!
//! - a job **without** an http grant may create at most
//!   [`UNGRANTED_HANDLES`] empty resources (enough for a guest to build one
//!   request and be told by `handle` that it is denied) and no header data
//!   at all; past that the run traps, saying the grant is missing;
//! - a job **with** a grant may create [`HTTP_BUDGET`] bytes of them over
//!   the run: header names and values plus [`ENTRY_COST`] per header, and a
//!   fixed cost per resource ([`HANDLE_COST`], or [`REQUEST_COST`] for a
//!   request or response, whose body buffer the host holds). The charge is
//!   not refunded when a resource is dropped: it bounds what the run can
//!   ever hold, at the price of a cap on how many requests one run may send
//!   (about a thousand).
//!
//! Every run's resource table is also capped at [`MAX_RESOURCES`] handles,
//! which bounds the fixed-size WASI resources (pollables, streams) the same
//! way.

use super::state::RunState;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, WasmList, WasmStr};
use wasmtime_wasi_http::p2::bindings::http::types::{
    self, HostFields, HostOutgoingRequest, HostOutgoingResponse, HostRequestOptions,
};
use wasmtime_wasi_http::{FieldMap, WasiHttpView};

/// The `wasi:http/types` version wasmtime-wasi-http links; components
/// importing any 0.2.x resolve to it.
const TYPES_INTERFACE: &str = "wasi:http/types@0.2.12";

/// Resources (handles of any kind) one run may hold at once.
pub const MAX_RESOURCES: usize = 10_000;
/// Bytes of `wasi:http` resources a run with an http grant may create.
pub const HTTP_BUDGET: usize = 32 << 20;
/// `wasi:http` resources a run without an http grant may create, all
/// empty.
pub const UNGRANTED_HANDLES: u32 = 8;
/// What one `fields` or request-options resource is charged.
pub const HANDLE_COST: usize = 256;
/// What one header is charged beyond its name and value.
pub const ENTRY_COST: usize = 32;
/// What one outgoing request or response is charged: its handle and the
/// body it may buffer (two chunks of [`BODY_CHUNK`]).
pub const REQUEST_COST: usize = 32 << 10;
/// The largest write to an outgoing body the host accepts at once (a
/// stream's `check-write` says so to the guest).
pub const BODY_CHUNK: usize = 16 << 10;

/// Why a run may not create an HTTP resource; the run traps with it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpResourceError {
    /// The job has no http grant.
    #[error(
        "wasi:http: the job has no capabilities.http grant, so it may not {what}; \
         grant the hosts it calls (capabilities.http = [\"https://host\"]) to use HTTP"
    )]
    NotGranted {
        /// What the guest tried.
        what: &'static str,
    },
    /// The run's budget is spent.
    #[error(
        "wasi:http: the run's HTTP resources would exceed {limit} bytes ({used} bytes of \
         headers, requests and handles created so far); a run may create at most that much"
    )]
    OverBudget {
        /// Charged so far, this charge included.
        used: usize,
        /// The budget.
        limit: usize,
    },
}

/// What a run has created of `wasi:http` resources.
#[derive(Debug)]
pub(crate) struct HttpBudget {
    granted: bool,
    used: usize,
    handles: u32,
}

impl HttpBudget {
    pub(crate) fn new(granted: bool) -> Self {
        Self {
            granted,
            used: 0,
            handles: 0,
        }
    }

    /// Charges a new resource of `cost` bytes, holding `content` bytes of
    /// guest data.
    fn charge(
        &mut self,
        what: &'static str,
        cost: usize,
        content: usize,
    ) -> Result<(), HttpResourceError> {
        if !self.granted {
            if content > 0 {
                return Err(HttpResourceError::NotGranted {
                    what: "send HTTP headers",
                });
            }
            if self.handles >= UNGRANTED_HANDLES {
                return Err(HttpResourceError::NotGranted { what });
            }
            self.handles += 1;
            return Ok(());
        }
        let used = self.used.saturating_add(cost).saturating_add(content);
        if used > HTTP_BUDGET {
            return Err(HttpResourceError::OverBudget {
                used,
                limit: HTTP_BUDGET,
            });
        }
        self.used = used;
        Ok(())
    }
}

type Store<'a> = StoreContextMut<'a, RunState>;

/// Wraps the allocating `wasi:http/types` functions already in `linker`.
///
/// # Errors
/// When `linker` has no `wasi:http` to wrap or the types do not match.
pub(crate) fn gate_http(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut types = linker.instance(TYPES_INTERFACE)?;
    types.func_wrap("[constructor]fields", |mut store: Store<'_>, (): ()| {
        store
            .data_mut()
            .http_budget
            .charge("create HTTP fields", HANDLE_COST, 0)?;
        Ok((HostFields::new(&mut store.data_mut().http())?,))
    })?;
    types.func_wrap(
        "[static]fields.from-list",
        |store: Store<'_>, (entries,): (WasmList<(WasmStr, WasmList<u8>)>,)| {
            from_list(store, &entries).map(|r| (r,))
        },
    )?;
    types.func_wrap(
        "[method]fields.append",
        |mut store: Store<'_>, (fields, name, value): (Resource<FieldMap>, String, Vec<u8>)| {
            let content = name.len() + value.len() + ENTRY_COST;
            store
                .data_mut()
                .http_budget
                .charge("send HTTP headers", 0, content)?;
            let mut view = store.data_mut().http();
            let result = HostFields::append(&mut view, fields, name, value);
            Ok((header_result(&mut view, result)?,))
        },
    )?;
    types.func_wrap(
        "[method]fields.set",
        |mut store: Store<'_>,
         (fields, name, values): (Resource<FieldMap>, String, Vec<Vec<u8>>)| {
            let content = values
                .iter()
                .map(|v| name.len() + v.len() + ENTRY_COST)
                .sum();
            store
                .data_mut()
                .http_budget
                .charge("send HTTP headers", 0, content)?;
            let mut view = store.data_mut().http();
            let result = HostFields::set(&mut view, fields, name, values);
            Ok((header_result(&mut view, result)?,))
        },
    )?;
    types.func_wrap(
        "[method]fields.clone",
        |mut store: Store<'_>, (fields,): (Resource<FieldMap>,)| {
            let content: usize = store
                .data_mut()
                .http()
                .table
                .get(&fields)?
                .iter()
                .map(|(k, v)| k.as_str().len() + v.len() + ENTRY_COST)
                .sum();
            store
                .data_mut()
                .http_budget
                .charge("create HTTP fields", HANDLE_COST, content)?;
            Ok((HostFields::clone(&mut store.data_mut().http(), fields)?,))
        },
    )?;
    types.func_wrap(
        "[constructor]request-options",
        |mut store: Store<'_>, (): ()| {
            store
                .data_mut()
                .http_budget
                .charge("create HTTP request options", HANDLE_COST, 0)?;
            Ok((HostRequestOptions::new(&mut store.data_mut().http())?,))
        },
    )?;
    types.func_wrap(
        "[constructor]outgoing-request",
        |mut store: Store<'_>, (headers,): (Resource<FieldMap>,)| {
            store
                .data_mut()
                .http_budget
                .charge("create HTTP requests", REQUEST_COST, 0)?;
            Ok((HostOutgoingRequest::new(
                &mut store.data_mut().http(),
                headers,
            )?,))
        },
    )?;
    types.func_wrap(
        "[constructor]outgoing-response",
        |mut store: Store<'_>, (headers,): (Resource<FieldMap>,)| {
            store
                .data_mut()
                .http_budget
                .charge("create HTTP responses", REQUEST_COST, 0)?;
            Ok((HostOutgoingResponse::new(
                &mut store.data_mut().http(),
                headers,
            )?,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// `fields.from-list`, reading the list from guest memory one entry at a
/// time and charging each before it is copied, so a huge list is refused
/// without the host ever holding it.
fn from_list(
    mut store: Store<'_>,
    entries: &WasmList<(WasmStr, WasmList<u8>)>,
) -> wasmtime::Result<Result<Resource<FieldMap>, types::HeaderError>> {
    store
        .data_mut()
        .http_budget
        .charge("create HTTP fields", HANDLE_COST, 0)?;
    let limit = store.data().http_field_limit;
    let mut fields = FieldMap::new_mutable(limit);
    for i in 0..entries.len() {
        let Some(entry) = entries.get(&mut store, i) else {
            break;
        };
        let (name, value) = entry?;
        let name = name.to_str(&store)?.into_owned();
        store.data_mut().http_budget.charge(
            "send HTTP headers",
            0,
            name.len() + value.len() + ENTRY_COST,
        )?;
        let value = value.as_le_slice(&store).to_vec();
        let mut view = store.data_mut().http();
        if let Err(err) = fields.append(&mut *view.hooks, name, value) {
            let err = wasmtime_wasi_http::p2::HeaderError::from(err);
            return Ok(Err(types::Host::convert_header_error(&mut view, err)?));
        }
    }
    Ok(Ok(store.data_mut().http().table.push(fields)?))
}

/// A header call's result as the guest sees it: its own error, or a trap.
fn header_result(
    view: &mut wasmtime_wasi_http::WasiHttpCtxView<'_>,
    result: wasmtime_wasi_http::p2::HeaderResult<()>,
) -> wasmtime::Result<Result<(), types::HeaderError>> {
    match result {
        Ok(()) => Ok(Ok(())),
        Err(err) => Ok(Err(types::Host::convert_header_error(view, err)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ungranted_run_gets_a_few_empty_handles_and_no_headers() {
        let mut b = HttpBudget::new(false);
        assert!(matches!(
            b.charge("x", HANDLE_COST, 1),
            Err(HttpResourceError::NotGranted { .. })
        ));
        for _ in 0..UNGRANTED_HANDLES {
            assert!(b.charge("x", HANDLE_COST, 0).is_ok());
        }
        let err = b.charge("create HTTP fields", HANDLE_COST, 0);
        let message = err.map_err(|e| e.to_string()).err().unwrap_or_default();
        assert!(message.contains("no capabilities.http grant"), "{message}");
        assert!(message.contains("create HTTP fields"), "{message}");
    }

    #[test]
    fn a_granted_run_is_charged_until_its_budget() {
        let mut b = HttpBudget::new(true);
        let n = HTTP_BUDGET / REQUEST_COST;
        for _ in 0..n {
            assert!(b.charge("r", REQUEST_COST, 0).is_ok());
        }
        assert!(matches!(
            b.charge("r", REQUEST_COST, 0),
            Err(HttpResourceError::OverBudget { .. })
        ));
    }
}
